"""Path handling that can never leave a directory tree: cleaning of archive names and
openat-style resolution relative to a directory file descriptor.

Every lookup starts from a descriptor of the root and opens one component at a time with
``O_NOFOLLOW | O_DIRECTORY``, so the kernel never follows a symbolic link on our behalf.
Symbolic links met in the middle of a path are followed *by this module*, with chroot
semantics: an absolute target restarts at the root, and ``..`` at the root stays at the
root. Whatever the archive or an earlier layer planted, a resolved path is inside the root.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from dataclasses import dataclass

from declarun.errors import UnpackError

__all__ = [
    "MAX_SYMLINK_HOPS",
    "InRoot",
    "ResolvedDir",
    "clean_name",
]

# The kernel's own limit (MAXSYMLINKS) on links followed during one lookup.
MAX_SYMLINK_HOPS = 40

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_name(name: str) -> tuple[str, ...]:
    """Split an archive member name into path components relative to the root.

    Leading slashes are dropped (an absolute member name means "from the root of the
    layer", as GNU tar and Docker treat it), ``.`` and empty components vanish, and ``..``
    is applied lexically. A name that would climb above the root, or that holds a NUL
    byte, is refused with :class:`UnpackError`. The empty tuple names the root itself.
    """
    if "\x00" in name:
        raise UnpackError(f"layer entry {name!r}: name contains a NUL byte")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                raise UnpackError(f"layer entry {name!r}: path escapes the layer root")
            parts.pop()
            continue
        parts.append(part)
    return tuple(parts)


@dataclass(frozen=True)
class ResolvedDir:
    """An open directory inside the root and where it really is (symlinks resolved).

    ``fd`` is owned by whoever asked for it and must be closed; ``parts`` are the real
    component names from the root down to this directory.
    """

    fd: int
    parts: tuple[str, ...]


class InRoot:
    """Resolves paths inside one directory tree through descriptors only.

    The caller keeps ownership of ``root_fd``.
    """

    def __init__(self, root_fd: int) -> None:
        self.root_fd = root_fd

    def open_dir(
        self,
        parts: Sequence[str],
        *,
        create: bool = False,
        follow: bool = True,
        start: ResolvedDir | None = None,
    ) -> ResolvedDir:
        """Open the directory ``parts`` below the root and return it with its real path.

        Missing components are made (mode 0755, owned by the caller) when ``create`` is
        true. Symbolic links among the components are followed inside the root when
        ``follow`` is true and refused otherwise. Anything that is not a directory where
        one is needed raises :class:`UnpackError`. With ``start`` (an already resolved
        directory), ``parts`` is resolved from there instead of from the root.
        """
        display = "/".join(parts) or "."
        pending = list(reversed(parts))
        real: list[str] = list(start.parts) if start is not None else []
        fd = os.open(".", _DIR_FLAGS, dir_fd=start.fd if start is not None else self.root_fd)
        hops = 0
        try:
            while pending:
                name = pending.pop()
                if name in ("", "."):
                    continue
                if name == "..":
                    # Never open ".." itself: at the root it would leave the tree.
                    if real:
                        real.pop()
                        fd = self._swap(fd, real)
                    continue
                try:
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                except FileNotFoundError:
                    if not create:
                        raise
                    os.mkdir(name, 0o755, dir_fd=fd)
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                if stat.S_ISLNK(st.st_mode):
                    if not follow:
                        raise UnpackError(f"{display}: {name!r} is a symbolic link")
                    hops += 1
                    if hops > MAX_SYMLINK_HOPS:
                        raise UnpackError(f"{display}: too many levels of symbolic links")
                    target = os.readlink(name, dir_fd=fd)
                    if target.startswith("/"):
                        real.clear()
                        fd = self._swap(fd, real)
                    pending.extend(reversed(target.split("/")))
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    raise UnpackError(f"{display}: {name!r} is not a directory")
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
                os.close(fd)
                fd = child
                real.append(name)
        except BaseException:
            os.close(fd)
            raise
        return ResolvedDir(fd, tuple(real))

    def _swap(self, fd: int, real: Sequence[str]) -> int:
        """Open ``real`` again from the root (following nothing), then close ``fd``."""
        new = self.open_dir(real, create=False, follow=False).fd
        os.close(fd)
        return new
