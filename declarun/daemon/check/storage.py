"""Checks of the image stores: blobs, snapshots, leases, ingests, the OCI index.

* every blob an image references exists and hashes to its digest;
* every layer of every image has its snapshot (re-derived from the blobs by ``--repair``,
  as the daemon does at start) and a layer record;
* nothing is left that garbage collection would take: blobs, snapshots and ingests no
  image, container or live lease holds (an ingest a writer holds right now is in use);
* no lease outlived its operation: expired ones, and -- with the daemon stopped -- every
  lease but those of interrupted pulls, which are kept on purpose until they expire so
  that the same pull resumes (listed as notes);
* no leftover of an interrupted unpack or snapshot removal (``.tmp-*``, ``.trash-*``;
  with the daemon stopped only: a running daemon has its own in progress);
* ``content/index.json`` lists what the metadata says.
"""

from __future__ import annotations

import asyncio
import errno
import fcntl
import hashlib
import os
import time
from datetime import UTC, datetime
from pathlib import Path

from declarun.daemon.check.context import CheckContext
from declarun.daemon.check.model import Finding, RepairAction
from declarun.daemon.images import gc
from declarun.daemon.images.content import BlobNotFoundError, LocalStore
from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.images.service import PULL_LEASE_PREFIX
from declarun.daemon.metadata import Image, ImageRecord, Layer
from declarun.errors import ContentError, DeclarunError

__all__ = ["check_storage"]


def _image_label(image: Image) -> str:
    names = ", ".join(image.tags[:2]) or "no name"
    return f"image {image.id[7:19]} ({names})"


def _blobs_of(record: ImageRecord) -> list[tuple[str, str]]:
    """(role, digest) of every blob an image references."""
    out = [("manifest", record.manifest.digest), ("config", record.config.digest)]
    if record.index is not None:
        out.insert(0, ("index", record.index.digest))
    out += [(f"layer {n}", layer.blob.digest) for n, layer in enumerate(record.layers, 1)]
    return out


def _ingest_busy(directory: Path) -> bool:
    """True while a writer holds the ingest's lock."""
    try:
        fd = os.open(directory / "lock", os.O_RDWR)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        return exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN)
    finally:
        os.close(fd)  # closing drops a lock we may have taken
    return False


