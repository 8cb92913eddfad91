"""A typed wrapper over an OCI runtime's command line (``runc`` by default, ``crun`` selectable).

Every call runs ``<binary> --root <data-root>/runtime/<name> ...`` so declarund's containers
live in a state directory of their own and never mix with those of podman, containerd or a
plain ``runc`` user on the same machine.

The calls are ``asyncio`` subprocesses, not blocking calls in a thread: the daemon is an
aiohttp application with one event loop; a runtime call takes 10-50 ms, so it must not block
the loop, and an ``await``-ed subprocess is cancellable and needs no thread pool sized for
50 concurrent starts.

``create`` is not here: a container is created by its monitor (``conmon``, see
:mod:`declarun.daemon.containers.runtime.monitor`), which runs ``runc create`` itself so that it holds
the container's stdio. Failures raise :class:`OciRuntimeError` carrying the runtime's own
message (``runc`` logs ``level=error msg="..."`` lines; only the message is kept);
:class:`ContainerNotFoundError` when the runtime does not know the id.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal as signal_module
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.errdefs import NotFound
from declarun.errors import DaemonError

__all__ = [
    "DEFAULT_RUNTIMES",
    "ContainerNotFoundError",
    "OciRuntime",
    "OciRuntimeError",
    "RuntimeState",
    "clean_message",
    "runtime_state_root",
]

#: Runtime names the daemon knows, and where Debian installs them.
DEFAULT_RUNTIMES: Mapping[str, str] = {"runc": "/usr/sbin/runc", "crun": "/usr/bin/crun"}

# runc and crun both say "does not exist" for an unknown id (runc: "container does not
# exist", crun: "container `x` does not exist"); the wording is their only signal.
_NOT_FOUND = re.compile(r"does not exist|not found", re.IGNORECASE)
_RUNC_LOG_MSG = re.compile(r'msg="((?:[^"\\]|\\.)*)"')


class OciRuntimeError(DaemonError):
    """The OCI runtime refused or failed a command; ``message`` is its own explanation."""

    def __init__(self, command: Sequence[str], returncode: int, message: str) -> None:
        self.command = list(command)
        self.returncode = returncode
        self.message = message
        super().__init__(message)


class ContainerNotFoundError(OciRuntimeError, NotFound):
    """The runtime has no container with this id (never created, or already deleted)."""


@dataclass(frozen=True)
class RuntimeState:
    """``<runtime> state ID``: the runtime's view of one container.

    ``status`` is ``creating``, ``created``, ``running``, ``paused`` or ``stopped``; ``pid``
    is the init process on the host (0 once stopped).
    """

    id: str
    status: str
    pid: int
    bundle: str
    created: str
    annotations: Mapping[str, str]


def runtime_state_root(data_root: Path, name: str) -> Path:
    """The ``--root`` directory of runtime ``name`` under the daemon's data root."""
    return data_root / "runtime" / name


def clean_message(stderr: str) -> str:
    """The human part of a runtime's stderr: runc's ``msg="..."`` values, else the text."""
    found = [_unquote(m) for m in _RUNC_LOG_MSG.findall(stderr)]
    text = "; ".join(found) if found else stderr.strip()
    return text or "the OCI runtime failed without a message"


def _unquote(quoted: str) -> str:
    # logrus quotes with Go's strconv.Quote, close enough to JSON for messages.
    try:
        return str(json.loads(f'"{quoted}"'))
    except ValueError:
        return quoted.replace('\\"', '"')


