"""The Images API area: pull/import, list, inspect, history, tag, remove, prune.

Push, save, load, ``/distribution`` and ``/auth`` are in :mod:`.images_transfer`. Names
in paths may contain slashes and colons (``/images/127.0.0.1:5000/busybox:test/json``),
so the ``{name}`` of these routes matches across ``/`` as dockerd's router does; the
fixed paths (``/images/json``, ``/images/get``, ...) are registered first and win.

The image service (:mod:`declarun.daemon.images.service`) is opened by this area's
start-up hook; blocking work runs in worker threads, and long operations stream
Docker's JSON progress messages (:func:`stream_operation`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.errors import BadRequest, InternalError, Unsupported
from declarun.daemon.api.event_filter import parse_event_time
from declarun.daemon.api.filters import Filters, parse_filters
from declarun.daemon.api.http import (
    json_response,
    query_bool,
    start_json_stream,
    write_json_line,
)
from declarun.daemon.context import DaemonContext
from declarun.daemon.images.auth import Credentials, InvalidRegistryAuthError, decode_registry_auth
from declarun.daemon.images.importer import ImportRequest, apply_changes, import_image
from declarun.daemon.images.inspect import (
    created_unix,
    history_document,
    image_config,
    inspect_document,
    summary_document,
)
from declarun.daemon.images.platform import Platform, PlatformError, parse_platform
from declarun.daemon.images.progress import Emit, error_message
from declarun.daemon.images.pull import prepare_pull
from declarun.daemon.images.service import ImageService, attach_image_service
from declarun.daemon.metadata import Image
from declarun.errors import DaemonError, ImageReferenceError
from declarun.reference import ImageReference, parse_reference

__all__ = [
    "NAME",
    "ImagesApi",
    "on_cleanup",
    "on_startup",
    "parse_pull_reference",
    "query_platform",
    "registry_credentials",
    "routes",
    "service_of",
    "stream_operation",
]

log = logging.getLogger("declarun.daemon.api.images")

# A path parameter that may span several segments (image names contain slashes).
NAME = "{name:.+}"
_LIST_FILTERS = ("before", "dangling", "label", "reference", "since", "until")
_PRUNE_FILTERS = ("dangling", "label", "label!", "until")


def routes(ctx: DaemonContext) -> Iterable[web.RouteDef]:
    """The Images area's routes (fixed paths before the ``{name}`` ones)."""
    api = ImagesApi(ctx)
    return [
        web.post("/images/create", api.create),
        web.get("/images/json", api.list_images),
        web.post("/images/prune", api.prune),
        web.get(f"/images/{NAME}/json", api.inspect),
        web.get(f"/images/{NAME}/history", api.history),
        web.post(f"/images/{NAME}/tag", api.tag),
        web.delete(f"/images/{NAME}", api.delete),
    ]


async def on_startup(ctx: DaemonContext) -> None:
    """Open the image stores and attach them to the context."""
    await asyncio.to_thread(attach_image_service, ctx)


async def on_cleanup(ctx: DaemonContext) -> None:
    """Close the metadata database."""
    service = ctx.image_store
    if isinstance(service, ImageService):
        service.close()


def service_of(ctx: DaemonContext) -> ImageService:
    """The attached image service (500 if the daemon started without one)."""
    service = ctx.image_store
    if not isinstance(service, ImageService):
        raise InternalError("the image store is not available")
    return service


def registry_credentials(request: web.Request) -> Credentials | None:
    """Credentials from the ``X-Registry-Auth`` header (None: use the daemon's config)."""
    try:
        return decode_registry_auth(request.headers.get("X-Registry-Auth"))
    except InvalidRegistryAuthError as exc:
        raise BadRequest(str(exc)) from None


def query_platform(request: web.Request) -> Platform | None:
    """The ``platform`` query parameter (400 if it does not parse)."""
    text = request.query.get("platform", "").strip()
    if not text:
        return None
    try:
        return parse_platform(text)
    except PlatformError as exc:
        raise BadRequest(str(exc)) from None


