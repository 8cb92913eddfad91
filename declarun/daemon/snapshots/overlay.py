"""The overlayfs snapshotter: each snapshot holds one layer, stacked at mount time.

Layers are applied in ``overlay`` mode (whiteouts as 0/0 character devices, opaque
directories as ``trusted.overlay.opaque=y``), so a snapshot directory is usable as an
overlayfs lower directory as it is. A container gets an upper and a work directory of
its own; its root filesystem is the overlay mount of those over the chain.
"""

from __future__ import annotations

import ctypes
import json
import os
import subprocess
import tempfile
import time
import uuid
from errno import EBUSY
from pathlib import Path

from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.images.unpack import OVERLAY_OPAQUE_XATTR, Mode
from declarun.daemon.snapshots.base import DirectorySnapshotter
from declarun.daemon.snapshots.model import (
    ContainerMounts,
    Driver,
    Prepared,
    SnapshotError,
    SnapshotInfo,
)

__all__ = [
    "OverlaySnapshotter",
    "mount_lowers",
    "mount_overlay",
    "overlay_options",
    "overlay_supported",
    "unmount",
]

# The kernel copies mount data into one page; longer option strings are refused.
_MAX_MOUNT_DATA = 4000
# What overlayfs records in an upper directory for itself. Hints about the lower layers it
# was mounted on are dropped when the directory becomes a snapshot; a redirect or a
# metadata-only copy depends on those layers, so a directory holding one is applied as a
# layer instead.
_HINT_XATTRS = frozenset(
    f"{ns}.overlay.{name}" for ns in ("trusted", "user") for name in ("origin", "impure", "nlink")
)
_DEPENDENT_XATTRS = frozenset(
    f"{ns}.overlay.{name}" for ns in ("trusted", "user") for name in ("redirect", "metacopy")
)


def _portable_upper(upper: Path) -> bool:
    """Drop overlayfs' hints from ``upper``; False if it holds what depends on its lowers."""
    for directory, dirs, files in os.walk(upper):
        for name in [*dirs, *files, ""]:
            path = os.path.join(directory, name) if name else directory
            try:
                names = os.listxattr(path, follow_symlinks=False)
            except OSError:
                continue
            for key in names:
                if key in _DEPENDENT_XATTRS:
                    return False
                if key in _HINT_XATTRS:
                    os.removexattr(path, key, follow_symlinks=False)
    return True


def _run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd)


_libc = ctypes.CDLL(None, use_errno=True)
_libc.mount.argtypes = [ctypes.c_char_p, ctypes.c_char_p, ctypes.c_char_p, ctypes.c_ulong,
                        ctypes.c_char_p]  # fmt: skip
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]


def _mount_overlay_at(options: str, target: Path, cwd: Path | None) -> None:
    """mount(2) an overlay with ``options`` at ``target``; raises SnapshotError.

    A system call, not a mount(8) process per container start (issue 16). Options with paths
    relative to ``cwd`` (long layer chains) still go through mount(8) in that directory: the
    kernel resolves them against the working directory, which threads share.
    """
    if cwd is not None:
        proc = _run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], cwd=cwd)
        if proc.returncode != 0:
            raise SnapshotError(f"overlay mount failed: {proc.stderr.strip()}")
        return
    if _libc.mount(b"overlay", os.fsencode(target), b"overlay", 0, options.encode()) != 0:
        err = ctypes.get_errno()
        raise SnapshotError(f"overlay mount failed: {target}: {os.strerror(err)}")


def overlay_options(mounts: ContainerMounts, relative_to: Path | None = None) -> str:
    """The ``-o`` string for mounting ``mounts``, paths relative to ``relative_to`` if given.

    Refuses paths overlayfs cannot take in its option string (``:`` or ``,``).
    """
    if mounts.upperdir is None or mounts.workdir is None or not mounts.lowerdirs:
        raise SnapshotError(f"container {mounts.container_id} has no overlay layers")

    def show(path: Path) -> str:
        text = str(path.relative_to(relative_to)) if relative_to is not None else str(path)
        if ":" in text or "," in text:
            raise SnapshotError(f"path {text!r} cannot be used in an overlay mount")
        return text

    lower = ":".join(show(p) for p in mounts.lowerdirs)
    return f"lowerdir={lower},upperdir={show(mounts.upperdir)},workdir={show(mounts.workdir)}"


def mount_overlay(mounts: ContainerMounts, target: Path | None = None) -> Path:
    """Mount a container's overlay root filesystem (at ``mounts.rootfs`` by default).

    Long layer chains are mounted with paths relative to the snapshot root so the option
    string stays within the kernel's one-page limit.
    """
    where = target if target is not None else mounts.rootfs
    options = overlay_options(mounts)
    cwd: Path | None = None
    if len(options) > _MAX_MOUNT_DATA:
        cwd = Path(os.path.commonpath([*mounts.lowerdirs, mounts.upperdir or where]))
        options = overlay_options(mounts, relative_to=cwd)
        if len(options) > _MAX_MOUNT_DATA:
            raise SnapshotError(f"too many layers to mount ({len(mounts.lowerdirs)})")
    _mount_overlay_at(options, where, cwd)
    return where


