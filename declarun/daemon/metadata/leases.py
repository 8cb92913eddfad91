"""Leases in the metadata database: time-limited roots that protect work in progress (a pull,
an import, a commit) from garbage collection.

Tables ``leases`` (created, expires; NULL = never) and ``lease_resources`` (what a lease
protects: ``content`` digests, ``ingest`` refs, ``snapshot`` chain IDs, ``image`` IDs).
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
import uuid
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Literal

from declarun.daemon.metadata.database import Database, MetadataError
from declarun.errdefs import NotFound

__all__ = [
    "Lease",
    "LeaseNotFoundError",
    "LeaseResource",
    "LeaseTables",
    "ResourceKind",
    "read_leases",
]

ResourceKind = Literal["content", "ingest", "snapshot", "image"]


class LeaseNotFoundError(MetadataError, NotFound):
    """The lease does not exist, or has expired."""


@dataclass(frozen=True)
class LeaseResource:
    """Something a lease protects: a blob digest, an ingest ref, a snapshot or an image."""

    kind: ResourceKind
    key: str


@dataclass(frozen=True)
class Lease:
    """A time-limited GC root, held by an operation in progress (a pull, an import)."""

    id: str
    created: float
    expires: float | None
    resources: tuple[LeaseResource, ...] = ()

    def active(self, now: float) -> bool:
        """True while the lease protects its resources."""
        return self.expires is None or self.expires > now


def read_leases(conn: sqlite3.Connection) -> list[Lease]:
    """Every lease with its resources, expired ones included (inside a read snapshot)."""
    rows = conn.execute("SELECT id, created, expires FROM leases ORDER BY id").fetchall()
    resources: dict[str, list[LeaseResource]] = {}
    for lease_id, kind, key in conn.execute(
        "SELECT lease_id, kind, key FROM lease_resources ORDER BY 1, 2, 3"
    ):
        resources.setdefault(lease_id, []).append(LeaseResource(kind, key))
    return [Lease(i, c, e, tuple(resources.get(i, ()))) for i, c, e in rows]


class LeaseTables(Database):
    """Leases and what they protect (part of :class:`~declarun.daemon.metadata.Metadata`)."""

    def create_lease(
        self,
        ttl: float | None = 3600.0,
        *,
        lease_id: str | None = None,
        resources: Iterable[LeaseResource] = (),
        now: float | None = None,
    ) -> Lease:
        """A new lease expiring ``ttl`` seconds from now (never, with None)."""
        now = time.time() if now is None else now
        lease_id = lease_id or uuid.uuid4().hex
        with self.transaction():
            try:
                self._conn().execute(
                    "INSERT INTO leases (id, created, expires) VALUES (?, ?, ?)",
                    (lease_id, now, None if ttl is None else now + ttl),
                )
            except sqlite3.IntegrityError:
                raise MetadataError(f"lease {lease_id} already exists") from None
            self.add_lease_resources(lease_id, resources, now=now)
            return self.get_lease(lease_id, now=now)

    def add_lease_resources(
        self, lease_id: str, resources: Iterable[LeaseResource], *, now: float | None = None
    ) -> None:
        """Protect more resources under a live lease.

        A puller adds a blob *before* checking whether it exists: this write waits for a
        running GC sweep, so the blob is either kept or visibly gone afterwards.
        """
        now = time.time() if now is None else now
        with self.transaction():
            conn = self._conn()
            row = conn.execute("SELECT expires FROM leases WHERE id = ?", (lease_id,)).fetchone()
            if row is None or (row[0] is not None and row[0] <= now):
                raise LeaseNotFoundError(f"lease {lease_id} does not exist or has expired")
            conn.executemany(
                "INSERT OR IGNORE INTO lease_resources (lease_id, kind, key) VALUES (?, ?, ?)",
                [(lease_id, r.kind, r.key) for r in resources],
            )

    def renew_lease(self, lease_id: str, ttl: float, *, now: float | None = None) -> None:
        """Push a live lease's expiry to ``ttl`` seconds from now."""
        now = time.time() if now is None else now
        with self.transaction():
            cur = self._conn().execute(
                "UPDATE leases SET expires = ? WHERE id = ? AND (expires IS NULL OR expires > ?)",
                (now + ttl, lease_id, now),
            )
            if cur.rowcount == 0:
                raise LeaseNotFoundError(f"lease {lease_id} does not exist or has expired")

    def get_lease(self, lease_id: str, *, now: float | None = None) -> Lease:
        """A lease with its resources; ``LeaseNotFoundError`` if missing or expired."""
        now = time.time() if now is None else now
        for lease in self.leases(include_expired=True):
            if lease.id == lease_id and lease.active(now):
                return lease
        raise LeaseNotFoundError(f"lease {lease_id} does not exist or has expired")

    def leases(self, *, now: float | None = None, include_expired: bool = False) -> list[Lease]:
        """Leases (active ones only, unless asked), with their resources."""
        now = time.time() if now is None else now
        with self._snapshot() as conn:
            out = read_leases(conn)
        return out if include_expired else [lease for lease in out if lease.active(now)]

    def delete_lease(self, lease_id: str) -> bool:
        """Drop a lease (its resources become collectable unless referenced otherwise)."""
        with self.transaction():
            cur = self._conn().execute("DELETE FROM leases WHERE id = ?", (lease_id,))
            return cur.rowcount > 0

    def expire_leases(self, *, now: float | None = None) -> list[str]:
        """Delete every expired lease; returns their IDs."""
        now = time.time() if now is None else now
        with self.transaction():
            rows = (
                self._conn()
                .execute(
                    "DELETE FROM leases WHERE expires IS NOT NULL AND expires <= ? RETURNING id",
                    (now,),
                )
                .fetchall()
            )
            return sorted(r[0] for r in rows)

    @contextlib.contextmanager
    def lease(self, ttl: float = 3600.0) -> Iterator[Lease]:
        """A lease for the duration of a ``with`` block (deleted at its end, even on error).

        If the process dies inside the block, the lease simply expires after ``ttl``.
        """
        held = self.create_lease(ttl)
        try:
            yield held
        finally:
            self.delete_lease(held.id)
