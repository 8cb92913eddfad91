"""The metadata database: the one authority on what references what.

SQLite in WAL mode (``<data-root>/metadata.db``): images and the blobs they reference,
image names (tags and repo digests), layer snapshots by chain ID, leases that protect
work in progress from garbage collection, and containers (issue 4 fills in their
record). Garbage collection (``daemon.images.gc``) reads ``reference_graph`` and nothing
else to decide what may be deleted.

Concurrency: one connection per thread (WAL lets readers run beside one writer); every
write is a ``BEGIN IMMEDIATE`` transaction, so it takes the write lock up front and
never fails half-way on a lock upgrade. ``transaction()`` lets a caller hold that lock
across several calls (the GC sweep does), and calls made inside it join it.

Names are canonical references (``docker.io/library/busybox:latest``, or
``repo@sha256:...`` for a repo digest); the API accepts familiar ones and normalises
them with ``declarun.reference``. Subscribers registered with ``subscribe`` run
after every committed change to images or names (the daemon rewrites the content
store's ``index.json`` there).
"""

from __future__ import annotations

import builtins
import contextlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from declarun.daemon.images.content import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
)
from declarun.daemon.images.platform import Platform
from declarun.errdefs import Conflict, InvalidArgument, NotFound
from declarun.errors import DaemonError, ImageReferenceError
from declarun.reference import is_image_id, parse_reference

__all__ = [
    "SCHEMA_VERSION",
    "AmbiguousImageError",
    "BuildCacheEntry",
    "Container",
    "Image",
    "ImageInUseError",
    "ImageLayer",
    "ImageNotFoundError",
    "ImageRecord",
    "ImageReferences",
    "ImageRefs",
    "Layer",
    "Lease",
    "LeaseNotFoundError",
    "LeaseResource",
    "Metadata",
    "MetadataError",
    "ReferenceGraph",
    "ResourceKind",
    "canonical_name",
]

ResourceKind = Literal["content", "ingest", "snapshot", "image"]
_BUSY_TIMEOUT_MS = 60_000
_HEX_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


class MetadataError(DaemonError):
    """The metadata database refused an operation or cannot be used."""


class ImageNotFoundError(MetadataError, NotFound):
    """No image matches a name or ID (Docker answers 404)."""


class AmbiguousImageError(MetadataError, InvalidArgument, LookupError):
    """An ID prefix matches more than one image (Docker answers 400)."""


class ImageInUseError(MetadataError, Conflict):
    """An image cannot be deleted: containers use it (Docker answers 409)."""


class LeaseNotFoundError(MetadataError, NotFound):
    """The lease does not exist, or has expired."""


@dataclass(frozen=True)
class ImageLayer:
    """One layer of an image: the blob in the content store and its snapshot identity."""

    blob: Descriptor
    diff_id: str
    chain_id: str


@dataclass(frozen=True)
class ImageRecord:
    """What an image is: its ID (config digest) and every blob it references."""

    id: str
    manifest: Descriptor
    config: Descriptor
    layers: tuple[ImageLayer, ...]
    platform: Platform
    created: str | None = None  # RFC 3339, from the image config
    size: int = 0  # Docker's "Size": bytes the image accounts for
    index: Descriptor | None = None  # the index it was chosen from, when kept

    def blob_digests(self) -> frozenset[str]:
        """Every blob this image needs in the content store."""
        digests = {self.manifest.digest, self.config.digest}
        digests.update(layer.blob.digest for layer in self.layers)
        if self.index is not None:
            digests.add(self.index.digest)
        return frozenset(digests)


@dataclass(frozen=True)
class Image:
    """A stored image with its names."""

    record: ImageRecord
    tags: tuple[str, ...] = ()
    digests: tuple[str, ...] = ()
    added_at: float = 0.0

    @property
    def id(self) -> str:
        """The image ID, ``sha256:`` + hex of its config."""
        return self.record.id


@dataclass(frozen=True)
class ImageReferences:
    """Who refers to an image: its names and the containers created from it."""

    tags: tuple[str, ...]
    digests: tuple[str, ...]
    containers: tuple[str, ...]