def check_storage(ctx: CheckContext) -> tuple[list[Finding], list[str]]:
    """Findings and notes about blobs, snapshots, leases, ingests and the index (blocking)."""
    svc = ctx.images
    meta, store, snapshotter = svc.metadata, svc.store, svc.snapshotter
    found: list[Finding] = []
    notes: list[str] = []
    images = meta.list_images()

    async def collect() -> None:
        await asyncio.to_thread(svc.collect_garbage)

    # -- referenced blobs ------------------------------------------------------------------
    verified: dict[str, str] = {}
    broken_images: set[str] = set()
    for image in images:
        for role, digest in _blobs_of(image.record):
            if digest not in verified:
                verified[digest] = _verify(store, digest)
            if verified[digest]:
                broken_images.add(image.id)
                found.append(
                    Finding(
                        "content",
                        f"blob {digest}",
                        f"{verified[digest]} ({role} of {_image_label(image)})",
                        advice="remove the image and pull or load it again",
                    )
                )
    # -- snapshots and layer records ---------------------------------------------------
    layer_rows = {layer.chain_id for layer in meta.list_layers()}
    for image in images:
        missing = [lay for lay in image.record.layers if not snapshotter.exists(lay.chain_id)]
        if missing:
            repairable = image.id not in broken_images

            async def unpack(record: ImageRecord = image.record) -> None:
                await asyncio.to_thread(svc.ensure_unpacked, record)

            found.append(
                Finding(
                    "snapshots",
                    _image_label(image),
                    f"{len(missing)} of its {len(image.record.layers)} layer snapshots are missing "
                    f"(first: {missing[0].chain_id})",
                    repair="unpack its layers again from its blobs" if repairable else None,
                    advice="its blobs are damaged too: pull or load it again",
                    action=unpack if repairable else None,
                )
            )
        parent: str | None = None
        for layer in image.record.layers:
            if layer.chain_id not in layer_rows and snapshotter.exists(layer.chain_id):
                info = snapshotter.info(layer.chain_id)
                row = Layer(layer.chain_id, layer.diff_id, parent, info.size, info.created)

                async def put_row(row: Layer = row) -> None:
                    await asyncio.to_thread(meta.put_layer, row)

                layer_rows.add(layer.chain_id)
                found.append(
                    Finding(
                        "snapshots",
                        f"snapshot {layer.chain_id}",
                        "in use by an image but has no layer record",
                        repair="record it again",
                        action=put_row,
                    )
                )
            parent = layer.chain_id
    # -- what garbage collection would take --------------------------------------------
    now = time.time()
    keep = gc.mark(meta.reference_graph(now=now))
    for blob in store.list():
        if blob.digest not in keep.blobs:
            found.append(
                Finding(
                    "content",
                    f"blob {blob.digest}",
                    f"nothing references it ({blob.size} bytes)",
                    repair="collect garbage",
                    action=collect,
                )
            )
    for snap in snapshotter.snapshots():
        if snap.chain_id not in keep.snapshots:
            found.append(
                Finding(
                    "snapshots",
                    f"snapshot {snap.chain_id}",
                    "no image, container or lease holds it",
                    repair="collect garbage",
                    action=collect,
                )
            )
    for ingest in store.ingests():
        directory = store.root / "ingest" / hashlib.sha256(ingest.ref.encode()).hexdigest()
        if ingest.ref in keep.ingests or _ingest_busy(directory):
            continue
        found.append(
            Finding(
                "ingests",
                f"ingest {ingest.ref}",
                f"no lease holds this partial download ({ingest.offset} bytes)",
                repair="collect garbage",
                action=collect,
            )
        )
    # -- leases ------------------------------------------------------------------------
    resumable = ctx.images.resumable_leases()
    for lease in meta.leases(include_expired=True):
        if not lease.active(now):
            when = datetime.fromtimestamp(lease.expires or 0, UTC).isoformat(timespec="seconds")
            found.append(
                Finding(
                    "leases",
                    f"lease {lease.id}",
                    f"expired at {when}",
                    repair="delete it",
                    action=_delete_lease(ctx, lease.id),
                )
            )
        elif lease.id.startswith(PULL_LEASE_PREFIX) and (not ctx.online or lease.id in resumable):
            until = datetime.fromtimestamp(lease.expires or 0, UTC).isoformat(timespec="seconds")
            partial = sum(
                i.offset
                for i in store.ingests()
                if any(r.kind == "ingest" and r.key == i.ref for r in lease.resources)
            )
            notes.append(
                f"an interrupted pull is kept to resume until {until} "
                f"({partial} bytes of partial downloads; lease {lease.id})"
            )
        elif not ctx.online:
            found.append(
                Finding(
                    "leases",
                    f"lease {lease.id}",
                    "its operation died with the daemon",
                    repair="delete it",
                    action=_delete_lease(ctx, lease.id),
                )
            )
    # -- work in progress a crash cut short ----------------------------------------------
    if not ctx.online:
        for entry in sorted(os.scandir(snapshotter.root), key=lambda e: e.name):
            if entry.name.startswith((".tmp-", ".trash-")):

                async def remove(path: str = entry.path) -> None:
                    await asyncio.to_thread(remove_tree, Path(path))

                found.append(
                    Finding(
                        "snapshots",
                        entry.path,
                        "an unpack or a removal was cut short here",
                        repair="delete it",
                        action=remove,
                    )
                )
    # -- the OCI index ---------------------------------------------------------------------
    try:
        listed = {d.to_json().__repr__() for d in store.read_index()}
    except ContentError as exc:
        listed = {f"unreadable: {exc}"}
    wanted = {d.to_json().__repr__() for d in meta.oci_index()}
    if listed != wanted:

        async def rewrite() -> None:
            await asyncio.to_thread(store.write_index, meta.oci_index())

        found.append(
            Finding(
                "content",
                f"{store.root / 'index.json'}",
                "does not list the images the metadata has",
                repair="write it again",
                action=rewrite,
            )
        )
    return found, notes


def _verify(store: LocalStore, digest: str) -> str:
    """'' when the blob is there and hashes right, else what is wrong with it."""
    try:
        store.verify(digest)
    except BlobNotFoundError:
        return "missing"
    except ContentError:
        return "does not hash to its digest"
    except (OSError, DeclarunError) as exc:
        return f"unreadable: {exc}"
    return ""


def _delete_lease(ctx: CheckContext, lease_id: str) -> RepairAction:
    async def action() -> None:
        await asyncio.to_thread(ctx.metadata.delete_lease, lease_id)

    return action