class OciRuntime:
    """One OCI runtime binary with its own state root.

    ``name`` (``runc``/``crun``) names the state directory; ``binary`` is the executable.
    """

    def __init__(self, name: str, binary: str | Path, root: Path) -> None:
        self.name = name
        self.binary = str(binary)
        self.root = root

    @classmethod
    def for_data_root(
        cls, data_root: Path, name: str = "runc", binary: str | None = None
    ) -> OciRuntime:
        """The runtime ``name`` with its state under ``<data_root>/runtime/<name>``."""
        path = binary or DEFAULT_RUNTIMES.get(name)
        if path is None:
            raise DaemonError(f"unknown runtime {name!r}; known: {', '.join(DEFAULT_RUNTIMES)}")
        return cls(name, path, runtime_state_root(data_root, name))

    def global_args(self) -> list[str]:
        """The arguments that go before every subcommand (conmon's ``--runtime-arg`` too)."""
        return [f"--root={self.root}"]

    async def _run(self, *args: str, stdin: bytes | None = None, cid: str | None = None) -> bytes:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        command = [self.binary, *self.global_args(), *args]
        try:
            proc = await asyncio.create_subprocess_exec(
                *command,
                stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
        except OSError as exc:
            raise OciRuntimeError(command, -1, f"cannot run {self.binary}: {exc.strerror}") from exc
        out, err = await proc.communicate(stdin)
        if proc.returncode != 0:
            message = clean_message(err.decode(errors="replace"))
            returncode = proc.returncode if proc.returncode is not None else -1
            if cid is not None and _NOT_FOUND.search(message):
                raise ContainerNotFoundError(command, returncode, f"no such container: {cid}")
            raise OciRuntimeError(command, returncode, message)
        return out

    async def state(self, cid: str) -> RuntimeState:
        """The runtime's state of ``cid``; :class:`ContainerNotFoundError` if unknown."""
        doc = json.loads(await self._run("state", cid, cid=cid))
        return _state_from_json(doc)

    async def list_containers(self) -> list[RuntimeState]:
        """Every container under this runtime's root."""
        out = await self._run("list", "--format", "json")
        docs = json.loads(out or b"null") or []
        return [_state_from_json(doc) for doc in docs]

    async def start(self, cid: str) -> None:
        """Run the user process of a created container (``runc start``)."""
        await self._run("start", cid, cid=cid)

    async def kill(
        self, cid: str, signal: int | str = signal_module.SIGTERM, *, all: bool = False
    ) -> None:
        """Send ``signal`` (number or name) to the init process, or to every process with ``all``."""
        sig = signal if isinstance(signal, str) else str(int(signal))
        args = ["kill", *(["--all"] if all else []), cid, sig]
        await self._run(*args, cid=cid)

    def has_state(self, cid: str) -> bool:
        """Whether the runtime keeps a state for ``cid`` (runc and crun: ``<root>/<cid>/``)."""
        return (self.root / cid).exists()

    async def delete(self, cid: str, *, force: bool = False) -> None:
        """Forget a stopped container (``force``: kill it first). Unknown ids are no error."""
        try:
            await self._run("delete", *(["--force"] if force else []), cid, cid=cid)
        except ContainerNotFoundError:
            return

    async def pause(self, cid: str) -> None:
        """Freeze every process of the container (cgroup freezer)."""
        await self._run("pause", cid, cid=cid)

    async def resume(self, cid: str) -> None:
        """Thaw a paused container."""
        await self._run("resume", cid, cid=cid)

    async def ps(self, cid: str) -> list[int]:
        """Host pids of every process in the container (for ``docker top``)."""
        out = await self._run("ps", "--format", "json", cid, cid=cid)
        return [int(pid) for pid in json.loads(out or b"null") or []]

    async def update(self, cid: str, resources: Mapping[str, Any]) -> None:
        """Change cgroup limits: ``resources`` is an OCI ``linux.resources`` object."""
        payload = json.dumps(dict(resources)).encode()
        await self._run("update", "--resources", "-", cid, stdin=payload, cid=cid)

    async def stats(self, cid: str) -> dict[str, Any]:
        """One cgroup statistics sample (``runc events --stats``): the ``data`` object."""
        doc: dict[str, Any] = json.loads(await self._run("events", "--stats", cid, cid=cid))
        data = doc.get("data", {})
        return data if isinstance(data, dict) else {}

    async def version(self) -> str:
        """The first line of ``<runtime> --version`` (checks that the binary runs)."""
        out = await self._run("--version")
        return out.decode(errors="replace").splitlines()[0] if out else ""


def _state_from_json(doc: Mapping[str, Any]) -> RuntimeState:
    return RuntimeState(
        id=str(doc.get("id", "")),
        status=str(doc.get("status", "")),
        pid=int(doc.get("pid") or 0),
        bundle=str(doc.get("bundle", "")),
        created=str(doc.get("created", "")),
        annotations=dict(doc.get("annotations") or {}),
    )
