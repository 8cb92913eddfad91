"""The data-root lock: one declarund per data root.

``<data-root>/declarund.lock`` is held with ``flock`` for the daemon's lifetime and holds
the owner's pid, so a second daemon can say who is in the way. The kernel drops the lock
when the process dies, so a crash never leaves a stale lock behind. The file itself is
never removed: unlinking a lock file lets two processes lock two different inodes.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path
from types import TracebackType

from declarun.errors import DaemonError

__all__ = ["DataRootLock"]


class DataRootLock:
    """An exclusive, non-blocking flock on a file; use as a context manager."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock and record our pid, or raise DaemonError naming the holder."""
        try:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            raise DaemonError(f"cannot open lock file {self.path}: {exc.strerror}") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _read_pid(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN):
                raise DaemonError(f"cannot lock {self.path}: {exc.strerror}") from None
            who = f" (pid {holder})" if holder else ""
            raise DaemonError(
                f"data root {self.path.parent} is in use by another declarund{who}; "
                f"lock file {self.path}"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd

    def release(self) -> None:
        """Drop the lock (closing the descriptor releases the flock)."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> DataRootLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def _read_pid(fd: int) -> int | None:
    try:
        text = os.pread(fd, 32, 0).decode().strip()
        return int(text) if text else None
    except (OSError, ValueError, UnicodeDecodeError):
        return None
