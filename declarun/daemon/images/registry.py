"""An asyncio client for the OCI distribution API (pull side; push is in ``registry_push``).

Use::

    async with RegistryClient(RegistryConfig(insecure_registries=("reg.lan:5000",))) as client:
        repo = client.repository(parse_reference("127.0.0.1:5000/busybox:test"))
        resolved = await repo.resolve("test", platform=None)       # index -> host's manifest
        config = await repo.fetch_blob_bytes(config_digest)
        size = await repo.fetch_blob(layer_digest, sink, size=layer_size)

Blob download contract (``Repository.fetch_blob``): the caller passes a ``BlobSink`` --
anything with ``write(data)`` and ``truncate()``, such as the content store's ingest
writer. Chunks are written in order; when a connection drops the client re-requests
``Range: bytes=<written>-`` and carries on (calling ``truncate()`` and starting over if the
server ignores the range). At the end the size and digest of *all* bytes are checked; on a
mismatch ``ContentError`` is raised and the caller must discard what the sink holds --
so a sink must only publish (commit) its data after ``fetch_blob`` returned. To resume an
ingest a previous process left at ``offset`` bytes, pass ``offset`` and a ``hasher``
already fed with those bytes.

Transport rules (Docker Hub naming and mirrors, HTTPS or plain HTTP, redirects without
``Authorization`` to other hosts, retries with backoff) live in ``registry_transport``;
uploads in ``registry_push``; platform choice in ``platform``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import aiohttp
from yarl import URL

from declarun.daemon.images import mediatypes
from declarun.daemon.images.auth import (
    Credentials,
    RegistryAuthError,
    basic_authorization,
)
from declarun.daemon.images.platform import Platform, select_manifest
from declarun.daemon.images.registry_transport import (
    Body,
    Endpoint,
    RegistryConfig,
    RegistryNotFoundError,
    RegistrySession,
    connection_cause,
    error_text,
    retry_after,
)
from declarun.errors import ContentError, ImageReferenceError, RegistryError
from declarun.reference import ImageReference, validate_digest

__all__ = [
    "MAX_MANIFEST_SIZE",
    "BlobSink",
    "BytesSink",
    "Manifest",
    "RegistryClient",
    "RegistryConfig",
    "RegistryNotFoundError",
    "Repository",
    "ResolvedImage",
    "new_hasher",
]

# Manifests are small; refuse anything larger, as containerd does, to bound memory.
MAX_MANIFEST_SIZE = 4 * 1024 * 1024
_CHUNK = 1 << 20
_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE"})


class BlobSink(Protocol):
    """Where ``fetch_blob`` writes: appended in order, emptied by ``truncate``."""

    def write(self, data: bytes, /) -> object:
        """Append ``data``."""
        ...

    def truncate(self) -> object:
        """Throw away everything written so far (the download restarts from byte 0)."""
        ...


class BytesSink:
    """A ``BlobSink`` in memory, for small blobs and tests."""

    def __init__(self) -> None:
        self.buffer = bytearray()

    def write(self, data: bytes, /) -> int:
        """Append ``data``."""
        self.buffer += data
        return len(data)

    def truncate(self) -> None:
        """Forget everything written."""
        self.buffer.clear()


def new_hasher(digest: str) -> Any:
    """A fresh hashlib object for the algorithm of ``digest`` (``sha256:...``)."""
    return hashlib.new(validate_digest(digest).split(":", 1)[0])


def _digest_of(data: bytes, algorithm: str = "sha256") -> str:
    return f"{algorithm}:{hashlib.new(algorithm, data).hexdigest()}"


@dataclass(frozen=True)
class Manifest:
    """A manifest or index as the registry served it, verified against ``digest``."""

    data: bytes
    media_type: str
    digest: str

    @property
    def size(self) -> int:
        """Its length in bytes (the ``size`` of a descriptor pointing at it)."""
        return len(self.data)

    def json(self) -> Any:
        """The parsed document."""
        return json.loads(self.data)

    @property
    def is_index(self) -> bool:
        """True for an OCI index or Docker manifest list."""
        return self.media_type in mediatypes.INDEX_TYPES

    def descriptor(self) -> dict[str, Any]:
        """An OCI descriptor for this manifest."""
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size}


@dataclass(frozen=True)
class ResolvedImage:
    """The result of resolving a tag or digest to one image manifest for a platform.

    ``index`` is the manifest list it was chosen from, when the reference named one.
    """

    manifest: Manifest
    index: Manifest | None = None


def _sniff_media_type(data: bytes, header: str | None) -> str:
    declared = (header or "").split(";", 1)[0].strip().lower()
    known = mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES
    if declared in known:
        return declared
    try:
        doc = json.loads(data)
    except ValueError as exc:
        raise ContentError("registry served a manifest that is not JSON") from exc
    if not isinstance(doc, dict):
        raise ContentError("registry served a manifest that is not a JSON object")
    inner = doc.get("mediaType")
    if isinstance(inner, str) and inner in known:
        return inner
    if doc.get("schemaVersion") == 1 or "prettyjws" in declared:
        raise ContentError("image uses Docker manifest schema 1, which is not supported")
    if isinstance(doc.get("manifests"), list):
        return mediatypes.OCI_INDEX
    if isinstance(doc.get("layers"), list):
        return mediatypes.OCI_MANIFEST
    raise ContentError(f"unsupported manifest media type {declared or inner!r}")


class _Retryable(Exception):
    """Internal: a failure worth another attempt (after ``delay`` seconds, if given)."""

    def __init__(self, message: str, delay: float | None = None) -> None:
        super().__init__(message)
        self.delay = delay


class RegistryClient(RegistrySession):
    """The entry point: a ``RegistrySession`` that hands out ``Repository`` handles.

    Open it with ``async with``; ``credentials`` maps a registry name to its credentials
    (e.g. ``DockerConfig.load().lookup``), run in a worker thread since helpers are programs.
    """

    def repository(
        self,
        ref: ImageReference | str,
        *,
        credentials: Credentials | None = None,
    ) -> Repository:
        """A handle on one repository (``ImageReference`` or ``domain/path`` text).

        ``credentials`` (e.g. from ``X-Registry-Auth``) replace the provider's for it.
        """
        if isinstance(ref, str):
            domain, _, path = ref.partition("/")
            if not path:
                raise ImageReferenceError(f"repository {ref!r} needs a domain and a path")
            ref = ImageReference(domain, path)
        return Repository(self, ref.domain, ref.path, credentials)


@dataclass
class _Download:
    """Progress of one blob download across reconnections."""

    digest: str
    sink: BlobSink
    hasher: Any
    written: int
    size: int | None
    progress: Callable[[int], None] | None = None
    restarts: int = field(default=0)


class Repository:
    """One repository on one registry: manifests, blobs, tags (and push, in
    ``registry_push``). Made by ``RegistryClient.repository``."""

    def __init__(
        self,
        client: RegistrySession,
        domain: str,
        path: str,
        credentials: Credentials | None,
    ) -> None:
        self.client = client
        self.domain = domain
        self.path = path
        self._override = credentials
        # The server that answered last; blobs are fetched from the one that served the manifest.
        self._preferred: Endpoint | None = None

    def __repr__(self) -> str:
        return f"Repository({self.domain}/{self.path})"

    def scope(self, actions: str = "pull", path: str | None = None) -> str:
        """A token scope such as ``repository:library/busybox:pull``."""
        return f"repository:{path or self.path}:{actions}"

    async def _credentials(self, endpoint: Endpoint) -> Credentials | None:
        if self._override is not None:
            return self._override
        return await self.client.credentials_for(endpoint.auth_name)

    async def _authorization(
        self, endpoint: Endpoint, scopes: Sequence[str], *, refresh: bool = False
    ) -> str | None:
        challenge = self.client.challenge(endpoint)
        if challenge is None:
            return None
        creds = await self._credentials(endpoint)
        if challenge.scheme == "basic":
            if not creds or not (creds.username or creds.password):
                raise RegistryAuthError(
                    f"{self.domain}: authentication required (no credentials configured; "
                    "run docker login)"
                )
            return basic_authorization(creds)
        wanted = list(scopes)
        extra = challenge.params.get("scope")
        if extra:
            wanted.extend(s for s in extra.split(" ") if s and s not in wanted)
        if refresh:
            self.client.tokens.invalidate(challenge, wanted, creds)
        token = await self.client.tokens.token(
            self.client.session, challenge, wanted, creds, ssl=endpoint.verify_tls
        )
        return f"Bearer {token}"

    async def request(
        self,
        method: str,
        path_or_url: str | URL,
        *,
        scopes: Sequence[str] | None = None,
        headers: Mapping[str, str] | None = None,
        data: Body = None,
        endpoint: Endpoint | None = None,
        push: bool = False,
    ) -> tuple[aiohttp.ClientResponse, Endpoint]:
        """Send a request (``path_or_url`` relative to ``/v2/<repo>/``, or absolute) with
        auth, retries and endpoint fallback. The caller must release the response.

        Answers of 2xx, 3xx and 4xx come back to the caller, except a 401 that fresh
        credentials cannot fix, which raises ``RegistryAuthError``.
        """
        scopes = list(scopes or [self.scope("pull,push" if push else "pull")])
        endpoints = [endpoint] if endpoint else self._endpoint_order(push)
        last_error: RegistryError | None = None
        for index, candidate in enumerate(endpoints):
            try:
                resp, used = await self._request_on(
                    candidate, method, path_or_url, scopes, headers, data
                )
            except RegistryAuthError:
                raise
            except RegistryError as exc:
                if candidate.mirror and index + 1 < len(endpoints):
                    last_error = exc
                    continue
                raise
            if candidate.mirror and resp.status >= 400 and index + 1 < len(endpoints):
                # A mirror that lacks the content (or fails) is skipped, as dockerd does.
                resp.release()
                last_error = RegistryError(f"mirror {candidate.url} answered {resp.status}")
                continue
            self._preferred = used
            return resp, used
        raise last_error or RegistryError(f"no endpoint for {self.domain}")

    def _endpoint_order(self, push: bool) -> list[Endpoint]:
        endpoints = self.client.endpoints(self.domain, push=push)
        if self._preferred is not None and not push:
            rest = [e for e in endpoints if e.url != self._preferred.url]
            return [self._preferred, *rest]
        return endpoints

    def url(self, endpoint: Endpoint, path_or_url: str | URL) -> URL:
        """The absolute URL of ``path_or_url`` (relative to ``/v2/<repo>/``) on ``endpoint``."""
        if isinstance(path_or_url, URL):
            return path_or_url if path_or_url.is_absolute() else endpoint.url.join(path_or_url)
        if "://" in path_or_url or path_or_url.startswith("/"):
            return endpoint.url.join(URL(path_or_url, encoded=True))
        return URL(f"{endpoint.url}/v2/{self.path}/{path_or_url}", encoded=True)

    async def _request_on(
        self,
        endpoint: Endpoint,
        method: str,
        path_or_url: str | URL,
        scopes: Sequence[str],
        headers: Mapping[str, str] | None,
        data: Body,
    ) -> tuple[aiohttp.ClientResponse, Endpoint]:
        try:
            endpoint = await self.client.ping(endpoint)
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RegistryError(
                f"cannot reach registry {endpoint.url.raw_authority}: GET "
                f"{endpoint.url / 'v2/'}: {connection_cause(exc)}"
            ) from exc
        url = self.url(endpoint, path_or_url)
        retries = self.client.config.max_retries
        refreshed = False
        auth_retries = 0
        attempt = 0
        while True:
            attempt += 1
            try:
                auth = await self._authorization(endpoint, scopes, refresh=refreshed)
                resp = await self.client.send(endpoint, method, url, headers or {}, data, auth=auth)
            except (TimeoutError, aiohttp.ClientError) as exc:
                if method not in _IDEMPOTENT or attempt > retries:
                    raise RegistryError(
                        f"{method} {url} on registry {endpoint.url.raw_authority}: "
                        f"{connection_cause(exc)}"
                    ) from exc
                await self.client.pause(attempt)
                continue
            if resp.status == 401:
                body = await resp.read()
                resp.release()
                challenge = self.client.learn_challenge(endpoint, resp)
                auth_retries += 1
                # Retry when we sent nothing yet, or a bearer token that may be stale or
                # too narrow (the new challenge can name a wider scope); Basic credentials
                # that were refused stay refused.
                if (
                    challenge is not None
                    and auth_retries <= 2
                    and (auth is None or challenge.scheme == "bearer")
                ):
                    refreshed = auth is not None
                    continue
                raise RegistryAuthError(
                    f"{self.domain}: authentication failed for {self.path}: "
                    f"{error_text(body) or 'unauthorized'}"
                )
            if (resp.status >= 500 and resp.status != 501) or resp.status == 429:
                if attempt > retries:
                    return resp, endpoint
                delay = retry_after(resp)
                resp.release()
                await self.client.pause(attempt, delay)
                continue
            return resp, endpoint

    async def check(self, resp: aiohttp.ClientResponse, what: str, ok: Sequence[int]) -> None:
        """Raise a clear error for an unexpected status (reading the registry's message)."""
        if resp.status in ok:
            return
        body = await resp.read()
        resp.release()
        text = error_text(body) or resp.reason or ""
        if resp.status == 404:
            raise RegistryNotFoundError(f"{what}: not found: {text}")
        if resp.status == 403:
            raise RegistryAuthError(f"{what}: denied: {text}")
        raise RegistryError(f"{what}: registry answered {resp.status}: {text}")

    # -- manifests -------------------------------------------------------------------

    async def get_manifest(self, reference: str) -> Manifest:
        """Fetch a manifest or index by tag or digest, verified against its digest.

        By digest the bytes must hash to it; by tag they are named by their sha256, and a
        ``Docker-Content-Digest`` header that disagrees is an error.
        """
        by_digest = ":" in reference
        if by_digest:
            validate_digest(reference)
        what = f"manifest {self.domain}/{self.path}:{reference}"
        resp, _ = await self.request(
            "GET", f"manifests/{reference}", headers={"Accept": mediatypes.MANIFEST_ACCEPT}
        )
        try:
            await self.check(resp, what, (200,))
            if (resp.content_length or 0) > MAX_MANIFEST_SIZE:
                raise ContentError(f"{what}: manifest larger than {MAX_MANIFEST_SIZE} bytes")
            data = await resp.content.read(MAX_MANIFEST_SIZE + 1)
            if len(data) > MAX_MANIFEST_SIZE:
                raise ContentError(f"{what}: manifest larger than {MAX_MANIFEST_SIZE} bytes")
            content_type = resp.headers.get("Content-Type")
            header_digest = resp.headers.get("Docker-Content-Digest")
        except (TimeoutError, aiohttp.ClientError) as exc:
            raise RegistryError(f"{what}: connection failed: {exc}") from exc
        finally:
            resp.release()
        if by_digest:
            algorithm = reference.split(":", 1)[0]
            actual = _digest_of(data, algorithm)
            if actual != reference:
                raise ContentError(f"{what}: digest mismatch: content hashes to {actual}")
            digest = reference
        else:
            digest = _digest_of(data)
            if header_digest and header_digest.startswith("sha256:") and header_digest != digest:
                raise ContentError(
                    f"{what}: digest mismatch: registry says {header_digest}, content is {digest}"
                )
        return Manifest(bytes(data), _sniff_media_type(data, content_type), digest)

    async def head_manifest(self, reference: str) -> dict[str, Any] | None:
        """A descriptor (mediaType, digest, size) for a tag or digest, or None if absent."""
        resp, _ = await self.request(
            "HEAD", f"manifests/{reference}", headers={"Accept": mediatypes.MANIFEST_ACCEPT}
        )
        try:
            if resp.status == 404:
                return None
            await self.check(resp, f"manifest {self.path}:{reference}", (200,))
            digest = resp.headers.get("Docker-Content-Digest")
            if digest is None:
                return None
            return {
                "mediaType": (resp.headers.get("Content-Type") or "").split(";", 1)[0],
                "digest": digest,
                "size": resp.content_length or 0,
            }
        finally:
            resp.release()

    async def resolve(self, reference: str, platform: Platform | None = None) -> ResolvedImage:
        """Resolve a tag or digest to one image manifest, choosing ``platform`` (default:
        the host's) from an index. Nested indexes are followed a few levels deep."""
        top = await self.get_manifest(reference)
        current, index = top, None
        for _ in range(4):
            if not current.is_index:
                return ResolvedImage(current, index)
            index = current
            chosen = select_manifest(current.data, platform)
            digest = chosen.get("digest")
            if not isinstance(digest, str):
                raise ContentError(f"index {current.digest} has an entry without digest")
            current = await self.get_manifest(digest)
            if chosen.get("mediaType") and chosen["mediaType"] != current.media_type:
                raise ContentError(
                    f"manifest {digest} is {current.media_type}, index said {chosen['mediaType']}"
                )
        raise ContentError(f"index nesting too deep under {top.digest}")

    async def list_tags(self) -> list[str]:
        """The repository's tags (``GET /v2/<name>/tags/list``, following ``Link`` pages)."""
        tags: list[str] = []
        path: str | URL = "tags/list"
        for _ in range(1000):
            resp, endpoint = await self.request("GET", path)
            try:
                await self.check(resp, f"tags of {self.path}", (200,))
                doc = json.loads(await resp.read())
                link = resp.headers.get("Link")
            finally:
                resp.release()
            tags.extend(t for t in (doc.get("tags") or []) if isinstance(t, str))
            if not link or "<" not in link:
                return tags
            path = self.url(endpoint, link.split("<", 1)[1].split(">", 1)[0])
        return tags

    # -- blobs -----------------------------------------------------------------------

    async def head_blob(self, digest: str) -> int | None:
        """The size of a blob if the repository has it, else None."""
        validate_digest(digest)
        resp, _ = await self.request("HEAD", f"blobs/{digest}")
        try:
            if resp.status == 404:
                return None
            await self.check(resp, f"blob {digest}", (200,))
            return resp.content_length or 0
        finally:
            resp.release()

    async def fetch_blob_bytes(self, digest: str, *, max_size: int = MAX_MANIFEST_SIZE) -> bytes:
        """A small blob (an image config) in memory, verified."""
        sink = _LimitedBytesSink(max_size, digest)
        await self.fetch_blob(digest, sink)
        return bytes(sink.buffer)

    async def fetch_blob(
        self,
        digest: str,
        sink: BlobSink,
        *,
        size: int | None = None,
        offset: int = 0,
        hasher: Any = None,
        progress: Callable[[int], None] | None = None,
    ) -> int:
        """Stream a blob into ``sink``, resuming with ``Range`` after dropped connections.

        ``size`` (from the descriptor) bounds the download; ``offset``/``hasher`` resume an
        earlier partial download (see the module docstring). ``progress`` is called with
        the bytes received so far. Returns the size; raises ``ContentError`` if the bytes
        do not match ``digest`` -- the sink's content must then be discarded.
        """
        validate_digest(digest)
        if offset and hasher is None:
            raise ValueError("resuming at an offset needs the hasher of the first bytes")
        state = _Download(digest, sink, hasher or new_hasher(digest), offset, size, progress)
        failures = 0
        while True:
            before = state.written
            try:
                done = await self._download_once(state)
            except _Retryable as exc:
                # Progress resets the count: a flaky link that keeps delivering still finishes.
                failures = 0 if state.written > before else failures + 1
                if failures > self.client.config.max_retries:
                    raise RegistryError(
                        f"blob {digest}: giving up after {failures} failed attempts: {exc}"
                    ) from None
                await self.client.pause(max(failures, 1), exc.delay)
                continue
            if done:
                break
        actual = f"{state.hasher.name}:{state.hasher.hexdigest()}"
        if size is not None and state.written != size:
            raise ContentError(f"blob {digest}: expected {size} bytes, received {state.written}")
        if actual != digest:
            raise ContentError(f"blob {digest}: digest mismatch: content hashes to {actual}")
        return state.written

    async def _download_once(self, state: _Download) -> bool:
        headers = {"Accept-Encoding": "identity"}
        if state.written:
            headers["Range"] = f"bytes={state.written}-"
        # A registry that stays unreachable already had its retries inside request().
        resp, _ = await self.request("GET", f"blobs/{state.digest}", headers=headers)
        try:
            if resp.status == 416 and state.written and state.written == state.size:
                return True
            await self.check(resp, f"blob {state.digest}", (200, 206))
            if resp.status == 200 and state.written:
                # The server ignored our Range: start over.
                state.sink.truncate()
                state.hasher = new_hasher(state.digest)
                state.written = 0
                state.restarts += 1
            elif resp.status == 206:
                start = _content_range_start(resp.headers.get("Content-Range"))
                if start != state.written:
                    raise RegistryError(
                        f"blob {state.digest}: asked for bytes from {state.written}, got {start}"
                    )
            try:
                async for chunk in resp.content.iter_chunked(_CHUNK):
                    if state.size is not None and state.written + len(chunk) > state.size:
                        raise ContentError(
                            f"blob {state.digest}: registry sent more than {state.size} bytes"
                        )
                    state.sink.write(chunk)
                    state.hasher.update(chunk)
                    state.written += len(chunk)
                    if state.progress is not None:
                        state.progress(state.written)
            except (TimeoutError, aiohttp.ClientError, ConnectionError) as exc:
                raise _Retryable(f"connection dropped after {state.written} bytes: {exc}") from exc
            if state.size is not None and state.written < state.size:
                # Clean EOF before the end: treat as a dropped connection.
                raise _Retryable(f"stream ended at {state.written} of {state.size} bytes")
            return True
        finally:
            resp.release()


def _content_range_start(value: str | None) -> int | None:
    """The first byte of ``Content-Range: bytes 100-199/200``."""
    if not value or not value.startswith("bytes "):
        return None
    try:
        return int(value[6:].split("-", 1)[0])
    except ValueError:
        return None


class _LimitedBytesSink(BytesSink):
    def __init__(self, limit: int, digest: str) -> None:
        super().__init__()
        self._limit = limit
        self._digest = digest

    def write(self, data: bytes, /) -> int:
        if len(self.buffer) + len(data) > self._limit:
            raise ContentError(f"blob {self._digest} is larger than {self._limit} bytes")
        return super().write(data)
