"""The image builder's records in the metadata database: table ``build_cache`` (one row per
built step: its cache key, the image it produced, what it was built on) and table
``image_parents`` (the classic builder's parent link of each image built here). Both rows
go with their image (``ON DELETE CASCADE``), so garbage collection needs no extra rule.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass

from declarun.daemon.metadata.database import Database
from declarun.daemon.metadata.images import ImageNotFoundError

__all__ = ["BuildCacheEntry", "BuildTables"]


@dataclass(frozen=True)
class BuildCacheEntry:
    """One step of a build, remembered: its cache key and the image it produced.

    ``parent`` is the key (or base image ID) the step was built on; ``description`` the
    instruction (for ``/system/df``); ``size`` the bytes of the layer the step added (0
    for a step without one). Rows go with their image (``ON DELETE CASCADE``).
    """

    key: str
    image_id: str
    parent: str
    description: str
    size: int
    created: float
    last_used: float
    usage_count: int = 1


class BuildTables(Database):
    """Build cache entries and image parents (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def put_build_cache(self, entry: BuildCacheEntry) -> None:
        """Remember a built step (replacing an older entry of the same key)."""
        with self.transaction():
            try:
                self._conn().execute(
                    "INSERT INTO build_cache (key, image_id, parent, description, size, created, "
                    "last_used, usage_count) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
                    "ON CONFLICT(key) DO UPDATE SET image_id=excluded.image_id, "
                    "parent=excluded.parent, description=excluded.description, "
                    "size=excluded.size, created=excluded.created, "
                    "last_used=excluded.last_used, usage_count=excluded.usage_count",
                    (
                        entry.key,
                        entry.image_id,
                        entry.parent,
                        entry.description,
                        entry.size,
                        entry.created,
                        entry.last_used,
                        entry.usage_count,
                    ),
                )
            except sqlite3.IntegrityError:
                raise ImageNotFoundError(f"No such image: {entry.image_id}") from None

    def use_build_cache(self, key: str, *, now: float | None = None) -> BuildCacheEntry | None:
        """The entry for ``key`` (its use counted), or None when there is none."""
        now = time.time() if now is None else now
        with self.transaction():
            conn = self._conn()
            cur = conn.execute(
                "UPDATE build_cache SET last_used = ?, usage_count = usage_count + 1 WHERE key = ?",
                (now, key),
            )
            if cur.rowcount == 0:
                return None
            row = conn.execute(f"{_CACHE_SELECT} WHERE key = ?", (key,)).fetchone()
        return BuildCacheEntry(*row)

    def list_build_cache(self) -> list[BuildCacheEntry]:
        """Every cache entry, oldest first."""
        rows = self._conn().execute(f"{_CACHE_SELECT} ORDER BY created, key").fetchall()
        return [BuildCacheEntry(*row) for row in rows]

    def delete_build_cache(self, keys: Iterable[str]) -> int:
        """Forget these cache entries (their images stay); returns how many went."""
        with self.transaction():
            cur = self._conn().executemany(
                "DELETE FROM build_cache WHERE key = ?", [(key,) for key in keys]
            )
            return cur.rowcount

    def set_image_parent(self, image_id: str, parent_id: str) -> None:
        """Record that ``image_id`` was built on ``parent_id`` (the classic builder's link)."""
        with self.transaction():
            self._conn().execute(
                "INSERT INTO image_parents (image_id, parent_id) VALUES (?, ?) "
                "ON CONFLICT(image_id) DO UPDATE SET parent_id=excluded.parent_id",
                (image_id, parent_id),
            )

    def image_parent(self, image_id: str) -> str | None:
        """The image ``image_id`` was built on, if it was built here."""
        row = (
            self._conn()
            .execute("SELECT parent_id FROM image_parents WHERE image_id = ?", (image_id,))
            .fetchone()
        )
        return None if row is None else str(row[0])

    def image_parents(self) -> dict[str, str]:
        """``{image ID: parent image ID}`` for every image that has a parent."""
        rows = self._conn().execute("SELECT image_id, parent_id FROM image_parents").fetchall()
        return {str(child): str(parent) for child, parent in rows}


_CACHE_SELECT = (
    "SELECT key, image_id, parent, description, size, created, last_used, usage_count "
    "FROM build_cache"
)