def parse_pull_reference(from_image: str, tag: str) -> ImageReference:
    """``fromImage`` plus ``tag`` (a tag or a digest) as one reference (400 if invalid)."""
    try:
        ref = parse_reference(from_image, default_tag=None)
        if tag.startswith("sha256:"):
            ref = ref.with_digest(tag)
        elif tag:
            ref = ref.with_tag(tag)
        elif ref.tag is None and ref.digest is None:
            ref = ref.with_tag("latest")
    except ImageReferenceError as exc:
        raise BadRequest(str(exc)) from None
    return ref


async def stream_operation(
    request: web.Request, operation: Callable[[Emit], Awaitable[object]]
) -> web.StreamResponse:
    """Start a JSON stream and relay what ``operation`` emits until it ends.

    If the client goes away, the handler is cancelled and so is the operation.
    """
    response = await start_json_stream(request)
    queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()

    async def run() -> None:
        try:
            await operation(queue.put_nowait)
        except DaemonError as exc:
            queue.put_nowait(error_message(str(exc)))
        except Exception as exc:
            log.exception("%s %s failed", request.method, request.path)
            queue.put_nowait(error_message(str(exc) or type(exc).__name__))
        finally:
            queue.put_nowait(None)

    task = asyncio.create_task(run())
    try:
        while (message := await queue.get()) is not None:
            await write_json_line(response, message)
        await task
    finally:
        if not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
    return response


