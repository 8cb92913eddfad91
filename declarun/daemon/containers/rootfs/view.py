"""A stopped container's files as its processes would see them: the root with its volumes
and bind mounts mounted in place, for ``docker cp`` (dockerd's archive endpoints see them).

The view is a bind mount of the container's mounted root on a private directory of the
daemon, with each mount bound on top at its target; nothing is mounted on the root itself,
so a concurrent start, export or commit of the same container never sees these mounts. Each
target is resolved inside the view without following a link out of it
(:mod:`~declarun.daemon.containers.rootfs.inroot`) and the mount made on the descriptor's
``/proc/self/fd`` path, so a symbolic link planted in the container cannot redirect a mount
onto the host. A target missing in the root is made there (a directory, or an empty file
for a file's bind mount), as dockerd makes mount points at create. At the end the view is detached whole
(``MNT_DETACH`` takes the mounts on top with it) and its directory removed.

A running container needs none of this: its own mount namespace, reached through
``/proc/<pid>/root``, already has every mount (the container service uses that).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.containers.rootfs.inroot import open_dir_in_root, open_in_root

__all__ = ["ViewMount", "mounts_view"]

_libc = ctypes.CDLL(None, use_errno=True)
_MS_RDONLY = 0x1
_MS_REMOUNT = 0x20
_MS_BIND = 0x1000
_MS_REC = 0x4000
_MS_PRIVATE = 1 << 18
_MNT_DETACH = 0x2


@dataclass(frozen=True)
class ViewMount:
    """One mount of the view: a host path bound at ``target`` (a path in the container)."""

    target: str
    source: Path
    read_only: bool = False


def _mount(source: str | None, target: str, flags: int) -> None:
    encoded = source.encode() if source is not None else None
    if _libc.mount(encoded, target.encode(), None, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} on {target}: {os.strerror(err)}")


def _detach(target: Path) -> None:
    if _libc.umount2(str(target).encode(), _MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {target}: {os.strerror(err)}")


def _make_mount_point(view: Path, target: str, directory: bool) -> None:
    """Create ``target`` (and its missing parents) inside the view, as dockerd makes mount
    points at create; a parent that exists as something else stops it (OSError)."""
    parts = [p for p in target.split("/") if p not in ("", ".")]
    for depth in range(1, len(parts) + 1):
        last = depth == len(parts)
        try:
            os.close((open_dir_in_root if directory or not last else open_in_root)(
                view, "/".join(parts[:depth])))  # fmt: skip
            continue
        except FileNotFoundError:
            pass
        parent = open_dir_in_root(view, "/".join(parts[: depth - 1]))
        try:
            if directory or not last:
                os.mkdir(parts[depth - 1], 0o755, dir_fd=parent)
            else:
                os.close(os.open(parts[depth - 1], os.O_CREAT | os.O_EXCL | os.O_WRONLY
                                 | os.O_NOFOLLOW, 0o644, dir_fd=parent))  # fmt: skip
        finally:
            os.close(parent)


def _bind_on(view: Path, mount: ViewMount) -> None:
    directory = mount.source.is_dir()
    opener = open_dir_in_root if directory else open_in_root
    try:
        _make_mount_point(view, mount.target, directory)
        fd = opener(view, mount.target)
    except OSError:
        return  # a file where a directory is wanted (or a loop): the start would fail too
    try:
        _mount(str(mount.source), f"/proc/self/fd/{fd}", _MS_BIND | _MS_REC)
    finally:
        os.close(fd)
    if mount.read_only:
        # The descriptor names what was under the new mount: look the target up again.
        fd = opener(view, mount.target)
        try:
            _mount(None, f"/proc/self/fd/{fd}", _MS_BIND | _MS_REMOUNT | _MS_RDONLY)
        finally:
            os.close(fd)


@contextlib.contextmanager
def mounts_view(root: Path, scratch: Path, mounts: Sequence[ViewMount]) -> Iterator[Path]:
    """``root`` with ``mounts`` bound in place, at a private path under ``scratch``
    (blocking: run it in a worker thread)."""
    view = scratch / f".view-{secrets.token_hex(6)}"
    view.mkdir(mode=0o700)
    try:
        _mount(str(root), str(view), _MS_BIND)
        try:
            _mount(None, str(view), _MS_PRIVATE)
            # Parents first, so a mount inside another lands on top of it.
            for mount in sorted(mounts, key=lambda m: m.target.count("/")):
                _bind_on(view, mount)
            yield view
        finally:
            _detach(view)
    finally:
        view.rmdir()
