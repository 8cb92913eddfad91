"""Container exits, as conmon reports them: one file per container in the exit directory.

When a container's init process ends, its conmon writes ``<exit-dir>/<cid>`` holding the exit
status as decimal text (``128 + N`` for death by signal N, ``-1`` if unknown), atomically
(a temporary file renamed into place), then exits. The file's mtime is the exit time: this is
how a daemon that was down at that moment still learns when the container stopped.

:class:`ExitWatcher` turns those files into awaitables for the whole exit directory with one
inotify watch (a small ctypes wrapper: the standard library has none, and one descriptor for
every container beats polling N files). Where inotify is unavailable (instance limit
reached) it falls back to polling every 50 ms. Every ``wait`` checks the file *after*
registering, so an exit between "is it there?" and "tell me when" is never missed.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import struct
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

__all__ = ["ExitStatus", "ExitWatcher", "read_exit_file", "wait_for_exit_file"]

_IN_CLOSE_WRITE = 0x00000008
_IN_MOVED_TO = 0x00000080
_IN_CREATE = 0x00000100
_IN_Q_OVERFLOW = 0x00004000
_IN_NONBLOCK = 0o4000
_IN_CLOEXEC = 0o2000000
_EVENT = struct.Struct("iIII")
_POLL_INTERVAL = 0.05


@dataclass(frozen=True)
class ExitStatus:
    """How a container (or exec) ended: its status and when (``None`` if not known)."""

    code: int
    finished_at: datetime | None


def read_exit_file(path: Path) -> ExitStatus | None:
    """The status in a conmon exit file, or ``None`` while there is none."""
    try:
        text = path.read_text().strip()
        mtime = path.stat().st_mtime
    except FileNotFoundError:
        return None
    try:
        code = int(text)
    except ValueError:
        code = -1
    return ExitStatus(code, datetime.fromtimestamp(mtime, tz=UTC))


class _Inotify:
    """The minimum of inotify: one watch on a directory, names of files that appeared."""

    def __init__(self, directory: Path) -> None:
        libc = ctypes.CDLL(None, use_errno=True)
        self._fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if self._fd < 0:
            raise OSError(ctypes.get_errno(), "inotify_init1 failed")
        mask = _IN_CLOSE_WRITE | _IN_MOVED_TO | _IN_CREATE
        if libc.inotify_add_watch(self._fd, os.fsencode(directory), mask) < 0:
            err = ctypes.get_errno()
            os.close(self._fd)
            raise OSError(err, f"inotify_add_watch {directory} failed")

    def fileno(self) -> int:
        return self._fd

    def read_names(self) -> tuple[set[str], bool]:
        """Names from pending events, and whether the kernel queue overflowed."""
        names: set[str] = set()
        overflow = False
        while True:
            try:
                buf = os.read(self._fd, 65536)
            except BlockingIOError:
                return names, overflow
            offset = 0
            while offset + _EVENT.size <= len(buf):
                _wd, mask, _cookie, length = _EVENT.unpack_from(buf, offset)
                offset += _EVENT.size
                raw = buf[offset : offset + length].split(b"\0", 1)[0]
                offset += length
                overflow = overflow or bool(mask & _IN_Q_OVERFLOW)
                if raw:
                    names.add(os.fsdecode(raw))

    def close(self) -> None:
        os.close(self._fd)


class ExitWatcher:
    """Awaitable exits for every container whose conmon writes into ``exit_dir``.

    Use from one event loop: ``start()`` once, ``await wait(cid)`` any number of times,
    ``close()`` at shutdown.
    """

    def __init__(self, exit_dir: Path) -> None:
        self.exit_dir = exit_dir
        self._waiters: dict[str, list[asyncio.Future[ExitStatus]]] = {}
        self._inotify: _Inotify | None = None
        self._poller: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def start(self) -> None:
        """Begin watching (creates ``exit_dir`` if needed)."""
        self.exit_dir.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.get_running_loop()
        try:
            self._inotify = _Inotify(self.exit_dir)
        except OSError:
            self._poller = self._loop.create_task(self._poll())
            return
        self._loop.add_reader(self._inotify.fileno(), self._on_events)

    async def wait(self, cid: str) -> ExitStatus:
        """The exit status of ``cid``, once its exit file exists (at once if it already does)."""
        if self._loop is None:
            raise RuntimeError("ExitWatcher.start() was not called")
        future: asyncio.Future[ExitStatus] = self._loop.create_future()
        self._waiters.setdefault(cid, []).append(future)
        self._check(cid)
        try:
            return await future
        finally:
            waiters = self._waiters.get(cid, [])
            if future in waiters:
                waiters.remove(future)
            if not waiters:
                self._waiters.pop(cid, None)

    def _check(self, cid: str) -> None:
        status = read_exit_file(self.exit_dir / cid)
        if status is None:
            return
        for future in self._waiters.pop(cid, []):
            if not future.done():
                future.set_result(status)

    def _on_events(self) -> None:
        assert self._inotify is not None
        names, overflow = self._inotify.read_names()
        for cid in list(self._waiters) if overflow else names & set(self._waiters):
            self._check(cid)

    async def _poll(self) -> None:
        while True:
            for cid in list(self._waiters):
                self._check(cid)
            await asyncio.sleep(_POLL_INTERVAL)

    def close(self) -> None:
        """Stop watching; pending waits are cancelled."""
        if self._inotify is not None and self._loop is not None:
            self._loop.remove_reader(self._inotify.fileno())
            self._inotify.close()
            self._inotify = None
        if self._poller is not None:
            self._poller.cancel()
            self._poller = None
        for waiters in self._waiters.values():
            for future in waiters:
                future.cancel()
        self._waiters.clear()


async def wait_for_exit_file(path: Path, timeout: float | None = None) -> ExitStatus:
    """Wait for one exit file by polling (for callers without an :class:`ExitWatcher`)."""

    async def poll() -> ExitStatus:
        while True:
            status = read_exit_file(path)
            if status is not None:
                return status
            await asyncio.sleep(_POLL_INTERVAL)

    return await asyncio.wait_for(poll(), timeout)
