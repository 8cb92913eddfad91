"""Snapshots: layers applied once per chain ID, shared by images and containers.

Two drivers implement :class:`Snapshotter`: :class:`OverlaySnapshotter` (one directory
per layer, stacked by overlayfs) and :class:`CopySnapshotter` (full flattened copies,
for where overlayfs does not work). :func:`open_snapshotter` picks one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from declarun.daemon.snapshots.chain import chain_id, chain_ids
from declarun.daemon.snapshots.copy import CopySnapshotter
from declarun.daemon.snapshots.model import (
    AppliedLayer,
    ContainerMounts,
    Driver,
    Prepared,
    SnapshotError,
    SnapshotInfo,
    SnapshotInUse,
    SnapshotNotFound,
    Snapshotter,
)
from declarun.daemon.snapshots.overlay import (
    OverlaySnapshotter,
    mount_overlay,
    overlay_supported,
    unmount,
)

__all__ = [
    "AppliedLayer",
    "ContainerMounts",
    "CopySnapshotter",
    "Driver",
    "OverlaySnapshotter",
    "Prepared",
    "SnapshotError",
    "SnapshotInUse",
    "SnapshotInfo",
    "SnapshotNotFound",
    "Snapshotter",
    "chain_id",
    "chain_ids",
    "mount_overlay",
    "open_snapshotter",
    "overlay_supported",
    "unmount",
]


def open_snapshotter(
    data_root: Path, driver: Literal["auto", "overlay", "copy"] = "auto"
) -> Snapshotter:
    """Open the snapshot store under ``data_root`` and sweep interrupted work.

    ``auto`` uses overlayfs when a trial mount on the data root works, else copies.
    Snapshots made by one driver are not readable by the other, so a data root should
    keep its driver (the caller records the choice).
    """
    if driver == "auto":
        driver = "overlay" if overlay_supported(Path(data_root) / "snapshots") else "copy"
    store: OverlaySnapshotter | CopySnapshotter
    store = OverlaySnapshotter(data_root) if driver == "overlay" else CopySnapshotter(data_root)
    store.sweep()
    return store
