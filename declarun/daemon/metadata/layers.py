"""Layer snapshots in the metadata database: table ``layers``, one row per unpacked chain ID
(diff ID, parent chain ID, size, created). Garbage collection forgets a row after it
removed the snapshot's directory.
"""

from __future__ import annotations

from dataclasses import dataclass

from declarun.daemon.metadata.database import Database

__all__ = ["Layer", "LayerTables"]


@dataclass(frozen=True)
class Layer:
    """An unpacked layer (a snapshot directory keyed by chain ID)."""

    chain_id: str
    diff_id: str
    parent: str | None
    size: int = 0  # bytes of the unpacked snapshot
    created: float = 0.0


class LayerTables(Database):
    """Snapshot records (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def put_layer(self, layer: Layer) -> None:
        """Record an unpacked snapshot (idempotent)."""
        with self.transaction():
            self._conn().execute(
                "INSERT INTO layers (chain_id, diff_id, parent, size, created) "
                "VALUES (?, ?, ?, ?, ?) ON CONFLICT(chain_id) DO UPDATE SET size=excluded.size",
                (layer.chain_id, layer.diff_id, layer.parent, layer.size, layer.created),
            )

    def get_layer(self, chain_id: str) -> Layer | None:
        """The snapshot record for ``chain_id``, or None."""
        row = (
            self._conn()
            .execute(
                "SELECT chain_id, diff_id, parent, size, created FROM layers WHERE chain_id = ?",
                (chain_id,),
            )
            .fetchone()
        )
        return None if row is None else Layer(*row)

    def list_layers(self) -> list[Layer]:
        """Every snapshot record."""
        rows = (
            self._conn()
            .execute("SELECT chain_id, diff_id, parent, size, created FROM layers ORDER BY 1")
            .fetchall()
        )
        return [Layer(*r) for r in rows]

    def delete_layer(self, chain_id: str) -> None:
        """Forget a snapshot record (GC calls this after removing the directory)."""
        with self.transaction():
            self._conn().execute("DELETE FROM layers WHERE chain_id = ?", (chain_id,))
