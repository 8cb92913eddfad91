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
from collections.abc import Iterable

from aiohttp import web

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
    stream_operation,
)
from declarun.daemon.images.archive_load import stream_messages
from declarun.daemon.images.auth import Credentials
from declarun.daemon.images.push import push_targets, run_push
from declarun.daemon.images.service import ImageService
from declarun.daemon.images.transfer import (
    check_login,
    distribution_info,
    load_images,
    prepare_save,
)
from declarun.errdefs import InvalidArgument
from declarun.errors import ContentError, DeclarunError, ImageReferenceError
from declarun.reference import parse_reference

__all__ = ["BlockingBody", "TransferApi", "routes"]


def routes(images: ImageService) -> Iterable[web.RouteDef]:
    """The transfer routes (fixed paths before the ``{name}`` ones)."""
    api = TransferApi(images)
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

    def __init__(self, service: ImageService) -> None:
        self.service = service

    async def push(self, request: web.Request) -> web.StreamResponse:
        """``POST /images/{name}/push?tag=``."""
        service = self.service
        try:
            repo = parse_reference(request.match_info["name"], default_tag=None)
        except ImageReferenceError as exc:
            raise InvalidArgument(str(exc)) from None
        tag = request.query.get("tag", "") or (repo.tag or "")
        if repo.digest is not None:
            raise InvalidArgument("cannot push a digest reference")
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
        chunks = await asyncio.to_thread(prepare_save, self.service, names)
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
        platform = query_platform(request)
        body = BlockingBody(request, asyncio.get_running_loop())
        try:
            lines = await asyncio.shield(
                asyncio.to_thread(load_images, self.service, body, platform=platform)
            )
        except DeclarunError as exc:
            # dockerd answers 200 and writes a failed load's error into the stream (the CLI
            # prints it and exits 1); nothing was registered.
            response = await start_json_stream(request)
            await write_json_line(response, {"errorDetail": {"message": str(exc)},
                                             "error": str(exc)})  # fmt: skip
            return response
        response = await start_json_stream(request)
        for message in stream_messages(lines):
            await write_json_line(response, message)
        _ = query_bool(request, "quiet")  # the CLI prints these lines either way
        return response

    async def distribution(self, request: web.Request) -> web.StreamResponse:
        """``GET /distribution/{name}/json``: descriptor and platforms from the registry."""
        ref = parse_pull_reference(request.match_info["name"], "")
        found = await distribution_info(self.service, ref, registry_credentials(request))
        return json_response({"Descriptor": found.descriptor, "Platforms": found.platforms})

    async def auth(self, request: web.Request) -> web.StreamResponse:
        """``POST /auth``: check credentials for ``docker login`` (nothing is stored)."""
        doc = await read_json(request, default={})
        if not isinstance(doc, dict):
            raise InvalidArgument("auth config must be a JSON object")
        server = str(doc.get("serveraddress") or "docker.io")
        credentials = Credentials(
            str(doc.get("username") or ""),
            str(doc.get("password") or ""),
            str(doc.get("identitytoken") or ""),
        )
        await check_login(self.service, server, credentials)
        return json_response({"Status": "Login Succeeded", "IdentityToken": ""})
