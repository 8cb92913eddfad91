"""Volumes in the metadata database, and which containers use them.

Table ``volumes``: one row per volume of the local driver (name, driver, creation time,
labels and options as JSON objects); the volume's data stays a directory of the volume
store. Which containers use a volume is :meth:`VolumeTables.volume_users`, a query of the
``container_volumes`` the container rows carry -- the one answer behind ``volume rm``'s
"in use", the ``dangling`` filter, prune and the removal of anonymous volumes.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from declarun.daemon.metadata.database import Database, MetadataError

__all__ = ["VolumeRow", "VolumeTables"]


@dataclass(frozen=True)
class VolumeRow:
    """A volume as the database keeps it."""

    name: str
    driver: str
    created_at: str  # RFC 3339, as the API shows it
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)


def _volume(row: tuple[Any, ...]) -> VolumeRow:
    return VolumeRow(row[0], row[1], row[2], json.loads(row[3]), json.loads(row[4]))


_COLUMNS = "name, driver, created_at, labels, options"


class VolumeTables(Database):
    """Volume rows and their users (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def add_volume(self, volume: VolumeRow) -> bool:
        """Insert a volume row; False (and nothing written) when the name exists."""
        with self.transaction():
            cur = self._conn().execute(
                f"INSERT OR IGNORE INTO volumes ({_COLUMNS}) VALUES (?, ?, ?, ?, ?)",
                (
                    volume.name,
                    volume.driver,
                    volume.created_at,
                    json.dumps(dict(volume.labels), sort_keys=True),
                    json.dumps(dict(volume.options), sort_keys=True),
                ),
            )
            return cur.rowcount > 0

    def get_volume(self, name: str) -> VolumeRow | None:
        """The volume called ``name``, or None."""
        row = (
            self._conn()
            .execute(f"SELECT {_COLUMNS} FROM volumes WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else _volume(row)

    def list_volumes(self) -> list[VolumeRow]:
        """Every volume, by name."""
        rows = self._conn().execute(f"SELECT {_COLUMNS} FROM volumes ORDER BY name").fetchall()
        return [_volume(r) for r in rows]

    def delete_volume(self, name: str) -> bool:
        """Forget a volume row; True if it existed. Refused while a container uses it."""
        with self.transaction():
            users = self.volume_users(name)
            if users:
                raise MetadataError(f"volume {name} is in use by {', '.join(users)}")
            cur = self._conn().execute("DELETE FROM volumes WHERE name = ?", (name,))
            return cur.rowcount > 0

    def volume_users(self, name: str) -> list[str]:
        """IDs of the containers whose mounts use volume ``name``, oldest container first."""
        rows = (
            self._conn()
            .execute(
                "SELECT DISTINCT c.id, c.created FROM container_volumes v "
                "JOIN containers c ON c.id = v.container_id WHERE v.volume = ? "
                "ORDER BY c.created, c.id",
                (name,),
            )
            .fetchall()
        )
        return [r[0] for r in rows]
