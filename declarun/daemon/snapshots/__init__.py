"""Snapshots: layers applied once per chain ID, shared by images and containers.

Two drivers implement :class:`Snapshotter`: :class:`OverlaySnapshotter` (one directory
per layer, stacked by overlayfs) and :class:`CopySnapshotter` (full flattened copies,
for where overlayfs does not work). :func:`open_snapshotter` picks one;
:func:`open_data_root_snapshotter` keeps the first pick of a data root in
``snapshots/driver``, so a data root never mixes the two.
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
    StagedLayer,
)
from declarun.daemon.snapshots.overlay import (
    OverlaySnapshotter,
    mount_lowers,
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
    "StagedLayer",
    "chain_id",
    "chain_ids",
    "mount_lowers",
    "mount_overlay",
    "open_data_root_snapshotter",
    "open_snapshotter",
    "overlay_supported",
    "unmount",
]


def open_snapshotter(
    data_root: Path, driver: Literal["auto", "overlay", "copy"] = "auto", *, sweep: bool = True
) -> Snapshotter:
    """Open the snapshot store under ``data_root`` and sweep interrupted work.

    ``auto`` uses overlayfs when a trial mount on the data root works, else copies.
    Snapshots made by one driver are not readable by the other, so a data root should
    keep its driver (the caller records the choice). ``sweep=False`` leaves the leftovers
    of interrupted work where they are (``declarun daemon check`` reports them).
    """
    if driver == "auto":
        driver = "overlay" if overlay_supported(Path(data_root) / "snapshots") else "copy"
    store: OverlaySnapshotter | CopySnapshotter
    store = OverlaySnapshotter(data_root) if driver == "overlay" else CopySnapshotter(data_root)
    if sweep:
        store.sweep()
    return store


def open_data_root_snapshotter(data_root: Path, *, sweep: bool = True) -> Snapshotter:
    """The data root's snapshotter, with the driver it was first opened with.

    The first time, the driver is chosen as by ``open_snapshotter(data_root, "auto")`` and
    written to ``snapshots/driver``; later opens read it back (blocking).
    """
    snapshotter = open_snapshotter(data_root, _remembered_driver(data_root), sweep=sweep)
    path = Path(data_root) / "snapshots" / "driver"
    if not path.exists():
        path.write_text(snapshotter.driver + "\n")
    return snapshotter


def _remembered_driver(data_root: Path) -> Literal["auto", "overlay", "copy"]:
    try:
        text = (Path(data_root) / "snapshots" / "driver").read_text().strip()
    except OSError:
        return "auto"
    return "overlay" if text == "overlay" else "copy" if text == "copy" else "auto"
