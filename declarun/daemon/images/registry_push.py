"""The push side of the distribution API: blob uploads, cross-repository mounts, manifests.

``push_blob`` does what dockerd does for each layer: skip a blob the repository already
has (``HEAD``), try to mount it from other repositories of the same registry
(``POST /blobs/uploads/?mount=<digest>&from=<repo>``), and otherwise upload it -- in one
``PUT ...?digest=`` (monolithic) or as ``PATCH`` chunks of ``chunk_size`` bytes closed by
an empty ``PUT``. The source is an opener of a seekable binary file, so a retried request
can re-read its bytes. ``put_manifest`` pushes a manifest by tag or digest and checks the
registry's digest agrees with ours.
"""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import BinaryIO, Literal
from urllib.parse import quote

from declarun.daemon.images.registry import Repository
from declarun.daemon.images.registry_transport import Endpoint
from declarun.errors import ContentError, RegistryError
from declarun.reference import validate_digest

__all__ = ["BlobOpener", "PushResult", "bytes_opener", "push_blob", "put_manifest"]

# Opens the blob for reading from its first byte; called once per (re)try.
BlobOpener = Callable[[], BinaryIO]
_READ = 1 << 20


@dataclass(frozen=True)
class PushResult:
    """What happened to one blob: it was there, was mounted, or was uploaded."""

    digest: str
    size: int
    outcome: Literal["exists", "mounted", "uploaded"]
    mounted_from: str | None = None


def bytes_opener(data: bytes) -> BlobOpener:
    """A ``BlobOpener`` over bytes in memory."""
    import io

    return lambda: io.BytesIO(data)


def _file_body(opener: BlobOpener, start: int, length: int) -> Callable[[], AsyncIterator[bytes]]:
    """A body factory streaming ``length`` bytes from ``start`` (fresh for each attempt)."""

    async def body() -> AsyncIterator[bytes]:
        with opener() as source:
            source.seek(start)
            remaining = length
            while remaining:
                chunk = source.read(min(_READ, remaining))
                if not chunk:
                    raise ContentError(f"blob source ended {remaining} bytes early")
                remaining -= len(chunk)
                yield chunk

    return body


def _with_digest(location: str, digest: str) -> str:
    # String concatenation keeps the registry's opaque upload state exactly as sent.
    separator = "&" if "?" in location else "?"
    return f"{location}{separator}digest={quote(digest, safe='')}"


async def _start_upload(
    repo: Repository, digest: str, mount_from: str | None
) -> tuple[str | None, Endpoint]:
    """POST an upload (or a mount). Returns (None, endpoint) if mounted, else the Location."""
    query = ""
    scopes = [repo.scope("pull,push")]
    if mount_from:
        query = f"?mount={quote(digest, safe='')}&from={quote(mount_from, safe='/')}"
        scopes.append(repo.scope("pull", mount_from))
    resp, endpoint = await repo.request(
        "POST",
        f"blobs/uploads/{query}",
        scopes=scopes,
        headers={"Content-Length": "0"},
        push=True,
    )
    try:
        if mount_from and resp.status == 201:
            return None, endpoint
        await repo.check(resp, f"upload of {digest} to {repo.path}", (202,))
        location = resp.headers.get("Location")
        if not location:
            raise RegistryError(f"upload of {digest}: registry gave no upload Location")
        return location, endpoint
    finally:
        resp.release()


async def push_blob(
    repo: Repository,
    digest: str,
    size: int,
    opener: BlobOpener,
    *,
    chunk_size: int | None = None,
    mount_from: Sequence[str] = (),
) -> PushResult:
    """Make ``repo`` hold blob ``digest`` (``size`` bytes read through ``opener``).

    ``mount_from`` lists repository paths on the same registry that may already hold the
    blob; ``chunk_size`` selects a chunked upload (None: one monolithic PUT).
    """
    validate_digest(digest)
    if chunk_size is not None and chunk_size <= 0:
        raise ValueError("chunk_size must be positive")
    scopes = [repo.scope("pull,push")]
    if await _head(repo, digest, scopes) is not None:
        return PushResult(digest, size, "exists")
    location: str | None = None
    endpoint: Endpoint | None = None
    for source in mount_from:
        if source == repo.path:
            continue
        location, endpoint = await _start_upload(repo, digest, source)
        if location is None:
            return PushResult(digest, size, "mounted", source)
        break  # A refused mount still opened an upload: use it.
    if location is None:
        location, endpoint = await _start_upload(repo, digest, None)
    if location is None or endpoint is None:
        raise RegistryError(f"upload of {digest}: registry mounted a blob we did not ask to mount")
    if chunk_size is None:
        resp, _ = await repo.request(
            "PUT",
            _with_digest(location, digest),
            scopes=scopes,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
            data=_file_body(opener, 0, size),
            endpoint=endpoint,
        )
    else:
        offset = 0
        while offset < size:
            length = min(chunk_size, size - offset)
            resp, _ = await repo.request(
                "PATCH",
                location,
                scopes=scopes,
                headers={
                    "Content-Type": "application/octet-stream",
                    "Content-Length": str(length),
                    "Content-Range": f"{offset}-{offset + length - 1}",
                },
                data=_file_body(opener, offset, length),
                endpoint=endpoint,
            )
            try:
                await repo.check(resp, f"chunk {offset} of {digest}", (202, 204))
                location = resp.headers.get("Location") or location
            finally:
                resp.release()
            offset += length
        resp, _ = await repo.request(
            "PUT",
            _with_digest(location, digest),
            scopes=scopes,
            headers={"Content-Length": "0"},
            endpoint=endpoint,
        )
    try:
        await repo.check(resp, f"upload of {digest} to {repo.path}", (201, 204))
        stored = resp.headers.get("Docker-Content-Digest")
    finally:
        resp.release()
    if stored and stored != digest:
        raise ContentError(f"registry stored {stored} for blob {digest}")
    return PushResult(digest, size, "uploaded")


async def _head(repo: Repository, digest: str, scopes: list[str]) -> int | None:
    resp, _ = await repo.request("HEAD", f"blobs/{digest}", scopes=scopes, push=True)
    try:
        if resp.status == 404:
            return None
        await repo.check(resp, f"blob {digest}", (200,))
        return resp.content_length or 0
    finally:
        resp.release()


async def put_manifest(repo: Repository, reference: str, data: bytes, media_type: str) -> str:
    """PUT a manifest under a tag or digest; returns its digest (checked with the registry's)."""
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    if ":" in reference and reference != digest:
        raise ContentError(f"manifest content is {digest}, not {reference}")
    resp, _ = await repo.request(
        "PUT",
        f"manifests/{reference}",
        headers={"Content-Type": media_type},
        data=data,
        push=True,
    )
    try:
        await repo.check(resp, f"manifest {repo.path}:{reference}", (201, 200, 204))
        stored = resp.headers.get("Docker-Content-Digest")
    finally:
        resp.release()
    if stored and stored != digest:
        raise ContentError(f"registry stored manifest {stored}, we sent {digest}")
    return digest
