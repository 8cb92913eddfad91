"""Images moving in and out: push, save (``/images/get``), load, ``/distribution``, ``/auth``.

* ``POST /images/{name}/push?tag=`` streams dockerd's push messages;
* ``GET /images/get?names=...`` and ``GET /images/{name}/get`` stream a ``docker save``
  tar, produced by a blocking generator stepped in a worker thread; a blob found corrupt
  half-way aborts the connection so the client sees a failed transfer;
* ``POST /images/load?quiet=`` reads the body through a blocking adapter in a worker
  thread, registers the images (and unpacks their layers), then answers Docker's
  ``{"stream": "Loaded image: ..."}`` lines;
* ``GET /distribution/{name}/json`` asks the registry for the descriptor and platforms;
* ``POST /auth`` checks credentials against a registry, for ``docker login``.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable, Iterator
from typing import Any

from aiohttp import web

from declarun.daemon.api.errors import BadRequest, NotFound, Unauthorized
from declarun.daemon.api.http import (
    json_response,
    query_bool,
    read_json,
    start_json_stream,
    write_json_line,
)
from declarun.daemon.api.images import (
    NAME,
    parse_pull_reference,
    query_platform,
    registry_credentials,
    service_of,
    stream_operation,
)
from declarun.daemon.context import DaemonContext
from declarun.daemon.images.archive_load import load_archive, stream_messages
from declarun.daemon.images.archive_save import iter_save_archive, resolve_save_names
from declarun.daemon.images.auth import Credentials
from declarun.daemon.images.platform import select_manifest
from declarun.daemon.images.pull import credential_provider, registry_error
from declarun.daemon.images.push import push_targets, run_push
from declarun.daemon.images.registry import RegistryClient
from declarun.daemon.metadata import AmbiguousImageError, ImageNotFoundError
from declarun.errors import ContentError, DaemonError, ImageReferenceError, RegistryError
from declarun.reference import parse_reference

__all__ = ["BlockingBody", "TransferApi", "routes"]


def routes(ctx: DaemonContext) -> Iterable[web.RouteDef]:
    """The transfer routes (fixed paths before the ``{name}`` ones)."""
    api = TransferApi(ctx)
    return [
        web.get("/images/get", api.save),
        web.post("/images/load", api.load),
        web.post("/auth", api.auth),
        web.get(f"/images/{NAME}/get", api.save_one),
        web.post(f"/images/{NAME}/push", api.push),
        web.get(f"/distribution/{NAME}/json", api.distribution),
    ]


class BlockingBody:
    """The request body as a blocking ``read(n)``, for code running in a worker thread."""

    def __init__(self, request: web.Request, loop: asyncio.AbstractEventLoop) -> None:
        self._content = request.content
        self._loop = loop

    def read(self, size: int = -1, /) -> bytes:
        """Up to ``size`` bytes (all that is left for -1); ``b""`` at the end."""
        coro = self._content.read(size if size >= 0 else -1)
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()


class TransferApi:
    """Handlers of the transfer routes."""

    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx

    async def push(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/{name}/push?tag=``."""
        service = service_of(self.ctx)
        try:
            repo = parse_reference(request.match_info["name"], default_tag=None)
        except ImageReferenceError as exc:
            raise BadRequest(str(exc)) from None
        tag = request.query.get("tag", "") or (repo.tag or "")
        if repo.digest is not None:
            raise BadRequest("cannot push a digest reference")
        credentials = registry_credentials(request)
        targets = await asyncio.to_thread(push_targets, service, repo, tag)
        return await stream_operation(
            request, lambda emit: run_push(service, repo, targets, credentials, emit)
        )

    async def save(self, request: web.Request) -> web.StreamResponse:
        """``GET /images/get?names=a&names=b`` (``docker save``)."""
        return await self._save(request, request.query.getall("names", []))

    async def save_one(self, request: web.Request) -> web.StreamResponse:
        """``GET /images/{name}/get``."""
        return await self._save(request, [request.match_info["name"]])

    async def _save(self, request: web.Request, names: list[str]) -> web.StreamResponse:
        if not names:
            raise BadRequest("no image names given to save")
        service = service_of(self.ctx)

        def prepare() -> Iterator[bytes]:
            try:
                items = resolve_save_names(service.metadata, names)
            except ImageNotFoundError as exc:
                raise NotFound(str(exc)) from None
            except AmbiguousImageError as exc:
                raise BadRequest(str(exc)) from None
            return iter_save_archive(service.store, items)

        chunks = await asyncio.to_thread(prepare)
        response = web.StreamResponse()
        response.content_type = "application/x-tar"
        await response.prepare(request)
        loop = asyncio.get_running_loop()
        try:
            while (chunk := await loop.run_in_executor(None, next, chunks, None)) is not None:
                await response.write(chunk)
        except ContentError:
            # A truncated tar must not look complete: drop the connection.
            if request.transport is not None:
                request.transport.abort()
            raise
        await response.write_eof()
        return response

    async def load(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/load?quiet=`` (``docker load``)."""
        service = service_of(self.ctx)
        platform = query_platform(request)
        body = BlockingBody(request, asyncio.get_running_loop())

        def run() -> list[str]:
            try:
                result = load_archive(service.store, service.metadata, body, platform=platform)
            except ContentError as exc:
                raise BadRequest(str(exc)) from None
            for image in result.images:
                service.ensure_unpacked(image.record)
                names = [ref.familiar() for ref in image.names] or [image.record.id]
                for name in names:
                    self.ctx.events.publish("image", "load", image.record.id, {"name": name})
            return list(result.messages)

        lines = await asyncio.shield(asyncio.to_thread(run))
        response = await start_json_stream(request)
        for message in stream_messages(lines):
            await write_json_line(response, message)
        _ = query_bool(request, "quiet")  # the CLI prints these lines either way
        return response

    async def distribution(self, request: web.Request) -> web.StreamResponse:
        """``GET /distribution/{name}/json``: descriptor and platforms from the registry."""
        service = service_of(self.ctx)
        ref = parse_pull_reference(request.match_info["name"], "")
        credentials = registry_credentials(request)
        async with RegistryClient(
            service.registry_config, credentials=credential_provider()
        ) as client:
            repo = client.repository(ref, credentials=credentials)
            try:
                manifest = await repo.get_manifest(ref.object)
                platforms: list[dict[str, Any]] = []
                if manifest.is_index:
                    for entry in manifest.json().get("manifests", []):
                        plat = entry.get("platform") if isinstance(entry, dict) else None
                        if isinstance(plat, dict):
                            platforms.append(plat)
                    if not platforms:
                        select_manifest(manifest.data)  # explains an empty index
                else:
                    config = manifest.json().get("config", {})
                    data = await repo.fetch_blob_bytes(str(config.get("digest")))
                    doc = json.loads(data)
                    plat = {"architecture": doc.get("architecture", ""), "os": doc.get("os", "")}
                    if doc.get("variant"):
                        plat["variant"] = doc["variant"]
                    platforms.append(plat)
            except DaemonError as exc:
                raise registry_error(exc, ref) from None
        return json_response({"Descriptor": manifest.descriptor(), "Platforms": platforms})

    async def auth(self, request: web.Request) -> web.StreamResponse:
        """``POST /auth``: check credentials for ``docker login`` (nothing is stored)."""
        doc = await read_json(request, default={})
        if not isinstance(doc, dict):
            raise BadRequest("auth config must be a JSON object")
        server = str(doc.get("serveraddress") or "docker.io")
        domain = server.split("://", 1)[-1].split("/", 1)[0] or "docker.io"
        if domain in ("index.docker.io", "registry-1.docker.io"):
            domain = "docker.io"
        credentials = Credentials(
            str(doc.get("username") or ""),
            str(doc.get("password") or ""),
            str(doc.get("identitytoken") or ""),
        )
        service = service_of(self.ctx)
        async with RegistryClient(service.registry_config) as client:
            repo = client.repository(f"{domain}/library/login-check", credentials=credentials)
            try:
                resp, _ = await repo.request("GET", "/v2/", scopes=[])
                status = resp.status
                resp.release()
            except RegistryError as exc:
                raise Unauthorized(f"login attempt to {server} failed: {exc}") from None
        if status == 401:
            raise Unauthorized(f"login attempt to {server} failed with status: 401 Unauthorized")
        return json_response({"Status": "Login Succeeded", "IdentityToken": ""})