async def _body_chunks(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(1 << 20):
        yield chunk


def _path_match(pattern: str, text: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` do not cross ``/``."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return False
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text) is not None


def _name_matches(patterns: frozenset[str], name: str) -> bool:
    ref = parse_reference(name, default_tag=None)
    return any(
        _path_match(p, ref.familiar()) or _path_match(p, ref.familiar_name()) for p in patterns
    )


def _only_matching(patterns: frozenset[str], image: Image) -> Image | None:
    """The image with only the names the ``reference`` filter matches (dockerd shows
    just those), or None when none does."""
    tags = tuple(n for n in image.tags if _name_matches(patterns, n))
    digests = tuple(n for n in image.digests if _name_matches(patterns, n))
    if not tags and not digests:
        return None
    return dataclasses.replace(image, tags=tags, digests=digests)


def _dangling_wanted(filters: Filters) -> bool | None:
    values = filters.get("dangling")
    if not values:
        return None
    if len(values) > 1:
        raise BadRequest("invalid filter 'dangling': give only one value")
    value = next(iter(values)).lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise BadRequest(f"invalid filter 'dangling={value}'")


class ImagesApi:
    """Handlers of the Images area."""

    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx

    @property
    def service(self) -> ImageService:
        """The image service."""
        return service_of(self.ctx)

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/create``: pull (``fromImage``) or import (``fromSrc=-``)."""
        from_image = request.query.get("fromImage", "")
        from_src = request.query.get("fromSrc", "")
        if from_image:
            return await self._pull(request, from_image)
        if from_src:
            return await self._import(request, from_src)
        raise BadRequest("either fromImage or fromSrc is required")

    async def _pull(self, request: web.Request, from_image: str) -> web.StreamResponse:
        ref = parse_pull_reference(from_image, request.query.get("tag", ""))
        platform = query_platform(request)
        credentials = registry_credentials(request)
        prepared = await prepare_pull(self.service, ref, platform=platform, credentials=credentials)
        try:
            return await stream_operation(request, prepared.run)
        finally:
            await asyncio.shield(prepared.close())

    async def _import(self, request: web.Request, from_src: str) -> web.StreamResponse:
        if from_src != "-":
            raise Unsupported("importing from a URL is not supported; send the archive body")
        repo, tag = request.query.get("repo", ""), request.query.get("tag", "")
        name: ImageReference | None = None
        if repo:
            name = parse_pull_reference(repo, tag)
            if name.digest is not None:
                raise BadRequest("cannot import to a digest reference")
        changes = tuple(request.query.getall("changes", []))
        import_request = ImportRequest(
            name, changes, request.query.get("message", ""), query_platform(request)
        )
        apply_changes({}, changes)  # refuse bad changes before reading the body
        record = await import_image(self.service, _body_chunks(request), import_request)
        response = await start_json_stream(request)
        await write_json_line(response, {"status": record.id})
        return response

    async def list_images(self, request: web.Request) -> web.StreamResponse:
        """``GET /images/json`` (Swagger ``ImageSummary`` list)."""
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_LIST_FILTERS)
        return json_response(await asyncio.to_thread(self._summaries, filters))

    def _summaries(self, filters: Filters) -> list[dict[str, Any]]:
        service = self.service
        dangling = _dangling_wanted(filters)
        before = self._reference_time(filters, "before")
        since = self._reference_time(filters, "since")
        until_ns = parse_event_time(
            next(iter(filters.get("until")), None) if "until" in filters else None, "until"
        )
        out = []
        for image in service.metadata.list_images():
            config = image_config(service, image)
            created = created_unix(image, config)
            if dangling is not None and (not image.tags) != dangling:
                continue
            if "reference" in filters:
                matching = _only_matching(filters.get("reference"), image)
                if matching is None:
                    continue
                image = matching
            labels = (config.get("config") or {}).get("Labels") or {}
            if not filters.match_kv_list("label", labels):
                continue
            if before is not None and created >= before:
                continue
            if since is not None and created <= since:
                continue
            if until_ns is not None and created * 1_000_000_000 > until_ns:
                continue
            out.append(summary_document(image, config))
        return out

    def _reference_time(self, filters: Filters, name: str) -> int | None:
        values = filters.get(name)
        if not values:
            return None
        times = [created_unix(self.service.resolve(v)) for v in values]
        return min(times) if name == "before" else max(times)

    async def inspect(self, request: web.Request) -> web.StreamResponse:
        """``GET /images/{name}/json`` (Swagger ``ImageInspect``)."""
        service = self.service
        name = request.match_info["name"]

        def document() -> dict[str, Any]:
            return inspect_document(service, service.resolve(name))

        return json_response(await asyncio.to_thread(document))

    async def history(self, request: web.Request) -> web.StreamResponse:
        """``GET /images/{name}/history``."""
        service = self.service
        name = request.match_info["name"]

        def document() -> list[dict[str, Any]]:
            return history_document(service, service.resolve(name))

        return json_response(await asyncio.to_thread(document))

    async def tag(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/{name}/tag?repo=&tag=``: 201 with no body."""
        name = request.match_info["name"]
        repo, tag = request.query.get("repo", ""), request.query.get("tag", "")
        await asyncio.to_thread(self.service.tag, name, repo, tag)
        return web.Response(status=201)

    async def delete(self, request: web.Request) -> web.StreamResponse:
        """``DELETE /images/{name}?force=&noprune=``: Docker's Untagged/Deleted list."""
        name = request.match_info["name"]
        force, noprune = query_bool(request, "force"), query_bool(request, "noprune")
        records = await asyncio.shield(
            asyncio.to_thread(self.service.delete, name, force=force, prune=not noprune)
        )
        return json_response([r.to_json() for r in records])

    async def prune(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/prune``: dangling (or, with dangling=false, all unused) images."""
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_PRUNE_FILTERS)
        dangling = _dangling_wanted(filters)
        until = filters.get("until")
        until_ns = parse_event_time(next(iter(until)), "until") if until else None
        service = self.service

        def run() -> dict[str, Any]:
            used = service.in_use_by_containers()
            victims = []
            for image in service.metadata.list_images():
                if image.id in used or (dangling is not False and image.tags):
                    continue
                config = image_config(service, image)
                labels = (config.get("config") or {}).get("Labels") or {}
                if not filters.match_kv_list("label", labels):
                    continue
                if any(_has_key(labels, v) for v in filters.get("label!")):
                    continue
                if until_ns is not None and created_unix(image, config) * 10**9 >= until_ns:
                    continue
                victims.append(image)
            records, freed = service.remove_images(victims)
            return {
                "ImagesDeleted": [r.to_json() for r in records] or None,
                "SpaceReclaimed": freed,
            }

        result = await asyncio.shield(asyncio.to_thread(run))
        self.ctx.events.publish("image", "prune", "", {"reclaimed": str(result["SpaceReclaimed"])})
        return json_response(result)


def _has_key(labels: dict[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)
