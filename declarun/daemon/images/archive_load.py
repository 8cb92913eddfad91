"""``docker load``: read an image archive from an untrusted stream and register its images.

Accepted: Docker archives (``manifest.json``, as ``docker save`` of any version writes
them), OCI image layouts in a tar (``oci-layout`` + ``index.json``, e.g. from ``skopeo
copy ... oci-archive:``), and archives that are both (Docker 25+, ``declarun`` itself);
the whole archive may be gzip, bzip2, xz or zstd compressed.

Three steps, and nothing is registered unless all of them succeed:

1. ``archive_spool``: every member streams into the content store, digests verified,
   under a lease so garbage collection leaves the new blobs alone;
2. ``archive_images``: manifests, configs and layers are checked and turned into image
   records with their names;
3. :func:`register_images`: records and tags are written in one metadata transaction.

Any bad input raises ``ContentError`` (a subclass of ``DaemonError``); the metadata is
then untouched, and blobs the load stored are unreferenced and go at the next GC.

Usage by the ``POST /images/load`` endpoint (a blocking function: run it in a thread,
reading the request body through a blocking adapter)::

    result = load_archive(store, metadata, body_reader, platform=platform)
    for message in stream_messages(result.messages):   # {"stream": "Loaded image: ...\\n"}
        await write_json_line(response, message)
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from declarun.daemon.images import mediatypes
from declarun.daemon.images.archive_images import ArchiveImage, images_from_archive
from declarun.daemon.images.archive_spool import spool_archive
from declarun.daemon.images.archive_tar import Readable
from declarun.daemon.images.content import Descriptor, LocalStore
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import ImageNotFoundError, LeaseResource, Metadata

__all__ = [
    "ArchiveImage",
    "LoadResult",
    "load_archive",
    "register_images",
    "stream_body",
    "stream_messages",
]

_LEASE_TTL = 3600.0


@dataclass(frozen=True)
class LoadResult:
    """What a load registered, and the lines ``docker load`` prints (without newlines)."""

    images: tuple[ArchiveImage, ...]
    messages: tuple[str, ...]


def register_images(metadata: Metadata, images: Iterable[ArchiveImage]) -> list[str]:
    """Store the images and point their names at them, all in one transaction.

    An image already stored keeps its record (and the manifest it was stored with); a
    name that pointed elsewhere moves, as Docker does. Returns Docker's messages:
    ``The image NAME already exists, renaming the old one with ID ID to empty string``,
    ``Loaded image: NAME`` per name, or ``Loaded image ID: ID`` for an unnamed image.
    """
    lines: list[str] = []
    with metadata.transaction():
        for image in images:
            try:
                metadata.get_image(image.record.id)
            except ImageNotFoundError:
                metadata.put_image(image.record)
            for ref in image.names:
                previous = metadata.tag(str(ref), image.record.id)
                if previous is not None and previous != image.record.id:
                    lines.append(
                        f"The image {ref.familiar()} already exists, renaming the old one "
                        f"with ID {previous} to empty string"
                    )
                lines.append(f"Loaded image: {ref.familiar()}")
            if not image.names:
                lines.append(f"Loaded image ID: {image.record.id}")
    return lines


def load_archive(
    store: LocalStore,
    metadata: Metadata,
    stream: Readable,
    *,
    platform: Platform | None = None,
) -> LoadResult:
    """Load every image of the archive read from ``stream`` (see the module docstring).

    ``platform`` chooses from multi-platform indexes (default: the host platform).
    Blocking; raises ``ContentError`` for a bad archive, leaving no image registered.
    """
    with metadata.lease(_LEASE_TTL) as lease:
        spooled = spool_archive(store, metadata, lease.id, stream)

        def put(data: bytes) -> Descriptor:
            digest = "sha256:" + hashlib.sha256(data).hexdigest()
            metadata.add_lease_resources(lease.id, [LeaseResource("content", digest)])
            store.put(data, expected=digest)
            return Descriptor(mediatypes.OCI_MANIFEST, digest, len(data))

        images = images_from_archive(store, spooled, put, platform=platform)
        lines = register_images(metadata, images)
    return LoadResult(tuple(images), tuple(lines))


def stream_messages(lines: Iterable[str]) -> list[dict[str, str]]:
    """The JSON messages of ``/images/load``: ``{"stream": line + "\\n"}`` each."""
    return [{"stream": line + "\n"} for line in lines]


def stream_body(lines: Iterable[str]) -> bytes:
    """The same messages as newline-separated JSON, for a non-streamed response."""
    return b"".join(json.dumps(m).encode() + b"\n" for m in stream_messages(lines))
