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
from pathlib import Path

from declarun.daemon.containers.rootfs.fsaccess import (
    CHANGE_MODIFIED,
    Change,
    changes_copy,
    changes_overlay,
)
from declarun.daemon.containers.rootfs.mounts import RootfsManager

__all__ = ["DEFAULT_MOUNT_TARGETS", "container_changes", "mount_targets", "without_mountpoints"]

#: Files the runtime mounts into every container (and Docker's marker file).
DEFAULT_MOUNT_TARGETS = frozenset(
    {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.dockerenv"}
)


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
