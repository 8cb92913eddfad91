"""Which engine to talk to, and the engine adapter connected to it.

* default: the built-in daemon at ``unix:///run/declarun/declarun.sock``; when nothing answers
  there it is started in the background (``python -m declarun.daemon``, detached, its log in
  ``/var/log/declarun/declarund.log``), so nobody ever has to start a daemon by hand;
* ``--host``/``DECLARUN_HOST`` (``unix:///path``): another declarund (or any Docker-API
  engine) that must already run;
* ``--engine docker``: Docker itself, through ``DOCKER_HOST`` or Docker's default socket;
* ``--engine swarm``: a Docker Swarm manager, addressed as Docker is (:func:`connect_swarm`).

:func:`connect` returns a :class:`~declarun.engine.dockerpy.DockerEngine`, the port's
adapter: the reconciler speaks the Docker Engine API only. Connecting imports no docker-py
(``GET /_ping`` goes through declarun's own client); the adapter imports it when first needed.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import socket
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from declarun.daemon.config import DEFAULT_DATA_ROOT, DEFAULT_HOST
from declarun.engine.dockerpy import DockerEngine
from declarun.errdefs import ErrorKind
from declarun.errors import EngineError

if TYPE_CHECKING:
    from declarun.engine.swarm import DockerSwarmEngine

__all__ = [
    "DOCKER_DEFAULT_HOST",
    "EngineChoice",
    "EngineKind",
    "check_daemon",
    "choose_engine",
    "connect",
    "connect_swarm",
    "daemon_pid",
    "ping",
    "start_daemon",
    "stop_daemon",
]

EngineKind = Literal["declarun", "docker", "swarm"]
DOCKER_DEFAULT_HOST = "unix:///var/run/docker.sock"
DEFAULT_LOG = Path("/var/log/declarun/declarund.log")
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 30.0
# Pulls and long stops ride on one request; docker-py's own default of 60 s is too short.
_CLIENT_TIMEOUT = 600
# A check rehashes every blob: give it the time a big store needs.
_CHECK_TIMEOUT = 3600.0


@dataclass(frozen=True)
class EngineChoice:
    """The engine a command will use; ``autostart`` when it is ours at the default socket."""

    kind: EngineKind
    host: str
    autostart: bool = False

    def describe(self) -> str:
        """``declarund at unix:///...`` or ``docker at unix:///...``, for messages."""
        name = {"declarun": "declarund", "docker": "docker", "swarm": "the swarm manager"}[
            self.kind
        ]
        return f"{name} at {self.host}"


def choose_engine(
    host: str | None = None,
    engine: EngineKind = "declarun",
    environ: dict[str, str] | None = None,
) -> EngineChoice:
    """Resolve the flags and environment into one engine; ``host`` beats the environment."""
    env = os.environ if environ is None else environ
    if engine in ("docker", "swarm"):
        return EngineChoice(engine, host or env.get("DOCKER_HOST") or DOCKER_DEFAULT_HOST)
    chosen = host or env.get("DECLARUN_HOST") or DEFAULT_HOST
    _socket_path(chosen)  # refuse a malformed address before anything else happens
    return EngineChoice("declarun", chosen, autostart=chosen == DEFAULT_HOST)


def _socket_path(host: str) -> Path:
    if not host.startswith("unix://") or len(host) <= len("unix://"):
        raise EngineError(f"engine address {host!r}: expected unix:///path/to/socket")
    return Path(host[len("unix://") :])


def ping(host: str, timeout: float = 2.0) -> bool:
    """True when an engine answers ``GET /_ping`` with OK at the unix socket ``host``."""
    try:
        path = _socket_path(host)
    except EngineError:
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(timeout)
            sock.connect(str(path))
            sock.sendall(b"GET /_ping HTTP/1.0\r\nHost: engine\r\n\r\n")
            answer = sock.recv(4096)
    except OSError:
        return False
    return answer.startswith(b"HTTP/1.") and b" 200 " in answer.split(b"\r\n", 1)[0]


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def check_daemon(
    host: str, *, repair: bool = False, timeout: float = _CHECK_TIMEOUT
) -> dict[str, Any]:
    """Ask the declarund at ``host`` to check its data root (``POST /declarun/check``).

    Returns the decoded answer (``Problems``, ``Repaired``, ``Notes``); EngineError when
    the daemon cannot be reached or answers with an error.
    """
    connection = _UnixConnection(_socket_path(host), timeout)
    try:
        connection.request("POST", f"/declarun/check?repair={int(repair)}")
        response = connection.getresponse()
        body = response.read()
    except OSError as exc:
        raise EngineError(f"cannot ask declarund at {host} for a check: {exc}") from None
    finally:
        connection.close()
    try:
        document = json.loads(body)
    except ValueError:
        document = None
    if response.status != 200 or not isinstance(document, dict):
        message = (
            document.get("message")
            if isinstance(document, dict)
            else body[:200].decode(errors="replace")
        )
        raise EngineError(f"declarund at {host} could not check ({response.status}): {message}")
    return document


def daemon_pid(host: str) -> int | None:
    """The pid of the process listening on the unix socket ``host`` (SO_PEERCRED), or None."""
    try:
        path = _socket_path(host)
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(2.0)
            sock.connect(str(path))
            creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    except (OSError, EngineError):
        return None
    pid, _uid, _gid = struct.unpack("3i", creds)
    return pid if pid > 0 else None


