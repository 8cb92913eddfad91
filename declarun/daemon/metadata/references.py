"""What references what, read in one transaction: the input of garbage collection.

:meth:`ReferenceTables.reference_graph` is everything that keeps blobs and snapshots alive
-- images and their blobs and chains, the parents of layers, the images and snapshots of
containers, the active leases -- so that ``daemon.images.gc`` marks from it and nothing
else.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass

from declarun.daemon.metadata.database import Database
from declarun.daemon.metadata.leases import Lease, read_leases

__all__ = ["ImageRefs", "ReferenceGraph", "ReferenceTables"]


@dataclass(frozen=True)
class ImageRefs:
    """What one image keeps alive: blob digests and snapshot chain IDs."""

    blobs: frozenset[str]
    chain_ids: frozenset[str]


@dataclass(frozen=True)
class ReferenceGraph:
    """Everything garbage collection needs, read in one transaction."""

    images: Mapping[str, ImageRefs]
    layer_parents: Mapping[str, str | None]
    container_images: frozenset[str]
    container_snapshots: frozenset[str]
    leases: tuple[Lease, ...]  # only the active ones


class ReferenceTables(Database):
    """The reference graph (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def reference_graph(self, *, now: float | None = None) -> ReferenceGraph:
        """Everything that keeps blobs and snapshots alive, read in one transaction."""
        now = time.time() if now is None else now
        with self._snapshot() as conn:
            blobs: dict[str, set[str]] = {}
            chains: dict[str, set[str]] = {}
            for image_id in conn.execute("SELECT id FROM images"):
                blobs[image_id[0]], chains[image_id[0]] = set(), set()
            for image_id, digest, chain_id in conn.execute(
                "SELECT image_id, digest, chain_id FROM image_blobs"
            ):
                blobs[image_id].add(digest)
                if chain_id is not None:
                    chains[image_id].add(chain_id)
            parents = {c: p for c, p in conn.execute("SELECT chain_id, parent FROM layers")}
            container_rows = conn.execute(
                "SELECT image_id, snapshot_key FROM containers"
            ).fetchall()
            leases = [lease for lease in read_leases(conn) if lease.active(now)]
        return ReferenceGraph(
            images={i: ImageRefs(frozenset(blobs[i]), frozenset(chains[i])) for i in sorted(blobs)},
            layer_parents=parents,
            container_images=frozenset(r[0] for r in container_rows if r[0] is not None),
            container_snapshots=frozenset(r[1] for r in container_rows if r[1] is not None),
            leases=tuple(leases),
        )