def mount_lowers(lowerdirs: tuple[Path, ...], target: Path) -> Path:
    """Mount a read-only overlay of ``lowerdirs`` (top-most first, at least two) at
    ``target``: an image's filesystem to read, with no writable layer."""
    if len(lowerdirs) < 2:
        raise SnapshotError("a read-only overlay needs at least two layers")
    cwd = Path(os.path.commonpath(lowerdirs))
    shown = [str(p) for p in lowerdirs]
    options = "ro,lowerdir=" + ":".join(shown)
    if len(options) > _MAX_MOUNT_DATA:
        shown = [str(p.relative_to(cwd)) for p in lowerdirs]
        options = "ro,lowerdir=" + ":".join(shown)
        if len(options) > _MAX_MOUNT_DATA:
            raise SnapshotError(f"too many layers to mount ({len(lowerdirs)})")
    if any(":" in text or "," in text for text in shown):
        raise SnapshotError("a layer path cannot be used in an overlay mount")
    proc = _run(["mount", "-t", "overlay", "overlay", "-o", options, str(target)], cwd=cwd)
    if proc.returncode != 0:
        raise SnapshotError(f"overlay mount failed: {proc.stderr.strip()}")
    return target


# A mount can be busy for a moment after its last user ended: a process of the container
# (or a `runc exec` that was joining it) still exiting. containerd retries the same way.
_BUSY_RETRIES = 50
_BUSY_PAUSE = 0.02


def unmount(target: Path) -> None:
    """Unmount ``target`` if something is mounted there (retrying a moment while busy)."""
    if not os.path.ismount(target):
        return
    path = os.fsencode(target)
    for _attempt in range(_BUSY_RETRIES):
        if _libc.umount2(path, 0) == 0:  # umount(2): no umount(8) process
            return
        errno = ctypes.get_errno()
        if errno != EBUSY:
            break
        time.sleep(_BUSY_PAUSE)
    raise SnapshotError(f"cannot unmount {target}: {os.strerror(errno)}")


def overlay_supported(directory: Path | None = None) -> bool:
    """Whether an overlay with trusted xattrs really mounts on ``directory``'s filesystem.

    Tried, not guessed: overlay on overlay, some network filesystems and user namespaces
    without privileges all fail here. ``directory`` defaults to the temp directory; pass
    the snapshot root, since support depends on the filesystem underneath.
    """
    directory = Path(directory if directory is not None else tempfile.gettempdir())
    directory.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".tmp-overlay-check-", dir=directory) as tmp:
        base = Path(tmp)
        for name in ("lower", "upper", "work", "merged"):
            (base / name).mkdir()
        (base / "lower" / "probe").write_bytes(b"ok")
        try:
            os.setxattr(base / "lower", OVERLAY_OPAQUE_XATTR, b"y")
            os.removexattr(base / "lower", OVERLAY_OPAQUE_XATTR)
        except OSError:
            return False
        mounts = ContainerMounts(
            driver="overlay",
            container_id="probe",
            rootfs=base / "merged",
            lowerdirs=(base / "lower",),
            upperdir=base / "upper",
            workdir=base / "work",
        )
        try:
            mount_overlay(mounts)
        except (SnapshotError, OSError):
            return False
        try:
            return (base / "merged" / "probe").read_bytes() == b"ok"
        finally:
            unmount(base / "merged")


class OverlaySnapshotter(DirectorySnapshotter):
    """One directory per layer, stacked by overlayfs; containers get upper/work dirs."""

    _driver: Driver = "overlay"
    _mode: Mode = "overlay"

    def _empty_lower(self) -> Path:
        # overlayfs needs at least one lower directory, even for an image with no layers
        empty = self.root / "empty"
        empty.mkdir(mode=0o755, exist_ok=True)
        return empty

    def mounts_for(self, chain_id: str | None, container_id: str) -> ContainerMounts:
        """Create (or reuse, on restart) a container's upper and work dirs over the chain."""
        if chain_id is not None:
            lowers = tuple(s.path for s in self.lineage(chain_id))
        else:
            lowers = (self._empty_lower(),)
        directory = self.container_dir(container_id)
        directory.mkdir(mode=0o700, exist_ok=True)
        for name, mode in (("upper", 0o755), ("work", 0o700), ("rootfs", 0o755)):
            path = directory / name
            path.mkdir(exist_ok=True)
            if not os.path.ismount(path):
                os.chmod(path, mode)
        self._write_container_meta(directory, chain_id)
        return ContainerMounts(
            driver="overlay",
            container_id=container_id,
            rootfs=directory / "rootfs",
            lowerdirs=lowers,
            upperdir=directory / "upper",
            workdir=directory / "work",
        )

    def release(self, container_id: str) -> None:
        """Unmount (if mounted) and delete a container's writable layer."""
        directory = self.container_dir(container_id)
        unmount(directory / "rootfs")
        remove_tree(directory)

    def commit_writable(self, container_id: str, diff_id: str, size: int) -> SnapshotInfo | None:
        """The container's upper directory becomes the snapshot, renamed into place.

        An upper directory is a layer in exactly the form overlay snapshots keep (whiteouts
        as 0/0 devices, ``trusted.overlay.opaque``); overlayfs' hints are removed, and a
        directory with a redirect or a metadata-only copy is refused (None). The container
        must not be mounted; it keeps an empty upper directory.
        """
        directory = self.container_dir(container_id)
        if os.path.ismount(directory / "rootfs"):
            raise SnapshotError(f"container {container_id} is still mounted")
        try:
            meta = json.loads((directory / "info.json").read_text())
        except (OSError, ValueError) as exc:
            raise SnapshotError(f"container {container_id} has no writable layer: {exc}") from exc
        parent = meta.get("chain_id")
        upper = directory / "upper"
        if not _portable_upper(upper):
            return None
        work = self.root / f".tmp-{uuid.uuid4().hex}"
        work.mkdir(mode=0o700)
        try:
            os.rename(upper, work / "fs")
            os.chmod(work / "fs", 0o755)  # as a layer without a "./" entry is unpacked
        except BaseException:
            remove_tree(work)
            raise
        upper.mkdir(mode=0o755, exist_ok=True)
        return self.commit(Prepared(parent=parent, path=work, fs=work / "fs"), diff_id, size)
