"""Containers in the metadata database: table ``containers``, one row per container with the
references garbage collection and ``rmi`` need (its image, its snapshot) and its record as
JSON (owned by the containers area, :mod:`declarun.daemon.containers.lifecycle.record`).
The unique ``name`` column is the final word on name conflicts; an image a container uses
cannot be deleted (``RESTRICT``).

Table ``container_volumes`` holds the volumes each container's mounts use (target ->
volume name), written with its row and deleted with it, so which containers use a volume
is a query (:meth:`~declarun.daemon.metadata.volumes.VolumeTables.volume_users`).
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
    #: The volumes its mounts use: mount target -> volume name.
    volumes: Mapping[str, str] = field(default_factory=dict)


def _container(row: tuple[Any, ...], volumes: Mapping[str, str]) -> Container:
    return Container(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]), volumes)


def _volumes_of(conn: sqlite3.Connection, container_id: str | None) -> dict[str, dict[str, str]]:
    """Container id -> {target: volume} (of one container, or of all with ``None``)."""
    query = "SELECT container_id, target, volume FROM container_volumes"
    args: tuple[str, ...] = ()
    if container_id is not None:
        query += " WHERE container_id = ?"
        args = (container_id,)
    found: dict[str, dict[str, str]] = {}
    for cid, target, volume in conn.execute(query + " ORDER BY 1, 2", args):
        found.setdefault(cid, {})[target] = volume
    return found


class ContainerTables(Database):
    """Container rows (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def put_container(self, container: Container) -> None:
        """Insert or replace a container row and its volumes; its image must exist."""
        with self.transaction():
            conn = self._conn()
            try:
                conn.execute(
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
            conn.execute("DELETE FROM container_volumes WHERE container_id = ?", (container.id,))
            conn.executemany(
                "INSERT INTO container_volumes (container_id, target, volume) VALUES (?, ?, ?)",
                [(container.id, t, v) for t, v in sorted(container.volumes.items()) if v],
            )

    def get_container(self, container_id: str) -> Container | None:
        """The container row with this exact ID, or None."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT id, name, image_id, snapshot_key, created, record FROM containers "
                "WHERE id = ?",
                (container_id,),
            ).fetchone()
            volumes = _volumes_of(conn, container_id)
        return None if row is None else _container(row, volumes.get(container_id, {}))

    def list_containers(self) -> list[Container]:
        """Every container row, oldest first."""
        with self._snapshot() as conn:
            rows = conn.execute(
                "SELECT id, name, image_id, snapshot_key, created, record FROM containers "
                "ORDER BY created, id"
            ).fetchall()
            volumes = _volumes_of(conn, None)
        return [_container(r, volumes.get(r[0], {})) for r in rows]

    def delete_container(self, container_id: str) -> bool:
        """Remove a container row; True if it existed."""
        with self.transaction():
            cur = self._conn().execute("DELETE FROM containers WHERE id = ?", (container_id,))
            return cur.rowcount > 0