@dataclass(frozen=True)
class Layer:
    """An unpacked layer (a snapshot directory keyed by chain ID)."""

    chain_id: str
    diff_id: str
    parent: str | None
    size: int = 0  # bytes of the unpacked snapshot
    created: float = 0.0


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


@dataclass(frozen=True)
class Container:
    """A container's row: its references to an image and a snapshot, and its record."""

    id: str
    name: str
    image_id: str | None
    snapshot_key: str | None
    created: float
    record: Mapping[str, Any] = field(default_factory=dict)


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

# Version 2: the image builder's step cache and the classic builder's image parents.
_SCHEMA_V2 = (
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
_MIGRATIONS: tuple[tuple[str, ...], ...] = (_SCHEMA_V1, _SCHEMA_V2)
SCHEMA_VERSION = len(_MIGRATIONS)


def canonical_name(name: str) -> str:
    """The stored form of an image name: ``repo:tag``, or ``repo@digest`` when pinned.

    Familiar names are normalised (``busybox`` -> ``docker.io/library/busybox:latest``);
    a reference with both tag and digest is stored by its digest, as Docker does.
    """
    ref = parse_reference(name)
    if ref.digest is not None:
        return f"{ref.repository}@{ref.digest}"
    return f"{ref.repository}:{ref.tag}"


def _descriptor(digest: str, media_type: str, size: int) -> Descriptor:
    return Descriptor(media_type=media_type, digest=digest, size=size)


class Metadata:
    """The metadata database at ``path`` (created and migrated on first open)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._subscribers: list[Callable[[], None]] = []
        self._notify_lock = threading.Lock()
        self._migrate()

    # -- connections and transactions -------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path,
                    timeout=_BUSY_TIMEOUT_MS / 1000,
                    isolation_level=None,  # we issue BEGIN/COMMIT ourselves
                    check_same_thread=False,  # only close() crosses threads
                )
                mode = conn.execute("PRAGMA journal_mode=WAL").fetchone()[0]
            except sqlite3.Error as err:
                raise MetadataError(f"cannot open metadata database {self.path}: {err}") from err
            if mode != "wal":
                raise MetadataError(f"{self.path}: cannot switch to WAL mode (got {mode})")
            # FULL: a committed container or image survives a power cut, not only a crash.
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            conn.execute(f"PRAGMA busy_timeout={_BUSY_TIMEOUT_MS}")
            self._local.conn = conn
            self._local.dirty = False
            with self._all_lock:
                self._all.append(conn)
        return conn

    def close(self) -> None:
        """Close every connection (of every thread); the object is unusable afterwards."""
        with self._all_lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
        self._local = threading.local()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[None]:
        """Hold the database's write lock; metadata calls on this thread inside join it.

        Commits when the block ends, rolls back if it raises. Subscribers are told about
        name changes after the commit.
        """
        conn = self._conn()
        if conn.in_transaction:
            yield
            return
        conn.execute("BEGIN IMMEDIATE")
        self._local.dirty = False
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            self._local.dirty = False
            raise
        conn.execute("COMMIT")
        if self._local.dirty:
            self._local.dirty = False
            self._notify()

    @contextlib.contextmanager
    def _snapshot(self) -> Iterator[sqlite3.Connection]:
        """A consistent read across several queries (WAL: never blocks the writer)."""
        conn = self._conn()
        if conn.in_transaction:
            yield conn
            return
        conn.execute("BEGIN")
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def _migrate(self) -> None:
        conn = self._conn()
        with self.transaction():
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise MetadataError(
                    f"{self.path} has schema version {version}, newer than this declarun "
                    f"({SCHEMA_VERSION}); refusing to touch it"
                )
            for number, statements in enumerate(_MIGRATIONS[version:], start=version + 1):
                for statement in statements:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version={number}")

    def schema_version(self) -> int:
        """The ``PRAGMA user_version`` of the open database."""
        return int(self._conn().execute("PRAGMA user_version").fetchone()[0])

    def journal_mode(self) -> str:
        """The SQLite journal mode (always ``wal`` once open)."""
        return str(self._conn().execute("PRAGMA journal_mode").fetchone()[0])

    def subscribe(self, callback: Callable[[], None]) -> None:
        """Call ``callback`` after every committed change to images or their names."""
        self._subscribers.append(callback)

    def _notify(self) -> None:
        # Serialised, and each callback reads the state afresh: the last one to run always
        # sees the latest commit, so concurrent taggers cannot leave a stale index behind.
        with self._notify_lock:
            for callback in self._subscribers:
                callback()

    def _changed(self) -> None:
        self._local.dirty = True

    # -- images -------------------------------------------------------------------------

    def put_image(
        self, record: ImageRecord, *, names: Iterable[str] = (), now: float | None = None
    ) -> Image:
        """Store (or refresh) an image and point ``names`` at it; returns the stored image.

        Storing an ID that exists replaces its blob list (the newest manifest wins) and
        keeps its names and ``added_at``.
        """
        now = time.time() if now is None else now
        with self.transaction():
            conn = self._conn()
            conn.execute(
                """INSERT INTO images
                   (id, manifest_digest, os, architecture, variant, created, size, added_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT(id) DO UPDATE SET manifest_digest=excluded.manifest_digest,
                     os=excluded.os, architecture=excluded.architecture,
                     variant=excluded.variant, created=excluded.created, size=excluded.size""",
                (
                    record.id,
                    record.manifest.digest,
                    record.platform.os,
                    record.platform.architecture,
                    record.platform.variant,
                    record.created,
                    record.size,
                    now,
                ),
            )
            conn.execute("DELETE FROM image_blobs WHERE image_id = ?", (record.id,))
            rows: list[tuple[Any, ...]] = [
                (record.id, "manifest", 0, *_blob_columns(record.manifest), None, None),
                (record.id, "config", 0, *_blob_columns(record.config), None, None),
            ]
            if record.index is not None:
                rows.append((record.id, "index", 0, *_blob_columns(record.index), None, None))
            for position, layer in enumerate(record.layers):
                rows.append(
                    (
                        record.id,
                        "layer",
                        position,
                        *_blob_columns(layer.blob),
                        layer.diff_id,
                        layer.chain_id,
                    )
                )
            conn.executemany(
                """INSERT INTO image_blobs
                   (image_id, role, position, digest, media_type, size, diff_id, chain_id)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?)""",
                rows,
            )
            for name in names:
                self.tag(name, record.id, now=now)
            self._changed()
            return self.get_image(record.id)

    def get_image(self, image_id: str) -> Image:
        """The image with exactly this ID; ``ImageNotFoundError`` if none."""
        with self._snapshot() as conn:
            row = conn.execute(
                "SELECT id, os, architecture, variant, created, size, added_at "
                "FROM images WHERE id = ?",
                (image_id,),
            ).fetchone()
            if row is None:
                raise ImageNotFoundError(f"No such image: {image_id}")
            blobs = conn.execute(
                "SELECT role, digest, media_type, size, diff_id, chain_id FROM image_blobs "
                "WHERE image_id = ? ORDER BY role, position",
                (image_id,),
            ).fetchall()
            names = conn.execute(
                "SELECT name, kind FROM image_names WHERE image_id = ? ORDER BY name",
                (image_id,),
            ).fetchall()
        by_role: dict[str, list[tuple[Any, ...]]] = {}
        for blob in blobs:
            by_role.setdefault(blob[0], []).append(blob)
        manifest = _descriptor(*by_role["manifest"][0][1:4])
        config = _descriptor(*by_role["config"][0][1:4])
        index = _descriptor(*by_role["index"][0][1:4]) if "index" in by_role else None
        layers = tuple(
            ImageLayer(_descriptor(*b[1:4]), diff_id=b[4], chain_id=b[5])
            for b in by_role.get("layer", [])
        )
        record = ImageRecord(
            id=row[0],
            manifest=manifest,
            config=config,
            layers=layers,
            platform=Platform(row[1], row[2], row[3]),
            created=row[4],
            size=row[5],
            index=index,
        )
        return Image(
            record,
            tags=tuple(n for n, kind in names if kind == "tag"),
            digests=tuple(n for n, kind in names if kind == "digest"),
            added_at=row[6],
        )

    def list_images(self) -> builtins.list[Image]:
        """Every image, newest first (as ``docker images`` lists them)."""
        with self._snapshot() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM images ORDER BY added_at DESC, id")]
            return [self.get_image(i) for i in ids]

    def images_by_manifest(self, manifest_digest: str) -> builtins.list[Image]:
        """Images whose manifest (or index) has this digest, e.g. to skip a pull."""
        with self._snapshot() as conn:
            ids = [
                r[0]
                for r in conn.execute(
                    "SELECT DISTINCT image_id FROM image_blobs "
                    "WHERE digest = ? AND role IN ('manifest', 'index') ORDER BY image_id",
                    (manifest_digest,),
                )
            ]
            return [self.get_image(i) for i in ids]

    def resolve(self, name_or_id: str) -> Image:
        """Find an image the way ``docker`` does.

        In order: a full ID (``sha256:<64 hex>`` or 64 hex); a name, familiar or
        canonical (``busybox`` means ``docker.io/library/busybox:latest``); an unambiguous
        ID prefix of any length. Raises ``ImageNotFoundError`` or ``AmbiguousImageError``.
        """
        text = name_or_id.strip()
        if is_image_id(text) or (text.startswith("sha256:") and is_image_id(text[7:])):
            return self.get_image(text if text.startswith("sha256:") else f"sha256:{text}")
        with self._snapshot() as conn:
            name: str | None
            try:
                name = canonical_name(text)
            except ImageReferenceError:
                name = None
            if name is not None:
                row = conn.execute(
                    "SELECT image_id FROM image_names WHERE name = ?", (name,)
                ).fetchone()
                if row is not None:
                    return self.get_image(row[0])
            match = _HEX_PREFIX.match(text)
            if match is not None:
                found = conn.execute(
                    "SELECT id FROM images WHERE substr(id, 1, ?) = ? LIMIT 2",
                    (7 + len(match.group(1)), f"sha256:{match.group(1)}"),
                ).fetchall()
                if len(found) > 1:
                    raise AmbiguousImageError(
                        f"{text} is ambiguous: it matches more than one image ID"
                    )
                if found:
                    return self.get_image(found[0][0])
        raise ImageNotFoundError(f"No such image: {text}")

    def tag(self, name: str, image_id: str, *, now: float | None = None) -> str | None:
        """Point ``name`` at ``image_id`` (moving it if needed); returns the previous image ID.

        A name with ``@digest`` is recorded as a repo digest, any other as a tag.
        """
        canonical = canonical_name(name)
        kind = "digest" if "@" in canonical else "tag"
        now = time.time() if now is None else now
        with self.transaction():
            conn = self._conn()
            if conn.execute("SELECT 1 FROM images WHERE id = ?", (image_id,)).fetchone() is None:
                raise ImageNotFoundError(f"No such image: {image_id}")
            row = conn.execute(
                "SELECT image_id FROM image_names WHERE name = ?", (canonical,)
            ).fetchone()
            previous = None if row is None else str(row[0])
            if previous != image_id:
                conn.execute(
                    "INSERT INTO image_names (name, image_id, kind, created) VALUES (?, ?, ?, ?) "
                    "ON CONFLICT(name) DO UPDATE SET image_id=excluded.image_id, "
                    "created=excluded.created",
                    (canonical, image_id, kind, now),
                )
                self._changed()
            return previous

    def untag(self, name: str) -> str:
        """Remove the name; returns the image ID it pointed to. The image itself stays."""
        canonical = canonical_name(name)
        with self.transaction():
            conn = self._conn()
            row = conn.execute(
                "DELETE FROM image_names WHERE name = ? RETURNING image_id", (canonical,)
            ).fetchone()
            if row is None:
                raise ImageNotFoundError(f"No such image: {name}")
            self._changed()
            return str(row[0])

    def image_references(self, image_id: str) -> ImageReferences:
        """Names of and containers using an image (to decide what ``rmi`` may do)."""
        with self._snapshot() as conn:
            names = conn.execute(
                "SELECT name, kind FROM image_names WHERE image_id = ? ORDER BY name",
                (image_id,),
            ).fetchall()
            containers = conn.execute(
                "SELECT id FROM containers WHERE image_id = ? ORDER BY id", (image_id,)
            ).fetchall()
        return ImageReferences(
            tags=tuple(n for n, k in names if k == "tag"),
            digests=tuple(n for n, k in names if k == "digest"),
            containers=tuple(c[0] for c in containers),
        )

    def delete_image(self, image_id: str) -> Image:
        """Delete an image record and its names; its blobs go at the next GC.

        Raises ``ImageInUseError`` while a container uses it (Docker's ``rmi -f`` then
        only untags: that choice belongs to the API layer).
        """
        with self.transaction():
            conn = self._conn()
            image = self.get_image(image_id)
            users = conn.execute(
                "SELECT id FROM containers WHERE image_id = ? ORDER BY id LIMIT 1", (image_id,)
            ).fetchone()
            if users is not None:
                raise ImageInUseError(
                    f"unable to delete {image_id} (must be forced) - image is being used by "
                    f"container {users[0]}"
                )
            conn.execute("DELETE FROM images WHERE id = ?", (image_id,))
            self._changed()
            return image

    def oci_index(self) -> builtins.list[Descriptor]:
        """The manifest descriptors the content store's ``index.json`` must list.

        One per name, annotated with the canonical name as
        ``org.opencontainers.image.ref.name`` (unambiguous, unlike a bare tag, when two
        repositories share ``latest``) and ``io.containerd.image.name``; one without
        annotations for each image that has no name, so the layout lists every image.
        """
        out = []
        for image in self.list_images():
            rec = image.record
            base = Descriptor(
                rec.manifest.media_type, rec.manifest.digest, rec.manifest.size, rec.platform
            )
            names = image.tags + image.digests
            if not names:
                out.append(base)
            for name in names:
                out.append(
                    Descriptor(
                        base.media_type,
                        base.digest,
                        base.size,
                        base.platform,
                        {ANNOTATION_REF_NAME: name, ANNOTATION_IMAGE_NAME: name},
                    )
                )
        return out

    # -- layers (snapshots) ------------------------------------------------------------

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

    def list_layers(self) -> builtins.list[Layer]:
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

    # -- leases -------------------------------------------------------------------------

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

    def leases(
        self, *, now: float | None = None, include_expired: bool = False
    ) -> builtins.list[Lease]:
        """Leases (active ones only, unless asked), with their resources."""
        now = time.time() if now is None else now
        with self._snapshot() as conn:
            rows = conn.execute("SELECT id, created, expires FROM leases ORDER BY id").fetchall()
            resources: dict[str, list[LeaseResource]] = {}
            for lease_id, kind, key in conn.execute(
                "SELECT lease_id, kind, key FROM lease_resources ORDER BY 1, 2, 3"
            ):
                resources.setdefault(lease_id, []).append(LeaseResource(kind, key))
        out = [Lease(i, c, e, tuple(resources.get(i, ()))) for i, c, e in rows]
        return out if include_expired else [lease for lease in out if lease.active(now)]

    def delete_lease(self, lease_id: str) -> bool:
        """Drop a lease (its resources become collectable unless referenced otherwise)."""
        with self.transaction():
            cur = self._conn().execute("DELETE FROM leases WHERE id = ?", (lease_id,))
            return cur.rowcount > 0

    def expire_leases(self, *, now: float | None = None) -> builtins.list[str]:
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

    # -- build cache and image parents (the image builder) ------------------------------

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

    def list_build_cache(self) -> builtins.list[BuildCacheEntry]:
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

    # -- containers (issue 4 builds on this) ---------------------------------------------

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

    def list_containers(self) -> builtins.list[Container]:
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

    # -- garbage collection input --------------------------------------------------------

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
            leases = self.leases(now=now)
        return ReferenceGraph(
            images={i: ImageRefs(frozenset(blobs[i]), frozenset(chains[i])) for i in sorted(blobs)},
            layer_parents=parents,
            container_images=frozenset(r[0] for r in container_rows if r[0] is not None),
            container_snapshots=frozenset(r[1] for r in container_rows if r[1] is not None),
            leases=tuple(leases),
        )


_CACHE_SELECT = (
    "SELECT key, image_id, parent, description, size, created, last_used, usage_count "
    "FROM build_cache"
)


def _blob_columns(desc: Descriptor) -> tuple[str, str, int]:
    return desc.digest, desc.media_type, desc.size


def _container(row: tuple[Any, ...]) -> Container:
    return Container(row[0], row[1], row[2], row[3], row[4], json.loads(row[5]))
