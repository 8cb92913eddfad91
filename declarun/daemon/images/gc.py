"""Garbage collection: mark what the metadata references, sweep the rest.

Roots are every image record (tagged or dangling: Docker keeps a dangling image until
``rmi``/``prune`` deletes its record), the images and snapshots containers use, and the
resources of active leases. From the roots, ``mark`` collects blob digests, snapshot chain
IDs (with their parents) and ingest refs; it is a pure function of a ``ReferenceGraph``.
``collect`` does the I/O: it expires leases, lists the content store and the snapshots,
and removes whatever is not marked.

The protocol that keeps a pull safe: a pull takes a lease first, and adds each blob
(``content``), download ref (``ingest``) and snapshot (``snapshot``) to it *before*
checking whether it already exists or writing it; it stores the image record before it
drops the lease. ``collect`` holds the metadata write lock from listing to the last
removal, so a lease write either happened before the mark (and protects) or waits until
the sweep is over (and then sees what is gone). A crashed pull's lease expires after its
TTL and its leftovers go at the next collection.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Protocol

from declarun.daemon.images.content import BlobNotFoundError, LocalStore
from declarun.daemon.metadata import Metadata, ReferenceGraph

__all__ = ["GCResult", "Marked", "Snapshots", "collect", "mark"]


class Snapshots(Protocol):
    """The part of a snapshotter GC needs.

    ``list`` returns keys of committed snapshots (chain IDs, container snapshot keys);
    an unpack's work directories in progress are the snapshotter's own business.
    """

    def list(self) -> Iterable[str]: ...

    def remove(self, key: str) -> None: ...


@dataclass(frozen=True)
class Marked:
    """What must be kept."""

    blobs: frozenset[str]
    snapshots: frozenset[str]
    ingests: frozenset[str]


@dataclass(frozen=True)
class GCResult:
    """What a collection removed (or, with ``dry_run``, would remove)."""

    blobs: tuple[str, ...]
    snapshots: tuple[str, ...]
    ingests: tuple[str, ...]
    expired_leases: tuple[str, ...]
    freed_bytes: int


def mark(graph: ReferenceGraph) -> Marked:
    """Everything reachable from the roots in ``graph`` (no I/O)."""
    blobs: set[str] = set()
    chains: set[str] = set(graph.container_snapshots)
    ingests: set[str] = set()
    root_images = set(graph.images) | set(graph.container_images)
    for lease in graph.leases:
        for res in lease.resources:
            if res.kind == "content":
                blobs.add(res.key)
            elif res.kind == "ingest":
                ingests.add(res.key)
            elif res.kind == "snapshot":
                chains.add(res.key)
            elif res.kind == "image":
                root_images.add(res.key)
    for image_id in root_images:
        refs = graph.images.get(image_id)
        if refs is not None:
            blobs |= refs.blobs
            chains |= refs.chain_ids
    # A snapshot is mounted on its parents: keep the whole chain below every kept one.
    pending = list(chains)
    while pending:
        parent = graph.layer_parents.get(pending.pop())
        if parent is not None and parent not in chains:
            chains.add(parent)
            pending.append(parent)
    return Marked(frozenset(blobs), frozenset(chains), frozenset(ingests))


def collect(
    db: Metadata,
    store: LocalStore,
    snapshots: Snapshots | Callable[[str], None] | None = None,
    *,
    now: float | None = None,
    dry_run: bool = False,
) -> GCResult:
    """Expire leases, then remove unreferenced blobs, idle ingests and snapshots.

    ``snapshots`` is the snapshotter (``list``/``remove``), or just a remover, in which
    case the candidates are the layer records in the metadata. An ingest that a writer
    holds right now is never removed, leased or not.
    """
    now = time.time() if now is None else now
    with db.transaction():
        expired = () if dry_run else tuple(db.expire_leases(now=now))
        blob_list = list(store.list())
        ingest_list = store.ingests()
        layer_rows = {layer.chain_id for layer in db.list_layers()}
        if snapshots is None:
            snapshot_keys: list[str] = []
        elif callable(snapshots):
            snapshot_keys = sorted(layer_rows)
        else:
            snapshot_keys = sorted(snapshots.list())
        keep = mark(db.reference_graph(now=now))

        removed_blobs: list[str] = []
        freed = 0
        for blob in sorted(blob_list, key=lambda b: b.digest):
            if blob.digest in keep.blobs:
                continue
            if not dry_run:
                try:
                    store.delete(blob.digest)
                except BlobNotFoundError:
                    continue
            removed_blobs.append(blob.digest)
            freed += blob.size

        removed_ingests: list[str] = []
        for ingest in ingest_list:
            if ingest.ref in keep.ingests:
                continue
            if dry_run or store.abort(ingest.ref, wait=False):
                removed_ingests.append(ingest.ref)
                freed += ingest.offset

        removed_snapshots: list[str] = []
        for key in snapshot_keys:
            if key in keep.snapshots:
                continue
            if not dry_run and snapshots is not None:
                if callable(snapshots):
                    snapshots(key)
                else:
                    snapshots.remove(key)
            removed_snapshots.append(key)
        if not dry_run:
            # Also forget records of snapshots the snapshotter no longer has.
            for chain_id in sorted(layer_rows - keep.snapshots):
                db.delete_layer(chain_id)
    return GCResult(
        tuple(removed_blobs),
        tuple(removed_snapshots),
        tuple(removed_ingests),
        expired,
        freed,
    )
