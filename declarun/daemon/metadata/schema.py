"""The schema of the metadata database, as the migrations that build it.

``PRAGMA user_version`` counts the migrations applied; opening the database runs the
missing ones, in one transaction, in order, and refuses a database newer than this code.
A new schema version is a new entry appended to :data:`MIGRATIONS`, never an edit of an
old one.
"""

from __future__ import annotations

__all__ = ["MIGRATIONS", "SCHEMA_VERSION"]


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

# Each entry upgrades the schema by one version; user_version counts the entries applied.
MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1,)
SCHEMA_VERSION = len(MIGRATIONS)
