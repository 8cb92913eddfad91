"""Writing a new image into the stores: a layer from a tar writer, then config and manifest.

What ``docker commit`` and the image builder share. Both work under a lease the caller
holds (see :mod:`declarun.daemon.images.gc`): every blob, ingest and snapshot is added to
it *before* it is written, so a garbage collection running meanwhile keeps it.

* :func:`store_layer` -- a tar produced by ``write`` becomes an uncompressed OCI layer in
  the content store, is applied on the parent snapshot (which computes its diff ID) and
  recorded as a layer. The tar is spooled to a file on the data root's file system.
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

__all__ = ["StoredLayer", "register_image", "store_layer"]


@dataclass(frozen=True)
class StoredLayer:
    """A layer written by :func:`store_layer`: its blob and identity, and its unpacked size."""

    layer: ImageLayer
    size: int


def store_layer(
    svc: ImageService,
    lease_id: str,
    parent_chain: str | None,
    write: Callable[[IO[bytes]], None],
    *,
    ref_prefix: str = "layer",
) -> StoredLayer:
    """Store the tar ``write`` produces as a layer on ``parent_chain`` (see the module doc)."""
    meta = svc.metadata
    with tempfile.TemporaryFile(dir=svc.scratch_dir) as spool:
        write(spool)
        spool.seek(0)
        ref = f"{ref_prefix}-{uuid.uuid4().hex}"
        meta.add_lease_resources(lease_id, [LeaseResource("ingest", ref)])
        info = svc.store.ingest(ref, spool)
        meta.add_lease_resources(lease_id, [LeaseResource("content", info.digest)])
    with svc.store.open(info.digest) as blob:
        applied = svc.snapshotter.apply_layer(parent_chain, blob)
    snapshot = applied.snapshot
    meta.add_lease_resources(lease_id, [LeaseResource("snapshot", snapshot.chain_id)])
    meta.put_layer(
        Layer(snapshot.chain_id, snapshot.diff_id, parent_chain, snapshot.size, time.time())
    )
    descriptor = Descriptor(mediatypes.OCI_LAYER, info.digest, info.size)
    return StoredLayer(ImageLayer(descriptor, snapshot.diff_id, snapshot.chain_id), snapshot.size)


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
