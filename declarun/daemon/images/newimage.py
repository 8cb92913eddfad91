"""Writing a new image into the stores: a layer from a tar writer, then config and manifest.

What ``docker commit`` and the image builder share. Both work under a lease the caller
holds (see :mod:`declarun.daemon.images.gc`): every blob, ingest and snapshot is added to
it *before* it is written, so a garbage collection running meanwhile keeps it.

* :func:`store_layer` -- a tar produced by ``write`` becomes an uncompressed OCI layer in
  the content store (:func:`ingest_layer`), is applied on the parent snapshot and recorded
  as a layer (:func:`unpack_layer`, which may instead adopt files already written, such as
  a container's upper directory). The tar is spooled to a file on the data root's file
  system.
* :func:`register_image` -- an image config document is stored with an OCI manifest
  listing ``layers``, and the image record (with ``names``) is written to the metadata.

Both block: call them from a worker thread.
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import IO, Any

from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import BlobInfo, Descriptor
from declarun.daemon.images.platform import Platform
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import ImageLayer, ImageRecord, Layer, LeaseResource
from declarun.daemon.snapshots import SnapshotInfo, chain_id

__all__ = ["StoredLayer", "ingest_layer", "register_image", "store_layer", "unpack_layer"]


@dataclass(frozen=True)
class StoredLayer:
    """A layer written by :func:`store_layer`: its blob and identity, and its unpacked size."""

    layer: ImageLayer
    size: int


def ingest_layer(
    svc: ImageService, lease_id: str, write: Callable[[IO[bytes]], None], *, ref_prefix: str
) -> BlobInfo:
    """The tar ``write`` produces, stored as a blob under the lease (its digest is the
    layer's diff ID: it is uncompressed)."""
    with tempfile.TemporaryFile(dir=svc.scratch_dir) as spool:
        write(spool)
        spool.seek(0)
        ref = f"{ref_prefix}-{uuid.uuid4().hex}"
        svc.metadata.add_lease_resources(lease_id, [LeaseResource("ingest", ref)])
        info = svc.store.ingest(ref, spool)
        svc.metadata.add_lease_resources(lease_id, [LeaseResource("content", info.digest)])
    return info


def unpack_layer(
    svc: ImageService,
    lease_id: str,
    parent_chain: str | None,
    blob: BlobInfo,
    *,
    adopt: Callable[[str, int], SnapshotInfo | None] | None = None,
) -> StoredLayer:
    """The snapshot of the layer ``blob`` on ``parent_chain``, recorded as a layer.

    ``adopt(diff_id, size)`` may publish the snapshot from files already written (a
    writable layer whose diff the blob is); when it returns None, or without it, the blob
    is applied.
    """
    meta = svc.metadata
    chain = chain_id(parent_chain, blob.digest)
    meta.add_lease_resources(lease_id, [LeaseResource("snapshot", chain)])
    snapshot = adopt(blob.digest, blob.size) if adopt is not None else None
    if snapshot is None:
        with svc.store.open(blob.digest) as handle:
            snapshot = svc.snapshotter.apply_layer(parent_chain, handle).snapshot
    meta.put_layer(
        Layer(snapshot.chain_id, snapshot.diff_id, parent_chain, snapshot.size, time.time())
    )
    descriptor = Descriptor(mediatypes.OCI_LAYER, blob.digest, blob.size)
    return StoredLayer(ImageLayer(descriptor, snapshot.diff_id, snapshot.chain_id), snapshot.size)


def store_layer(
    svc: ImageService,
    lease_id: str,
    parent_chain: str | None,
    write: Callable[[IO[bytes]], None],
    *,
    ref_prefix: str = "layer",
) -> StoredLayer:
    """Store the tar ``write`` produces as a layer on ``parent_chain`` (see the module doc)."""
    blob = ingest_layer(svc, lease_id, write, ref_prefix=ref_prefix)
    return unpack_layer(svc, lease_id, parent_chain, blob)


def _put(svc: ImageService, lease_id: str, data: bytes) -> BlobInfo:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    # Leased before it is written: a collection running meanwhile keeps it.
    svc.metadata.add_lease_resources(lease_id, [LeaseResource("content", digest)])
    return svc.store.put(data, expected=digest)


def register_image(
    svc: ImageService,
    lease_id: str,
    document: dict[str, Any],
    layers: Sequence[ImageLayer],
    platform: Platform,
    *,
    size: int,
    names: Sequence[str] = (),
) -> ImageRecord:
    """Store ``document`` as an image config with a manifest over ``layers``; record it.

    ``size`` is the image's unpacked size (Docker's ``Size``); ``names`` are canonical
    references pointed at the new image. Storing an image that exists is harmless.
    """
    meta = svc.metadata
    config_data = json.dumps(document, separators=(",", ":")).encode()
    config_info = _put(svc, lease_id, config_data)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": mediatypes.OCI_CONFIG,
            "digest": config_info.digest,
            "size": config_info.size,
        },
        "layers": [layer.blob.to_json() for layer in layers],
    }
    manifest_data = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_info = _put(svc, lease_id, manifest_data)
    created = document.get("created")
    record = ImageRecord(
        id=config_info.digest,
        manifest=Descriptor(mediatypes.OCI_MANIFEST, manifest_info.digest, manifest_info.size),
        config=Descriptor(mediatypes.OCI_CONFIG, config_info.digest, config_info.size),
        layers=tuple(layers),
        platform=platform,
        created=created if isinstance(created, str) else None,
        size=size,
    )
    meta.put_image(record, names=list(names))
    return record
