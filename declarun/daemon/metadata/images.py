"""Images and their names in the metadata database.

Tables ``images`` (one row per image ID, the config digest), ``image_blobs`` (every blob
an image references: index, manifest, config, layers with their diff and chain IDs) and
``image_names`` (tags and repo digests, cascade-deleted with their image).

Names are canonical references (``docker.io/library/busybox:latest``, or
``repo@sha256:...`` for a repo digest); the API accepts familiar ones and normalises
them with ``declarun.reference``. Every change to images or names notifies the database's
subscribers after its commit.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from declarun.daemon.images.content import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
)
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata.database import Database, MetadataError
from declarun.errdefs import Conflict, InvalidArgument, NotFound
from declarun.errors import ImageReferenceError
from declarun.reference import is_image_id, parse_reference

__all__ = [
    "AmbiguousImageError",
    "Image",
    "ImageInUseError",
    "ImageLayer",
    "ImageNotFoundError",
    "ImageRecord",
    "ImageReferences",
    "ImageTables",
    "canonical_name",
]

_HEX_PREFIX = re.compile(r"^(?:sha256:)?([a-f0-9]{1,64})$")


class ImageNotFoundError(MetadataError, NotFound):
    """No image matches a name or ID (Docker answers 404)."""


class AmbiguousImageError(MetadataError, InvalidArgument, LookupError):
    """An ID prefix matches more than one image (Docker answers 400)."""


class ImageInUseError(MetadataError, Conflict):
    """An image cannot be deleted: containers use it (Docker answers 409)."""


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


def _blob_columns(desc: Descriptor) -> tuple[str, str, int]:
    return desc.digest, desc.media_type, desc.size


class ImageTables(Database):
    """Images, their blobs and their names (part of :class:`~declarun.daemon.metadata.Metadata`)."""

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

    def list_images(self) -> list[Image]:
        """Every image, newest first (as ``docker images`` lists them)."""
        with self._snapshot() as conn:
            ids = [r[0] for r in conn.execute("SELECT id FROM images ORDER BY added_at DESC, id")]
            return [self.get_image(i) for i in ids]

    def images_by_manifest(self, manifest_digest: str) -> list[Image]:
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

    def oci_index(self) -> list[Descriptor]:
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
