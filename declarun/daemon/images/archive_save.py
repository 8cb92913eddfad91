"""``docker save``: images from the content store as one tar that is two formats at once.

What moby 25+ writes, and what this module writes, is both

* an **OCI image layout**: ``oci-layout``, ``index.json`` (one manifest descriptor per
  tag, annotated ``io.containerd.image.name=<full name>`` and
  ``org.opencontainers.image.ref.name=<tag>``), ``blobs/sha256/<hex>``; and
* a **Docker archive**: ``manifest.json`` (``[{"Config", "RepoTags", "Layers"}]``, paths
  into ``blobs/``) and ``repositories`` (``{name: {tag: <hex>}}``, only when tagged).

Blobs go in exactly as stored, so manifest digests survive a save/load round trip. This
means compressed layers stay compressed, and ``manifest.json`` points at them: Docker's
loaders (graphdriver and containerd store alike) decompress layer files they find
compressed, as do skopeo and containerd. Unlike moby, an image saved by ID only is also
listed in ``index.json`` (without name annotations), so OCI tools can read any archive.

Members: the four metadata files first (a streaming reader knows what follows), then
``blobs/``, ``blobs/sha256/`` and each blob once, in digest order. Headers are
deterministic: mtime 0, owner 0:0, no user names; the same images give the same bytes.

Usage by the ``GET /images/get`` endpoint::

    items = resolve_save_names(metadata, names)   # ImageNotFoundError -> 404, before any byte
    for chunk in iter_save_archive(store, items):  # blocking file reads: run in a thread
        await response.write(chunk)

A blob that changed on disk is detected while it is streamed and raises ``ContentError``
mid-stream; the caller must then abort the connection so the client sees a failed
transfer rather than a complete-looking archive.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, BinaryIO

from declarun.daemon.images.archive_tar import end_of_archive, member_header, padding
from declarun.daemon.images.content import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
    LocalStore,
    parse_digest,
)
from declarun.daemon.images.mediatypes import OCI_INDEX
from declarun.daemon.metadata import Image, ImageRecord, Metadata
from declarun.errors import ContentError, ImageReferenceError
from declarun.reference import ImageReference, parse_reference

__all__ = [
    "SaveItem",
    "iter_save_archive",
    "resolve_save_names",
    "write_save_archive",
]

_CHUNK = 1 << 20
_LAYOUT = b'{"imageLayoutVersion":"1.0.0"}'


@dataclass(frozen=True)
class SaveItem:
    """One image to save, with the tags (``repo:tag`` references) to record for it."""

    record: ImageRecord
    tags: tuple[ImageReference, ...] = ()


def _tag_refs(image: Image) -> list[ImageReference]:
    return [parse_reference(name) for name in image.tags]


def resolve_save_names(metadata: Metadata, names: Sequence[str]) -> list[SaveItem]:
    """The images ``docker save NAME...`` means, with the tags each one keeps.

    As in Docker: ``repo:tag`` saves that image with that tag; a bare ``repo`` saves
    every tagged image of the repository with all its tags there; an image ID (full,
    ``sha256:``-prefixed or a unique prefix) or a ``repo@digest`` saves the image with no
    tag. Raises ``ImageNotFoundError``/``AmbiguousImageError`` (from the metadata) or
    ``ImageReferenceError`` before anything is written.
    """
    order: list[str] = []
    records: dict[str, ImageRecord] = {}
    tags: dict[str, list[ImageReference]] = {}

    def add(image: Image, ref: ImageReference | None) -> None:
        if image.id not in records:
            order.append(image.id)
            records[image.id] = image.record
            tags[image.id] = []
        if ref is not None and ref not in tags[image.id]:
            tags[image.id].append(ref)

    for name in names:
        try:
            ref = parse_reference(name, default_tag=None)
        except ImageReferenceError:
            ref = None  # a 64-hex ID: never a repository name
        if ref is None or ref.digest is not None or ref.familiar_name() == "sha256":
            add(metadata.resolve(name), None)
        elif ref.tag is None:
            found = False
            for image in metadata.list_images():
                for tagged in _tag_refs(image):
                    if tagged.repository == ref.repository:
                        add(image, tagged)
                        found = True
            if not found:
                add(metadata.resolve(name), None)  # a short image ID looks like a name
        else:
            add(metadata.resolve(str(ref)), ref)
    return [SaveItem(records[i], tuple(tags[i])) for i in order]


def _json(doc: Any) -> bytes:
    return json.dumps(doc, separators=(",", ":")).encode()


def _blob_path(digest: str) -> str:
    algorithm, encoded = parse_digest(digest)
    return f"blobs/{algorithm}/{encoded}"


def _index_entry(record: ImageRecord, ref: ImageReference | None) -> dict[str, Any]:
    annotations = {}
    if ref is not None:
        annotations = {ANNOTATION_IMAGE_NAME: str(ref), ANNOTATION_REF_NAME: ref.tag or ""}
    desc = Descriptor(
        record.manifest.media_type,
        record.manifest.digest,
        record.manifest.size,
        record.platform,
        annotations,
    )
    return desc.to_json()


def _metadata_files(items: Sequence[SaveItem]) -> list[tuple[str, bytes]]:
    """``oci-layout``, ``index.json``, ``manifest.json`` and (if tagged) ``repositories``."""
    index: list[dict[str, Any]] = []
    legacy: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    for item in items:
        rec = item.record
        for ref in item.tags or (None,):
            index.append(_index_entry(rec, ref))
        legacy.append(
            {
                "Config": _blob_path(rec.config.digest),
                # Docker writes null for an image saved by ID; loaders expect that.
                "RepoTags": [ref.familiar() for ref in item.tags] or None,
                "Layers": [_blob_path(layer.blob.digest) for layer in rec.layers],
            }
        )
        for ref in item.tags:
            top = parse_digest(rec.layers[-1].diff_id)[1] if rec.layers else ""
            repositories.setdefault(ref.familiar_name(), {})[ref.tag or ""] = top
    files = [
        ("oci-layout", _LAYOUT),
        ("index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": index})),
        ("manifest.json", _json(legacy) + b"\n"),
    ]
    if repositories:
        files.append(("repositories", _json(repositories) + b"\n"))
    return files


def _blobs(store: LocalStore, items: Iterable[SaveItem]) -> list[Descriptor]:
    """Every blob to write, once, in digest order; checked to exist with the right size."""
    wanted: dict[str, Descriptor] = {}
    for item in items:
        rec = item.record
        for desc in (rec.manifest, rec.config, *(layer.blob for layer in rec.layers)):
            wanted.setdefault(desc.digest, desc)
    for desc in wanted.values():
        size = store.info(desc.digest).size  # BlobNotFoundError if absent
        if size != desc.size:
            raise ContentError(
                f"blob {desc.digest} has {size} bytes in the store, the image says {desc.size}"
            )
    return [wanted[d] for d in sorted(wanted)]


def _blob_chunks(store: LocalStore, desc: Descriptor) -> Iterator[bytes]:
    algorithm, encoded = parse_digest(desc.digest)
    hasher = hashlib.new(algorithm)
    sent = 0
    with store.open(desc.digest) as handle:
        while sent < desc.size:
            chunk = handle.read(min(_CHUNK, desc.size - sent))
            if not chunk:
                break
            hasher.update(chunk)
            sent += len(chunk)
            yield chunk
    if sent != desc.size or hasher.hexdigest() != encoded:
        raise ContentError(f"blob {desc.digest} is corrupt in the content store")


def iter_save_archive(store: LocalStore, items: Sequence[SaveItem]) -> Iterator[bytes]:
    """The archive as byte chunks (at most 1 MiB each), reading blobs as it goes.

    Every blob is checked to exist with its recorded size before the first chunk is
    produced, so a missing blob fails the request cleanly; see the module docstring for
    corruption found mid-stream.
    """
    if not items:
        raise ContentError("nothing to save: no images given")
    blobs = _blobs(store, items)
    files = _metadata_files(items)

    def generate() -> Iterator[bytes]:
        for name, data in files:
            yield member_header(name, len(data)) + data + padding(len(data))
        directories = sorted({_blob_path(d.digest).rsplit("/", 1)[0] for d in blobs})
        yield member_header("blobs/", directory=True)
        for directory in directories:
            yield member_header(directory + "/", directory=True)
        for desc in blobs:
            yield member_header(_blob_path(desc.digest), desc.size)
            yield from _blob_chunks(store, desc)
            yield padding(desc.size)
        yield end_of_archive()

    return generate()


def write_save_archive(store: LocalStore, items: Sequence[SaveItem], out: BinaryIO) -> int:
    """Write the archive into a binary file object; returns the number of bytes written."""
    total = 0
    for chunk in iter_save_archive(store, items):
        out.write(chunk)
        total += len(chunk)
    return total
