"""The snapshotter seam: what a snapshot is, what a container gets, and the Protocol.

A *snapshot* is the read-only result of applying one layer on top of its parent chain,
stored once per chain ID and shared by every image and container that uses that chain.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal, Protocol

from declarun.daemon.images.layerstream import Readable
from declarun.errdefs import Conflict, NotFound
from declarun.errors import DaemonError

__all__ = [
    "AppliedLayer",
    "ContainerMounts",
    "Driver",
    "Prepared",
    "SnapshotError",
    "SnapshotInUse",
    "SnapshotInfo",
    "SnapshotNotFound",
    "Snapshotter",
    "StagedLayer",
]

Driver = Literal["overlay", "copy"]


class SnapshotError(DaemonError):
    """A snapshot operation cannot be done."""


class SnapshotNotFound(SnapshotError, NotFound):
    """No committed snapshot has that chain ID."""


class SnapshotInUse(SnapshotError, Conflict):
    """The snapshot is the parent of another snapshot or under a container."""


@dataclass(frozen=True)
class SnapshotInfo:
    """A committed snapshot. ``path`` is its ``fs`` directory (read-only by convention)."""

    chain_id: str
    parent: str | None
    diff_id: str
    size: int
    driver: Driver
    path: Path
    created: float


@dataclass(frozen=True)
class AppliedLayer:
    """What :meth:`Snapshotter.apply_layer` did: the snapshot, and whether it existed."""

    snapshot: SnapshotInfo
    reused: bool
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class Prepared:
    """A snapshot being built: apply a layer into ``fs``, then commit or abort."""

    parent: str | None
    path: Path
    fs: Path


@dataclass(frozen=True)
class StagedLayer:
    """A layer applied into a private directory, verified, not yet published: pass it to
    :meth:`Snapshotter.commit_staged` or :meth:`Snapshotter.abort` its ``prepared``."""

    prepared: Prepared
    diff_id: str
    size: int
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class ContainerMounts:
    """How to give a container its root filesystem.

    ``overlay``: mount overlayfs at ``rootfs`` with ``lowerdirs`` (top-most first),
    ``upperdir`` and ``workdir``. ``copy``: ``rootfs`` already is a private full copy.
    """

    driver: Driver
    container_id: str
    rootfs: Path
    lowerdirs: tuple[Path, ...] = ()
    upperdir: Path | None = None
    workdir: Path | None = None


class Snapshotter(Protocol):
    """Stores one read-only snapshot per chain ID and hands containers a writable root."""

    @property
    def driver(self) -> Driver:
        """``overlay`` or ``copy``."""
        ...

    @property
    def root(self) -> Path:
        """The directory holding every snapshot (``<data-root>/snapshots``)."""
        ...

    def exists(self, chain_id: str) -> bool:
        """Whether a committed snapshot has this chain ID."""
        ...

    def info(self, chain_id: str) -> SnapshotInfo:
        """The committed snapshot with this chain ID, or :class:`SnapshotNotFound`."""
        ...

    def snapshots(self) -> list[SnapshotInfo]:
        """Every committed snapshot."""
        ...

    def prepare(self, parent: str | None) -> Prepared:
        """Start a snapshot on top of ``parent`` (None for a base layer)."""
        ...

    def commit(self, prepared: Prepared, diff_id: str, size: int) -> SnapshotInfo:
        """Publish a prepared snapshot under chain ID ``chain(parent, diff_id)``."""
        ...

    def abort(self, prepared: Prepared) -> None:
        """Throw a prepared snapshot away."""
        ...

    def apply_layer(
        self, parent: str | None, layer: BinaryIO | Readable, *, diff_id: str | None = None
    ) -> AppliedLayer:
        """Apply a layer blob on ``parent`` once; reuse the snapshot if it exists."""
        ...

    @property
    def independent_layers(self) -> bool:
        """Whether a layer can be staged before its parent snapshot is committed (a
        snapshot then holds only its own layer, not a copy of its parent's files)."""
        ...

    def stage_layer(
        self, parent: str | None, layer: BinaryIO | Readable, *, diff_id: str
    ) -> StagedLayer:
        """Apply a layer for ``parent`` into a private directory and check that it hashes
        to ``diff_id``; publish it later with :meth:`commit_staged`, in chain order."""
        ...

    def commit_staged(self, staged: StagedLayer) -> SnapshotInfo:
        """Publish a staged layer; its parent must be committed by now."""
        ...

    def mounts_for(self, chain_id: str | None, container_id: str) -> ContainerMounts:
        """Create (or reuse) a container's writable layer over the chain ``chain_id``."""
        ...

    def release(self, container_id: str) -> None:
        """Remove a container's writable layer (unmounting it first if needed)."""
        ...

    def commit_writable(self, container_id: str, diff_id: str, size: int) -> SnapshotInfo | None:
        """Publish what a container wrote (its unmounted writable layer) as the snapshot of
        the layer ``diff_id`` on its chain, without copying a file; the container's layer is
        left empty. None when this driver or this layer cannot (then apply the layer)."""
        ...

    def remove(self, chain_id: str) -> None:
        """Delete a snapshot no other snapshot or container builds on."""
        ...
