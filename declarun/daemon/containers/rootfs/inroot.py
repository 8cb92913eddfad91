"""Reading a file inside a container's root file system without ever leaving it.

An image controls every name in its root: ``/etc/passwd`` may be a symlink to the host's
``/etc/shadow``, ``/etc`` a symlink to ``/``. Paths are resolved component by component
against directory descriptors, symlinks re-rooted at the container's root (as the kernel's
``RESOLVE_IN_ROOT`` does), and every open uses ``O_NOFOLLOW``, so a link swapped in
concurrently fails the open instead of being followed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections import deque
from pathlib import Path

__all__ = ["open_dir_in_root", "open_in_root", "read_file_in_root"]

_MAX_LINKS = 40  # the kernel's MAXSYMLINKS
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY


def open_in_root(root: Path, path: str) -> int:
    """An fd of the regular file ``path`` resolved inside ``root``; the caller closes it.

    Raises ``FileNotFoundError``, ``OSError(ELOOP)`` or ``OSError(EISDIR/EINVAL)``
    (not a regular file) like a plain open would.
    """
    return _open(root, path, directory=False)


def open_dir_in_root(root: Path, path: str) -> int:
    """An fd of the directory ``path`` resolved inside ``root`` (``/`` is ``root``
    itself); the caller closes it. ``NotADirectoryError`` when it is something else."""
    return _open(root, path, directory=True)


def _open(root: Path, path: str, *, directory: bool) -> int:
    root_fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    stack = [root_fd]  # open directories from the root down: ".." pops one
    pending = deque(path.split("/"))
    links = 0
    try:
        while pending:
            name = pending.popleft()
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    os.close(stack.pop())
                continue
            here = stack[-1]
            info = os.stat(name, dir_fd=here, follow_symlinks=False)
            if stat.S_ISLNK(info.st_mode):
                links += 1
                if links > _MAX_LINKS:
                    raise OSError(errno.ELOOP, "too many levels of symbolic links", path)
                target = os.readlink(name, dir_fd=here)
                if target.startswith("/"):
                    while len(stack) > 1:
                        os.close(stack.pop())
                pending.extendleft(reversed(target.split("/")))
                continue
            if not directory and not any(p not in ("", ".") for p in pending):
                fd = os.open(name, _FILE_FLAGS, dir_fd=here)
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    os.close(fd)
                    raise OSError(errno.EINVAL, "not a regular file", path)
                return fd
            stack.append(os.open(name, _DIR_FLAGS, dir_fd=here))
        if directory:
            return stack.pop()
        raise OSError(errno.EISDIR, "is a directory", path)
    finally:
        for fd in stack:
            os.close(fd)


def read_file_in_root(root: Path, path: str, limit: int = 4 * 1024 * 1024) -> bytes | None:
    """The first ``limit`` bytes of ``path`` inside ``root``; ``None`` if it is not there.

    Missing, dangling, looping, not-a-file and unreadable all count as "not there": callers
    fall back to defaults exactly as they would for an image without the file.
    """
    try:
        fd = open_in_root(root, path)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        return handle.read(limit)
