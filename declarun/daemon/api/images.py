"""The Images API area: pull/import, list, inspect, history, tag, remove, prune.

Push, save, load, ``/distribution`` and ``/auth`` are in :mod:`.images_transfer`. Names
in paths may contain slashes and colons (``/images/127.0.0.1:5000/busybox:test/json``),
so the ``{name}`` of these routes matches across ``/`` as dockerd's router does; the
fixed paths (``/images/json``, ``/images/get``, ...) are registered first and win.

Handlers only speak HTTP: the image service (:mod:`declarun.daemon.images.service`) and
its list/prune policy (:mod:`declarun.daemon.images.listing`) do the work, blocking parts
in worker threads; long operations stream Docker's JSON progress messages
(:func:`stream_operation`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.apiversion import API_VERSION_KEY, parse_api_version
from declarun.daemon.api.http import (
    json_response,
    query_bool,
    start_json_stream,
    write_json_line,
)
from declarun.daemon.filters import parse_filters
from declarun.daemon.images.auth import Credentials, decode_registry_auth
from declarun.daemon.images.importer import ImportRequest, apply_changes, import_image
from declarun.daemon.images.inspect import (
    history_document,
    inspect_document,
    legacy_container_fields,
    with_null_fields,
)
from declarun.daemon.images.listing import image_summaries, prune_images
from declarun.daemon.images.platform import Platform, parse_platform
from declarun.daemon.images.progress import Emit, error_message
from declarun.daemon.images.pull import prepare_pull
from declarun.daemon.images.service import ImageService
from declarun.errdefs import InvalidArgument, Unsupported
from declarun.errors import DaemonError, ImageReferenceError
from declarun.reference import ImageReference, parse_reference

__all__ = [
    "NAME",
    "ImagesApi",
    "parse_pull_reference",
    "query_platform",
    "registry_credentials",
    "routes",
    "stream_operation",
]

log = logging.getLogger("declarun.daemon.api.images")

# A path parameter that may span several segments (image names contain slashes).
NAME = "{name:.+}"


def routes(images: ImageService) -> Iterable[web.RouteDef]:
    """The Images area's routes (fixed paths before the ``{name}`` ones)."""
    api = ImagesApi(images)
    return [
        web.post("/images/create", api.create),
        web.get("/images/json", api.list_images),
        web.post("/images/prune", api.prune),
        web.get(f"/images/{NAME}/json", api.inspect),
        web.get(f"/images/{NAME}/history", api.history),
        web.post(f"/images/{NAME}/tag", api.tag),
        web.delete(f"/images/{NAME}", api.delete),
    ]


def registry_credentials(request: web.Request) -> Credentials | None:
    """Credentials from the ``X-Registry-Auth`` header (None: use the daemon's config);
    InvalidRegistryAuthError (400) when it does not decode."""
    return decode_registry_auth(request.headers.get("X-Registry-Auth"))


def query_platform(request: web.Request) -> Platform | None:
    """The ``platform`` query parameter (PlatformError, 400, if it does not parse)."""
    text = request.query.get("platform", "").strip()
    if not text:
        return None
    return parse_platform(text)


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
        raise InvalidArgument(str(exc)) from None
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


class ImagesApi:
    """Handlers of the Images area."""

    def __init__(self, service: ImageService) -> None:
        self.service = service

    async def create(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/create``: pull (``fromImage``) or import (``fromSrc=-``)."""
        from_image = request.query.get("fromImage", "")
        from_src = request.query.get("fromSrc", "")
        if from_image:
            return await self._pull(request, from_image)
        if from_src:
            return await self._import(request, from_src)
        raise InvalidArgument("either fromImage or fromSrc is required")

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
                raise InvalidArgument("cannot import to a digest reference")
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
        all_images = query_bool(request, "all")
        summaries = await asyncio.to_thread(
            image_summaries, self.service, filters, all_images=all_images
        )
        if parse_api_version(request[API_VERSION_KEY]) < (1, 44):
            for summary in summaries:  # dropped from API 1.44 on; older clients read it
                summary.setdefault("VirtualSize", summary.get("Size", 0))
        return json_response(summaries)

    async def inspect(self, request: web.Request) -> web.StreamResponse:
        """``GET /images/{name}/json`` (Swagger ``ImageInspect``)."""
        service = self.service
        name = request.match_info["name"]

        version = parse_api_version(request[API_VERSION_KEY])

        def document() -> dict[str, Any]:
            image = service.resolve(name)
            doc = inspect_document(service, image)
            if version < (1, 45):  # the committed container's fields, dropped in API 1.45
                doc.update(legacy_container_fields(service, image))
                with_null_fields(doc["Config"])
            return doc

        doc = await asyncio.to_thread(document)
        if version < (1, 44):
            doc.setdefault("VirtualSize", doc.get("Size", 0))
        return json_response(doc)

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
        result = await asyncio.shield(asyncio.to_thread(prune_images, self.service, filters))
        return json_response(
            {
                "ImagesDeleted": [r.to_json() for r in result.deleted] or None,
                "SpaceReclaimed": result.space_reclaimed,
            }
        )
