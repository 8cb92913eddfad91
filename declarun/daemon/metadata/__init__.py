"""The metadata database: the one authority on what references what.

SQLite in WAL mode (``<data-root>/metadata.db``), one module per kind of record:

``database``    connections, transactions, subscribers (:class:`Database`)
``schema``      the migrations that build the tables (``PRAGMA user_version``)
``images``      images, the blobs they reference, their names (tags and repo digests)
``layers``      layer snapshots by chain ID
``leases``      leases that protect work in progress from garbage collection
``containers``  containers: their image, snapshot, record and the volumes they mount
``volumes``     volumes, and which containers use one
``networks``    networks, what started containers hold on them, which containers use one
``builds``      the image builder's step cache and image parents
``references``  the reference graph garbage collection marks from

:class:`Metadata` is all of them over one database; every name a caller needs is
importable from this package.
"""

from __future__ import annotations

from declarun.daemon.metadata.builds import BuildCacheEntry, BuildTables
from declarun.daemon.metadata.containers import Container, ContainerTables
from declarun.daemon.metadata.database import Database, MetadataError
from declarun.daemon.metadata.images import (
    AmbiguousImageError,
    Image,
    ImageInUseError,
    ImageLayer,
    ImageNotFoundError,
    ImageRecord,
    ImageReferences,
    ImageTables,
    canonical_name,
)
from declarun.daemon.metadata.layers import Layer, LayerTables
from declarun.daemon.metadata.leases import (
    Lease,
    LeaseNotFoundError,
    LeaseResource,
    LeaseTables,
    ResourceKind,
)
from declarun.daemon.metadata.networks import NetworkRow, NetworkStateRow, NetworkTables
from declarun.daemon.metadata.references import ImageRefs, ReferenceGraph, ReferenceTables
from declarun.daemon.metadata.schema import SCHEMA_VERSION
from declarun.daemon.metadata.volumes import VolumeRow, VolumeTables

__all__ = [
    "SCHEMA_VERSION",
    "AmbiguousImageError",
    "BuildCacheEntry",
    "Container",
    "Database",
    "Image",
    "ImageInUseError",
    "ImageLayer",
    "ImageNotFoundError",
    "ImageRecord",
    "ImageReferences",
    "ImageRefs",
    "Layer",
    "Lease",
    "LeaseNotFoundError",
    "LeaseResource",
    "Metadata",
    "MetadataError",
    "NetworkRow",
    "NetworkStateRow",
    "ReferenceGraph",
    "ResourceKind",
    "VolumeRow",
    "canonical_name",
]


class Metadata(
    ImageTables,
    LayerTables,
    LeaseTables,
    ContainerTables,
    VolumeTables,
    NetworkTables,
    BuildTables,
    ReferenceTables,
):
    """The metadata database at ``path`` (created and migrated on first open), every table."""
