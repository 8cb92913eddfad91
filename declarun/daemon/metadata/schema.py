"""The schema of the metadata database, as the migrations that build it.

``PRAGMA user_version`` counts the migrations applied; opening the database runs the
missing ones, in one transaction, in order, and refuses a database newer than this code.
A new schema version is a new entry appended to :data:`MIGRATIONS`, never an edit of an
old one. A migration is a sequence of steps: SQL statements, or functions given the
connection for what SQL alone cannot do (reading the JSON a version-1 row holds).

* version 1: images, their names and blobs, layers, leases, containers;
* version 2: volumes and networks join the database, with what references them --
  ``container_volumes`` (the volumes each container's mounts use, filled from the
  containers' records) and ``network_endpoints`` (the networks each started container is
  attached to) -- so "who uses this volume / network" is a query. The volume and network
  stores import their JSON files of older data roots when they are first opened.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable

__all__ = ["MIGRATIONS", "SCHEMA_VERSION", "Step"]

#: One step of a migration: a statement, or a function run on the migrating connection.
Step = str | Callable[[sqlite3.Connection], None]


_SCHEMA_V1 = (
    """CREATE TABLE images (
        id TEXT PRIMARY KEY,
        manifest_digest TEXT NOT NULL,
        os TEXT NOT NULL,
        architecture TEXT NOT NULL,
        variant TEXT,
        created TEXT,
        size INTEGER NOT NULL,
        added_at REAL NOT NULL
    )""",
    "CREATE INDEX images_manifest ON images(manifest_digest)",
    """CREATE TABLE image_names (
        name TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('tag', 'digest')),
        created REAL NOT NULL
    )""",
    "CREATE INDEX image_names_image ON image_names(image_id)",
    """CREATE TABLE image_blobs (
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        role TEXT NOT NULL CHECK (role IN ('index', 'manifest', 'config', 'layer')),
        position INTEGER NOT NULL,
        digest TEXT NOT NULL,
        media_type TEXT NOT NULL,
        size INTEGER NOT NULL,
        diff_id TEXT,
        chain_id TEXT,
        PRIMARY KEY (image_id, role, position),
        CHECK ((role = 'layer') = (diff_id IS NOT NULL AND chain_id IS NOT NULL))
    )""",
    "CREATE INDEX image_blobs_digest ON image_blobs(digest)",
    """CREATE TABLE layers (
        chain_id TEXT PRIMARY KEY,
        diff_id TEXT NOT NULL,
        parent TEXT,
        size INTEGER NOT NULL,
        created REAL NOT NULL
    )""",
    """CREATE TABLE leases (
        id TEXT PRIMARY KEY,
        created REAL NOT NULL,
        expires REAL
    )""",
    """CREATE TABLE lease_resources (
        lease_id TEXT NOT NULL REFERENCES leases(id) ON DELETE CASCADE,
        kind TEXT NOT NULL CHECK (kind IN ('content', 'ingest', 'snapshot', 'image')),
        key TEXT NOT NULL,
        PRIMARY KEY (lease_id, kind, key)
    )""",
    # Issue 4 owns the record's shape; the columns here are what GC and lookups need.
    """CREATE TABLE containers (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL UNIQUE,
        image_id TEXT REFERENCES images(id) ON DELETE RESTRICT,
        snapshot_key TEXT,
        created REAL NOT NULL,
        record TEXT NOT NULL DEFAULT '{}'
    )""",
    "CREATE INDEX containers_image ON containers(image_id)",
)


def _container_volumes_from_records(conn: sqlite3.Connection) -> None:
    """Fill ``container_volumes`` from the ``volume_names`` of each stored container record."""
    rows = conn.execute("SELECT id, record FROM containers").fetchall()
    for container_id, text in rows:
        try:
            names = json.loads(text).get("volume_names") or {}
        except (ValueError, AttributeError):
            continue  # a damaged record: the containers area skips it when loading, too
        if not isinstance(names, dict):
            continue
        conn.executemany(
            "INSERT OR IGNORE INTO container_volumes (container_id, target, volume) "
            "VALUES (?, ?, ?)",
            [(container_id, str(t), str(v)) for t, v in names.items() if v],
        )


_SCHEMA_V2: tuple[Step, ...] = (
    """CREATE TABLE volumes (
        name TEXT PRIMARY KEY,
        driver TEXT NOT NULL,
        created_at TEXT NOT NULL,
        labels TEXT NOT NULL DEFAULT '{}',
        options TEXT NOT NULL DEFAULT '{}'
    )""",
    # No reference to volumes(name): a named volume a container mounts is created at its
    # first start, after the container.
    """CREATE TABLE container_volumes (
        container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
        target TEXT NOT NULL,
        volume TEXT NOT NULL,
        PRIMARY KEY (container_id, target)
    )""",
    "CREATE INDEX container_volumes_volume ON container_volumes(volume)",
    """CREATE TABLE networks (
        id TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        builtin INTEGER NOT NULL,
        created TEXT NOT NULL,
        record TEXT NOT NULL
    )""",
    "CREATE INDEX networks_name ON networks(name)",
    """CREATE TABLE network_states (
        container_id TEXT PRIMARY KEY,
        state TEXT NOT NULL
    )""",
    """CREATE TABLE network_endpoints (
        container_id TEXT NOT NULL REFERENCES network_states(container_id) ON DELETE CASCADE,
        network_id TEXT NOT NULL,
        PRIMARY KEY (container_id, network_id)
    )""",
    "CREATE INDEX network_endpoints_network ON network_endpoints(network_id)",
    _container_volumes_from_records,
)

# Version 3: the image builder's step cache and the classic builder's image parents.
_SCHEMA_V3: tuple[Step, ...] = (
    """CREATE TABLE build_cache (
        key TEXT PRIMARY KEY,
        image_id TEXT NOT NULL REFERENCES images(id) ON DELETE CASCADE,
        parent TEXT NOT NULL,
        description TEXT NOT NULL,
        size INTEGER NOT NULL,
        created REAL NOT NULL,
        last_used REAL NOT NULL,
        usage_count INTEGER NOT NULL
    )""",
    "CREATE INDEX build_cache_image ON build_cache(image_id)",
    """CREATE TABLE image_parents (
        image_id TEXT PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
        parent_id TEXT NOT NULL
    )""",
    "CREATE INDEX image_parents_parent ON image_parents(parent_id)",
)

# Each entry upgrades the schema by one version; user_version counts the entries applied.
MIGRATIONS: tuple[tuple[Step, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2, _SCHEMA_V3)
SCHEMA_VERSION = len(MIGRATIONS)