def _log_path(data_root: Path) -> Path:
    try:
        DEFAULT_LOG.parent.mkdir(parents=True, exist_ok=True)
        with DEFAULT_LOG.open("ab"):
            pass
        return DEFAULT_LOG
    except OSError:
        # Not root, or /var/log is read-only: keep the log beside the daemon's data.
        data_root.mkdir(parents=True, exist_ok=True)
        return data_root / "declarund.log"


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def start_daemon(
    host: str = DEFAULT_HOST,
    *,
    data_root: Path = DEFAULT_DATA_ROOT,
    log_path: Path | None = None,
    timeout: float = _START_TIMEOUT,
) -> Path:
    """Start declarund detached, listening on ``host``; wait until it answers ``/_ping``.

    Returns the log file. Raises EngineError (with the log's tail) when it does not come up.
    Another process starting the same daemon at the same moment is fine: whichever wins the
    data-root lock serves, and both callers see it answer.
    """
    log = log_path or _log_path(data_root)
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable,
        "-m",
        "declarun.daemon",
        "--host",
        host,
        "--data-root",
        str(data_root),
    ]
    pid = _spawn_detached(command, log)
    deadline = time.monotonic() + timeout
    exited = False
    while time.monotonic() < deadline:
        if ping(host):
            return log
        # A twin that won the data-root lock may still be coming up: keep waiting for it.
        if not exited and _reap(pid):
            exited = True
            if "in use by another declarund" not in _tail(log, 5):
                break
        time.sleep(0.1)
    if ping(host):
        return log
    if not exited:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGTERM)
        what = f"did not answer at {host} within {timeout:.0f} s"
    else:
        what = f"exited before answering at {host}"
    raise EngineError(f"declarund {what}; its log ({log}) ends:\n{_tail(log)}")


def _spawn_detached(command: list[str], log: Path) -> int:
    """Start ``command`` in its own session with output to ``log``; returns its pid.

    posix_spawn rather than Popen: the daemon outlives this process, and a Popen object
    would complain (ResourceWarning) about a child it never waited for.
    """
    log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o640)
    try:
        return os.posix_spawn(
            command[0],
            command,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, log_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,  # detached: survives the command that started it, and its Ctrl-C
        )
    finally:
        os.close(log_fd)


def _reap(pid: int) -> bool:
    """True when ``pid`` has exited (reaping it when it is our child); False while it runs."""
    try:
        done, _status = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return not Path(f"/proc/{pid}").exists()
    return done == pid


def stop_daemon(host: str = DEFAULT_HOST, timeout: float = _STOP_TIMEOUT) -> int | None:
    """Ask the declarund listening at ``host`` to stop (SIGTERM) and wait until it is gone.

    Returns the pid it stopped, or None when nothing was listening. Refuses to signal a
    process that is not declarund (another engine may own the socket).
    """
    pid = daemon_pid(host)
    if pid is None:
        return None
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return None
    if "declarun" not in cmdline:
        raise EngineError(f"{host} is served by pid {pid} ({cmdline.strip()}), not declarund")
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return pid
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if _reap(pid) or _is_zombie(pid):
            return pid
        time.sleep(0.1)
    raise EngineError(f"declarund (pid {pid}) did not stop within {timeout:.0f} s")


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[-1].split()[0] == "Z"


def connect(choice: EngineChoice) -> DockerEngine:
    """The engine adapter for ``choice``, starting declarund first when it may.

    Raises EngineError with a readable message when nothing answers.
    """
    if choice.kind == "declarun" and not ping(choice.host):
        if not choice.autostart:
            raise EngineError(
                f"no engine answers at {choice.host}: start it with "
                f"'declarun daemon --host {choice.host}' or drop --host to use the default"
            )
        start_daemon(choice.host)
    adapter = DockerEngine
    if choice.kind == "swarm":
        from declarun.engine.swarm import DockerSwarmEngine  # its types only for a Swarm

        adapter = DockerSwarmEngine
    try:
        engine = adapter.open(choice.host, timeout=_CLIENT_TIMEOUT)
    except ErrorKind as exc:
        raise EngineError(f"cannot connect to {choice.host}: {exc}") from None
    try:
        engine.ping()
    except ErrorKind as exc:
        engine.close()
        raise EngineError(f"{choice.describe()} does not answer: {exc}") from None
    return engine


def connect_swarm(choice: EngineChoice) -> DockerSwarmEngine:
    """The Swarm adapter for ``choice`` (``kind`` swarm): an engine that is a manager of an
    active Swarm. Raises EngineError saying what it is otherwise."""
    from declarun.engine.swarm import DockerSwarmEngine

    engine = connect(choice)
    assert isinstance(engine, DockerSwarmEngine)
    try:
        info = engine.swarm_info()
    except ErrorKind as exc:
        engine.close()
        raise EngineError(f"{choice.describe()} does not answer: {exc}") from None
    if info.state != "active" or not info.is_manager:
        engine.close()
        what = "is not part of a swarm" if info.state != "active" else "is a worker, not a manager"
        raise EngineError(
            f"{choice.host} {what}: --engine swarm needs a Swarm manager "
            "('docker swarm init', or --host pointing at a manager)"
        )
    return engine
