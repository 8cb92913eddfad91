"""What a container changed in its root file system (``docker diff``, and what ``commit`` takes).

With the overlay driver the changes are read from the writable layer's upper directory
(whiteouts are deletions); with the copy driver the container's full copy is compared
with its image's snapshot. Mount points the runtime creates in the writable layer for the
container's own mounts (``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf``, volume
targets...) are left out -- dockerd hides them in its init layer.
"""

from __future__ import annotations

import asyncio
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.daemon.containers.rootfs.mounts import RootfsManager

__all__ = [
    "CHANGE_ADDED",
    "CHANGE_DELETED",
    "CHANGE_MODIFIED",
    "DEFAULT_MOUNT_TARGETS",
    "Change",
    "changes_copy",
    "changes_overlay",
    "container_changes",
    "mount_targets",
    "without_mountpoints",
]

CHANGE_MODIFIED, CHANGE_ADDED, CHANGE_DELETED = 0, 1, 2
_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")

#: Files the runtime mounts into every container (and Docker's marker file).
DEFAULT_MOUNT_TARGETS = frozenset(
    {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.dockerenv"}
)


@dataclass(frozen=True)
class Change:
    """One entry of ``GET /containers/{id}/changes``."""

    path: str
    kind: int

    def to_api(self) -> dict[str, Any]:
        """``{"Path": ..., "Kind": ...}``."""
        return {"Path": self.path, "Kind": self.kind}


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


def _opaque(path: Path) -> bool:
    for name in _OPAQUE_XATTRS:
        try:
            if os.getxattr(path, name, follow_symlinks=False) == b"y":
                return True
        except OSError:
            continue
    return False


def _in_lowers(lowers: tuple[Path, ...], rel: str) -> os.stat_result | None:
    """The entry ``rel`` of the merged lower layers (top-most first), if any."""
    parts = rel.split("/")
    for lower in lowers:
        # A whiteout or an opaque directory on the way hides everything below it.
        hidden = False
        for i in range(1, len(parts)):
            prefix = lower.joinpath(*parts[:i])
            try:
                st = prefix.lstat()
            except OSError:
                break
            if _is_whiteout(st) or not stat.S_ISDIR(st.st_mode):
                hidden = True
                break
        if hidden:
            return None
        try:
            st = lower.joinpath(*parts).lstat()
        except OSError:
            if any(_opaque(lower.joinpath(*parts[:i])) for i in range(1, len(parts))):
                return None
            continue
        return None if _is_whiteout(st) else st
    return None


def changes_overlay(upper: Path, lowers: tuple[Path, ...]) -> list[Change]:
    """Changes of an overlay container: its upper directory against the image's layers."""
    out: list[Change] = []

    def walk(rel: str) -> None:
        directory = upper / rel if rel else upper
        for name in sorted(os.listdir(directory)):
            child_rel = f"{rel}/{name}" if rel else name
            st = (directory / name).lstat()
            if _is_whiteout(st):
                out.append(Change("/" + child_rel, CHANGE_DELETED))
                continue
            lower = _in_lowers(lowers, child_rel)
            out.append(Change("/" + child_rel, CHANGE_ADDED if lower is None else CHANGE_MODIFIED))
            if stat.S_ISDIR(st.st_mode):
                if lower is not None and stat.S_ISDIR(lower.st_mode) and _opaque(directory / name):
                    present = set(os.listdir(directory / name))
                    for gone in sorted(_merged_names(lowers, child_rel) - present):
                        out.append(Change(f"/{child_rel}/{gone}", CHANGE_DELETED))
                walk(child_rel)

    walk("")
    return sorted(out, key=lambda c: c.path)


def _merged_names(lowers: tuple[Path, ...], rel: str) -> set[str]:
    names: set[str] = set()
    for lower in lowers:
        with_dir = lower / rel
        try:
            entries = os.listdir(with_dir)
        except OSError:
            continue
        for name in entries:
            if _in_lowers(lowers, f"{rel}/{name}") is not None:
                names.add(name)
    return names


def _same(a: os.stat_result, b: os.stat_result, a_path: Path, b_path: Path) -> bool:
    if stat.S_IFMT(a.st_mode) != stat.S_IFMT(b.st_mode):
        return False
    if (a.st_mode, a.st_uid, a.st_gid) != (b.st_mode, b.st_uid, b.st_gid):
        return False
    if stat.S_ISLNK(a.st_mode):
        return os.readlink(a_path) == os.readlink(b_path)
    if stat.S_ISDIR(a.st_mode):
        return True  # a directory "changes" through its children, reported on their own
    return a.st_size == b.st_size and a.st_mtime_ns == b.st_mtime_ns


def changes_copy(rootfs: Path, base: Path | None) -> list[Change]:
    """Changes of a copy-driver container: its private tree against the image's tree."""
    out: list[Change] = []

    def walk(rel: str) -> None:
        here = rootfs / rel if rel else rootfs
        there = (base / rel if rel else base) if base is not None else None
        names = set(os.listdir(here))
        base_names = set(os.listdir(there)) if there is not None and there.is_dir() else set()
        for name in sorted(names | base_names):
            child = f"{rel}/{name}" if rel else name
            if name not in names:
                out.append(Change("/" + child, CHANGE_DELETED))
                continue
            st = (here / name).lstat()
            if name not in base_names or there is None:
                out.append(Change("/" + child, CHANGE_ADDED))
                if stat.S_ISDIR(st.st_mode):
                    _all_added(here / name, child, out)
                continue
            base_st = (there / name).lstat()
            if not _same(st, base_st, here / name, there / name):
                out.append(Change("/" + child, CHANGE_MODIFIED))
            if stat.S_ISDIR(st.st_mode) and stat.S_ISDIR(base_st.st_mode):
                before = len(out)
                walk(child)
                if len(out) > before and not any(c.path == "/" + child for c in out):
                    out.append(Change("/" + child, CHANGE_MODIFIED))

    walk("")
    return sorted(out, key=lambda c: c.path)


def _all_added(directory: Path, rel: str, out: list[Change]) -> None:
    for name in sorted(os.listdir(directory)):
        child = f"{rel}/{name}"
        out.append(Change("/" + child, CHANGE_ADDED))
        if (directory / name).is_dir() and not (directory / name).is_symlink():
            _all_added(directory / name, child, out)


async def container_changes(
    rootfs: RootfsManager, container_id: str, chain_id: str | None, bundle_dir: Path
) -> list[Change]:
    """The changes of a container's root file system against its image (the snapshot
    ``chain_id``), the mount points of its bundle in ``bundle_dir`` left out."""
    mounts = await asyncio.to_thread(rootfs.prepare, chain_id, container_id)
    if mounts.driver == "overlay":
        assert mounts.upperdir is not None
        found = await asyncio.to_thread(changes_overlay, mounts.upperdir, mounts.lowerdirs)
    else:
        snapshotter = rootfs.snapshotter
        base = snapshotter.info(chain_id).path if chain_id else None
        found = await asyncio.to_thread(changes_copy, mounts.rootfs, base)
    return without_mountpoints(found, mount_targets(bundle_dir))


def mount_targets(bundle_dir: Path) -> set[str]:
    """Destinations of the mounts in a runtime bundle's ``config.json`` (and the defaults)."""
    targets = set(DEFAULT_MOUNT_TARGETS)
    try:
        spec = json.loads((bundle_dir / "config.json").read_text())
    except (OSError, ValueError):
        return targets
    for mount in spec.get("mounts") or []:
        destination = mount.get("destination")
        if isinstance(destination, str):
            targets.add(destination.rstrip("/") or "/")
    return targets


def without_mountpoints(changes: list[Change], targets: set[str]) -> list[Change]:
    """Changes minus mount points (and parent directories changed only by them)."""

    def under(path: str) -> bool:
        return any(path == t or path.startswith(t + "/") for t in targets)

    kept = [c for c in changes if not under(c.path)]
    dropped = {c.path for c in changes} - {c.path for c in kept}
    result = []
    for change in kept:
        prefix = change.path + "/"
        only_for_mounts = (
            change.kind == CHANGE_MODIFIED
            and any(p.startswith(prefix) for p in dropped)
            and not any(c.path.startswith(prefix) for c in kept)
        )
        if not only_for_mounts:
            result.append(change)
    return result
