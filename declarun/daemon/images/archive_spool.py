"""First half of ``docker load``: stream an untrusted archive into the content store.

Members may come in any order and the archive may be larger than memory, so nothing is
interpreted while it streams. Each regular file goes through a content-store writer
(the store's ingest area is the spool) and is committed as a blob named by its own
digest; a member named ``blobs/<alg>/<hex>`` must hash to that digest or the load fails
there. Four small top-level files (``manifest.json``, ``index.json``, ``oci-layout``,
``repositories``) are kept in memory, capped. Links become aliases between member names,
resolved inside the archive only; the legacy per-layer ``<id>/json`` and ``VERSION``
files are skipped (``manifest.json`` and the config carry everything they did).

Every committed digest is added to the caller's lease *before* its commit, so garbage
collection cannot take a blob between its arrival and the image registration. Blobs of a
load that fails stay unreferenced and go at the next collection.
"""

from __future__ import annotations

import posixpath
import re
import shutil
import time
import uuid
from dataclasses import dataclass, field

from declarun.daemon.images.archive_tar import (
    Readable,
    TarMember,
    clean_member_name,
    iter_members,
    open_archive_stream,
    stream_errors,
)
from declarun.daemon.images.content import BlobExistsError, LocalStore, parse_digest
from declarun.daemon.metadata import LeaseResource, Metadata
from declarun.errors import ContentError

__all__ = ["METADATA_FILES", "SpooledArchive", "spool_archive"]

METADATA_FILES = frozenset({"manifest.json", "index.json", "oci-layout", "repositories"})
_MAX_METADATA_FILE = 8 << 20
_MAX_LINK_HOPS = 16
_LEASE_TTL = 3600.0
_RENEW_EVERY = 300.0
_CHUNK = 1 << 20
_BLOB_NAME = re.compile(r"^blobs/(sha256|sha512)/([0-9a-f]+)$")
_LEGACY_V1_FILE = re.compile(r"^[0-9a-f]{64}/(?:json|VERSION)$")


@dataclass
class SpooledArchive:
    """What an archive held: metadata files, member -> blob digest, and link aliases."""

    files: dict[str, bytes] = field(default_factory=dict)
    blobs: dict[str, str] = field(default_factory=dict)
    links: dict[str, str] = field(default_factory=dict)
    compression: str = "none"

    def digest_of(self, name: str) -> str:
        """The blob digest of the member a manifest path names, following links."""
        try:
            path = clean_member_name(name)
        except ContentError:
            raise ContentError(f"manifest.json names an invalid path {name!r}") from None
        for _ in range(_MAX_LINK_HOPS):
            if path in self.blobs:
                return self.blobs[path]
            if path not in self.links:
                raise ContentError(f"file {name!r} named in manifest.json is not in the archive")
            path = self.links[path]
        raise ContentError(f"archive member {name!r}: too many levels of links")


class _LeaseKeeper:
    """Adds blobs to the load's lease, renewing it while a long upload goes on."""

    def __init__(self, metadata: Metadata, lease_id: str) -> None:
        self._metadata, self._lease_id = metadata, lease_id
        self._renewed = time.monotonic()

    def protect(self, digest: str) -> None:
        self._metadata.add_lease_resources(self._lease_id, [LeaseResource("content", digest)])

    def tick(self) -> None:
        if time.monotonic() - self._renewed > _RENEW_EVERY:
            self._metadata.renew_lease(self._lease_id, _LEASE_TTL)
            self._renewed = time.monotonic()


def _link_target(member: TarMember) -> str:
    """The member a link aliases, as an archive path; ``ContentError`` if it leaves."""
    target = member.linkname
    if member.kind == "symlink":
        if target.startswith("/"):
            raise ContentError(f"archive member {member.name!r}: symlink to an absolute path")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(member.name), target))
        if joined == ".." or joined.startswith("../"):
            raise ContentError(f"archive member {member.name!r}: symlink leaves the archive")
        target = joined
    try:
        return clean_member_name(target)
    except ContentError:
        raise ContentError(f"archive member {member.name!r}: link leaves the archive") from None


def _read_capped(name: str, data: Readable, size: int) -> bytes:
    if size > _MAX_METADATA_FILE:
        raise ContentError(f"archive member {name!r} is too large ({size} bytes)")
    parts = []
    while chunk := data.read(_CHUNK):
        parts.append(chunk)
    return b"".join(parts)


def _spool_blob(
    store: LocalStore,
    keeper: _LeaseKeeper,
    ref: str,
    member: TarMember,
    data: Readable,
) -> str:
    """Write one member into the store; returns its digest (verified against its name)."""
    match = _BLOB_NAME.match(member.name)
    expected = None
    if match is not None:
        expected = f"{match[1]}:{match[2]}"
        parse_digest(expected)  # wrong length: refuse, rather than guess
        keeper.protect(expected)
    free = shutil.disk_usage(store.root).free
    if member.size > free:
        raise ContentError(
            f"archive member {member.name!r} declares {member.size} bytes, "
            f"more than the {free} bytes free in the content store"
        )
    try:
        writer = store.writer(ref, expected=expected, size=member.size)
    except BlobExistsError:
        assert expected is not None
        return expected  # already stored and verified; the caller skips the data
    try:
        with writer:
            if writer.offset:
                writer.truncate()
            while chunk := data.read(_CHUNK):
                writer.write(chunk)
                keeper.tick()
            if expected is None:
                expected = f"sha256:{writer.hasher().hexdigest()}"
                keeper.protect(expected)
            try:
                writer.commit(size=member.size, digest=expected)
            except ContentError as err:
                raise ContentError(f"archive member {member.name!r}: {err}") from None
    except BaseException:
        store.abort(ref)  # a partial spool is of no use to anyone: no resume for uploads
        raise
    return expected


def spool_archive(
    store: LocalStore,
    metadata: Metadata,
    lease_id: str,
    stream: Readable,
) -> SpooledArchive:
    """Read the whole archive from ``stream`` into ``store`` under the lease ``lease_id``.

    Raises ``ContentError`` for anything malformed or hostile: a body that is not a
    (possibly gzip/bzip2/xz/zstd-compressed) tar, a truncated stream, an escaping or
    duplicate name, a device or fifo, an oversized metadata file, a blob whose content
    does not match its name.
    """
    keeper = _LeaseKeeper(metadata, lease_id)
    spooled = SpooledArchive()
    seen: set[str] = set()
    session = uuid.uuid4().hex
    try:
        tar_stream, spooled.compression = open_archive_stream(stream)
        for number, (member, data) in enumerate(iter_members(tar_stream)):
            if member.kind == "dir":
                continue
            if not member.name:
                raise ContentError("the archive root is not a directory")
            if member.name in seen:
                raise ContentError(f"archive member {member.name!r} appears more than once")
            seen.add(member.name)
            if member.kind in ("symlink", "hardlink"):
                spooled.links[member.name] = _link_target(member)
            elif member.name in METADATA_FILES:
                spooled.files[member.name] = _read_capped(member.name, data, member.size)
            elif _LEGACY_V1_FILE.match(member.name) is None:
                ref = f"load-{session}-{number}"
                spooled.blobs[member.name] = _spool_blob(store, keeper, ref, member, data)
    except stream_errors as err:
        raise ContentError(f"the archive cannot be read: {err}") from None
    return spooled
