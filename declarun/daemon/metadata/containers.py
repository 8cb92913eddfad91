"""Containers in the metadata database: table ``containers``, one row per container with the
references garbage collection and ``rmi`` need (its image, its snapshot) and its record as
JSON (owned by the containers area, :mod:`declarun.daemon.containers.lifecycle.record`).
The unique ``name`` column is the final word on name conflicts; an image a container uses
cannot be deleted (``RESTRICT``).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from declarun.daemon.metadata.database import Database, MetadataError

__all__ = ["Container", "ContainerTables"]


@dataclass(frozen=True)
class Container:
    """A container's row: its references to an image and a snapshot, and its record."""

    id: str
    name: str
    image_id: str | None
    snapshot_key: str | None
    created: float
    record: Mapping[str, Any] = field(default_factory=dict)


def _container(row: tuple[Any, ...]) -> Container:
    return Container(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))


class ContainerTables(Database):
    """Container rows (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def put_container(self, container: Container) -> None:
        """Insert or replace a container row; its image must exist."""
        with self.transaction():
            try:
                self._conn().execute(
                    "INSERT INTO containers (id, name, image_id, snapshot_key, created, record) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO UPDATE SET "
                    "name=excluded.name, image_id=excluded.image_id, "
                    "snapshot_key=excluded.snapshot_key, record=excluded.record",
                    (
                        container.id,
                        container.name,
                        container.image_id,
                        container.snapshot_key,
                        container.created,
                        json.dumps(dict(container.record), sort_keys=True),
                    ),
                )
            except sqlite3.IntegrityError as err:
                raise MetadataError(f"cannot store container {container.id}: {err}") from None

    def get_container(self, container_id: str) -> Container | None:
        """The container row with this exact ID, or None."""
        row = (
            self._conn()
            .execute(
                "SELECT id, name, image_id, snapshot_key, created, record FROM containers "
                "WHERE id = ?",
                (container_id,),
            )
            .fetchone()
        )
        return None if row is None else _container(row)

    def list_containers(self) -> list[Container]:
        """Every container row, oldest first."""
        rows = (
            self._conn()
            .execute(
                "SELECT id, name, image_id, snapshot_key, created, record FROM containers "
                "ORDER BY created, id"
            )
            .fetchall()
        )
        return [_container(r) for r in rows]

    def delete_container(self, container_id: str) -> bool:
        """Remove a container row; True if it existed."""
        with self.transaction():
            cur = self._conn().execute("DELETE FROM containers WHERE id = ?", (container_id,))
            return cur.rowcount > 0
