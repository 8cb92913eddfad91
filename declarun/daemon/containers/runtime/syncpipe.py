"""Starting ``conmon`` and talking to it over its pipes (used by :mod:`monitor` and :mod:`exec_session`).

conmon finds its pipes by file-descriptor number in environment variables:

``_OCI_SYNCPIPE``
    conmon writes one JSON object per line: ``{"data": N}`` (API version 1; the legacy API
    says ``pid``/``exit_code``) where N is the container (or exec) pid once the runtime's
    ``create``/``exec`` succeeded; ``{"data": -1, "message": "..."}`` when it failed. For an
    exec a second line carries the exit code. conmon 2.1.6 writes nothing at all when the
    runtime failed without printing to stderr: EOF without a line is a failure too.
``_OCI_STARTPIPE``
    conmon blocks on a read of it before it forks (so a caller can place it in a cgroup
    first; we don't, and release it at once). With ``--exec-attach`` the runtime child reads
    it a second time right before ``runc exec``, so the caller can connect to the attach
    socket first. Create sessions don't use it at all.
``_OCI_ATTACHPIPE``
    (``--exec-attach`` only) conmon writes ``{"data": 0}`` once the attach socket listens.

conmon gets a clean environment (``PATH`` only plus these): the daemon's own variables such
as ``NOTIFY_SOCKET`` or ``LISTEN_PID`` must not leak into it or into the runtime.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.daemon.containers.runtime.oci import clean_message
from declarun.errors import DaemonError

__all__ = [
    "CONMON",
    "ConmonPipes",
    "MonitorError",
    "SyncMessage",
    "conmon_alive",
    "spawn_conmon",
]

CONMON = "/usr/bin/conmon"
_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


class MonitorError(DaemonError):
    """conmon could not be started, or reported that the runtime failed."""


@dataclass(frozen=True)
class SyncMessage:
    """One line from a conmon pipe: ``data`` (pid, exit code or -1) and an optional message."""

    data: int
    message: str | None = None


class _LineReader:
    """Reads JSON lines from a pipe's read end without blocking the event loop."""

    def __init__(self, fd: int) -> None:
        self._file = os.fdopen(fd, "rb", buffering=0)
        self._reader: asyncio.StreamReader | None = None
        self._transport: asyncio.BaseTransport | None = None

    async def read(self) -> SyncMessage | None:
        """The next message, or ``None`` at EOF (conmon closed its end)."""
        if self._reader is None:
            loop = asyncio.get_running_loop()
            self._reader = asyncio.StreamReader()
            protocol = asyncio.StreamReaderProtocol(self._reader)
            self._transport, _ = await loop.connect_read_pipe(lambda: protocol, self._file)
        line = await self._reader.readline()
        if not line:
            return None
        try:
            doc: Any = json.loads(line)
        except ValueError as exc:
            raise MonitorError(f"conmon sent an unreadable message: {line!r}") from exc
        value = doc.get("data", doc.get("pid", doc.get("exit_code", -1)))
        message = doc.get("message")
        return SyncMessage(int(value), clean_message(str(message)) if message is not None else None)

    def close(self) -> None:
        """Close the read end (idempotent)."""
        if self._transport is not None:
            self._transport.close()
            self._transport = None
        else:
            self._file.close()


@dataclass
class ConmonPipes:
    """The parent's ends of the pipes handed to one conmon."""

    sync: _LineReader
    start_w: int | None = None
    attach: _LineReader | None = None
    _closed: bool = field(default=False, repr=False)

    def release_start(self) -> None:
        """Write one byte to the start pipe: conmon (or the exec'd runtime) may proceed."""
        if self.start_w is not None:
            os.write(self.start_w, b"0")

    def close(self) -> None:
        """Close every parent end (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self.sync.close()
        if self.attach is not None:
            self.attach.close()
        if self.start_w is not None:
            with contextlib.suppress(OSError):
                os.close(self.start_w)


async def spawn_conmon(
    args: Sequence[str],
    *,
    cwd: Path,
    conmon: str = CONMON,
    start_pipe: bool = False,
    attach_pipe: bool = False,
) -> ConmonPipes:
    """Run ``conmon args...`` and return once it has daemonized (its first process exited).

    conmon double-forks (we never pass ``--sync``), so the long-lived monitor is re-parented
    away from the daemon and survives it. Errors conmon prints before daemonizing (bad
    arguments, missing runtime) raise :class:`MonitorError`; later ones arrive on the sync
    pipe. ``cwd`` matters: conmon drops an ``oom`` file into its working directory.
    """
    child_fds: list[int] = []
    env = {"PATH": _PATH}
    sync_r, sync_w = os.pipe()
    child_fds.append(sync_w)
    env["_OCI_SYNCPIPE"] = str(sync_w)
    pipes = ConmonPipes(sync=_LineReader(sync_r))
    if start_pipe:
        start_r, pipes.start_w = os.pipe()
        child_fds.append(start_r)
        env["_OCI_STARTPIPE"] = str(start_r)
    if attach_pipe:
        attach_r, attach_w = os.pipe()
        child_fds.append(attach_w)
        env["_OCI_ATTACHPIPE"] = str(attach_w)
        pipes.attach = _LineReader(attach_r)
    try:
        proc = await asyncio.create_subprocess_exec(
            conmon,
            *args,
            cwd=cwd,
            env=env,
            pass_fds=child_fds,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
    except OSError as exc:
        pipes.close()
        raise MonitorError(f"cannot run {conmon}: {exc.strerror}") from exc
    finally:
        # Our copies of the child's ends must go, or EOF on the sync pipe never comes.
        for fd in child_fds:
            os.close(fd)
    try:
        if start_pipe:
            # conmon's first read happens before it forks; we never need to hold it there.
            pipes.release_start()
        assert proc.stderr is not None
        # The daemonized grandchild keeps stderr until it points its stdio at /dev/null,
        # which is its next step; so this read ends quickly.
        err = await proc.stderr.read()
        code = await proc.wait()
    except BaseException:
        # Cancelled (a health check stopped by a removal): the caller never sees these
        # pipes, so they must close here. An open start pipe would hold an exec's conmon
        # in its second read for ever; closed, it reads EOF and runs to its end.
        pipes.close()
        raise
    if code != 0:
        pipes.close()
        text = err.decode(errors="replace").strip()
        raise MonitorError(f"conmon failed (exit {code}): {text or 'no message'}")
    return pipes


def conmon_alive(pid: int, cid: str) -> bool:
    """Whether ``pid`` is a live (not zombie) conmon monitoring container ``cid``."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    if state in (b"Z", b"X") or not argv or os.path.basename(argv[0]) != b"conmon":
        return False
    wanted = cid.encode()
    return any(a in (b"-c", b"--cid") and b == wanted for a, b in itertools.pairwise(argv))
