"""The Build API area: ``POST /build`` (the classic builder) and ``POST /build/prune``.

``POST /build`` reads its parameters as dockerd 20.10 does (``dockerfile``, ``t`` several
times, ``buildargs``/``labels`` as JSON maps, ``cachefrom`` as a JSON list, ``rm`` true
unless said otherwise, ``forcerm``, ``nocache``, ``pull``, ``q``, ``target``,
``networkmode``, ``extrahosts``, ``shmsize``, ``platform``, the ``RUN`` limits, ``remote``),
``X-Registry-Config`` for registry credentials, and declarund's extension header
``X-Declarun-Build-Secrets`` (base64 of a JSON object ``{"id": "content"}``) for
``RUN --mount=type=secret``. The body is the context tar, read as a stream.

The response starts only with the build's first message, so what fails before (a bad
parameter, a hostile context, a Dockerfile syntax error) is a plain HTTP error with its
kind's status, as with dockerd; later errors are stream messages (``errorDetail``, with the
exit code as ``code`` for a failing ``RUN``). The client going away cancels the build.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
from collections.abc import AsyncIterator, Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.http import (
    json_response,
    query_bool,
    query_int,
    start_json_stream,
    write_json_line,
)
from declarun.daemon.builder.errors import RunStepFailed
from declarun.daemon.builder.options import BuildOptions, RunResources
from declarun.daemon.builder.prune import prune_build_cache
from declarun.daemon.builder.service import BuilderService
from declarun.daemon.filters import parse_filters
from declarun.daemon.images.auth import decode_registry_config
from declarun.dockerfile import parse_platform
from declarun.errdefs import InvalidArgument, Unavailable
from declarun.errors import DeclarunError, ImageReferenceError
from declarun.frozen import FrozenDict
from declarun.reference import ImageReference, parse_reference

__all__ = ["SECRETS_HEADER", "build_options", "routes"]

log = logging.getLogger("declarun.daemon.api.build")

#: declarund's extension: the secrets of ``RUN --mount=type=secret`` (base64 JSON map).
SECRETS_HEADER = "X-Declarun-Build-Secrets"


def routes(builder: BuilderService) -> Iterable[web.RouteDef]:
    """The Build area's routes."""
    api = BuildApi(builder)
    return [web.post("/build", api.build), web.post("/build/prune", api.prune)]


def _json_map(request: web.Request, name: str) -> FrozenDict[str, str]:
    raw = request.query.get(name, "")
    if not raw:
        return FrozenDict()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"invalid {name} value: {exc}") from None
    if value is None:
        return FrozenDict()
    if not isinstance(value, dict):
        raise InvalidArgument(f"invalid {name} value: expected a JSON object")
    out = {}
    for key, item in value.items():
        if item is None:
            continue  # an arg without a value: declared but not set, as dockerd reads it
        if not isinstance(item, str):
            raise InvalidArgument(f"invalid {name} value: {key!r} is not a string")
        out[str(key)] = item
    return FrozenDict(out)


def _json_list(request: web.Request, name: str) -> tuple[str, ...]:
    raw = request.query.get(name, "")
    if not raw:
        return ()
    try:
        value = json.loads(raw)
    except (ValueError, RecursionError) as exc:
        raise InvalidArgument(f"invalid {name} value: {exc}") from None
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise InvalidArgument(f"invalid {name} value: expected a JSON list of strings")
    return tuple(value)


def _tags(request: web.Request) -> tuple[ImageReference, ...]:
    tags = []
    for text in request.query.getall("t", []):
        if not text:
            continue
        try:
            ref = parse_reference(text, default_tag=None)
        except ImageReferenceError as exc:
            raise InvalidArgument(f"invalid reference format: {exc}") from None
        if ref.digest is not None:
            raise InvalidArgument("build tag cannot contain a digest")
        tags.append(ref if ref.tag is not None else ref.with_tag("latest"))
    return tuple(tags)


def _secrets(request: web.Request) -> FrozenDict[str, bytes]:
    raw = request.headers.get(SECRETS_HEADER, "").strip()
    if not raw:
        return FrozenDict()
    try:
        padded = raw + "=" * (-len(raw) % 4)
        decoded = (
            base64.urlsafe_b64decode(padded)
            if "-" in raw or "_" in raw
            else base64.b64decode(padded, validate=True)
        )
        value = json.loads(decoded)
    except (binascii.Error, ValueError, RecursionError) as exc:
        raise InvalidArgument(f"invalid {SECRETS_HEADER} header: {exc}") from None
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"invalid {SECRETS_HEADER} header: expected {{id: content}}")
    return FrozenDict({str(k): v.encode() for k, v in value.items()})


def build_options(request: web.Request) -> BuildOptions:
    """The build's options from the query and headers (400 for what does not parse)."""
    query = request.query
    if query.get("version", "1") not in ("", "1"):
        raise InvalidArgument(
            "declarund has no BuildKit: use the classic builder (version=1, DOCKER_BUILDKIT=0)"
        )
    if query_bool(request, "squash"):
        raise InvalidArgument("squash is only supported with experimental mode")
    forcerm = query_bool(request, "forcerm")
    remove = True if forcerm or query.get("rm", "") == "" else query_bool(request, "rm")
    shm_size = query_int(request, "shmsize", 0)
    if shm_size < 0:
        raise InvalidArgument("shmsize must be greater than 0")
    platform_text = query.get("platform", "").strip()
    return BuildOptions(
        dockerfile=query.get("dockerfile", "") or "Dockerfile",
        tags=_tags(request),
        build_args=_json_map(request, "buildargs"),
        target=query.get("target", "") or None,
        labels=_json_map(request, "labels"),
        no_cache=query_bool(request, "nocache"),
        pull=query_bool(request, "pull"),
        remove=remove,
        force_remove=forcerm,
        cache_from=_json_list(request, "cachefrom"),
        network_mode=query.get("networkmode", "") or "default",
        extra_hosts=tuple(
            h for value in query.getall("extrahosts", []) for h in value.split(",") if h
        ),
        resources=RunResources(
            memory=query_int(request, "memory", 0),
            memory_swap=query_int(request, "memswap", 0),
            cpu_shares=query_int(request, "cpushares", 0),
            cpuset_cpus=query.get("cpusetcpus", ""),
            cpu_period=query_int(request, "cpuperiod", 0),
            cpu_quota=query_int(request, "cpuquota", 0),
            shm_size=shm_size,
        ),
        platform=parse_platform(platform_text) if platform_text else None,
        quiet=query_bool(request, "q"),
        registry_auth=FrozenDict(decode_registry_config(request.headers.get("X-Registry-Config"))),
        secrets=_secrets(request),
        remote=query.get("remote", ""),
    )


def _error_message(exc: BaseException) -> dict[str, Any]:
    text = str(exc) or type(exc).__name__
    detail: dict[str, Any] = {"message": text}
    if isinstance(exc, RunStepFailed):
        detail = {"code": exc.exit_code, "message": text}
    return {"errorDetail": detail, "error": text}


async def _body(request: web.Request) -> AsyncIterator[bytes]:
    async for chunk in request.content.iter_chunked(1 << 20):
        yield chunk


class BuildApi:
    """Handlers of the Build area."""

    def __init__(self, builder: BuilderService) -> None:
        self.builder = builder

    async def build(self, request: web.Request) -> web.StreamResponse:
        """``POST /build`` (see the module docstring)."""
        options = build_options(request)
        body = None if options.remote else _body(request)
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        task = asyncio.ensure_future(self.builder.build(options, body, queue.put_nowait))
        response: web.StreamResponse | None = None
        try:
            while True:
                getter = asyncio.ensure_future(queue.get())
                done, _ = await asyncio.wait({getter, task}, return_when=asyncio.FIRST_COMPLETED)
                if getter not in done:
                    getter.cancel()
                    break
                if response is None:
                    response = await start_json_stream(request)
                await write_json_line(response, getter.result())
            while not queue.empty():
                if response is None:
                    response = await start_json_stream(request)
                await write_json_line(response, queue.get_nowait())
            error = asyncio.CancelledError() if task.cancelled() else task.exception()
            if isinstance(error, asyncio.CancelledError) and response is not None:
                error = Unavailable("the build was cancelled: the daemon is shutting down")
            if error is not None:
                if response is None:
                    raise error
                if not isinstance(error, DeclarunError):
                    log.error("build failed", exc_info=error)
                await write_json_line(response, _error_message(error))
            if response is None:
                response = await start_json_stream(request)
            return response
        finally:
            if not task.done():
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def prune(self, request: web.Request) -> web.StreamResponse:
        """``POST /build/prune?all=&keep-storage=&filters=``."""
        filters = parse_filters(request.query.get("filters"))
        result = await asyncio.shield(
            prune_build_cache(
                self.builder,
                filters,
                all_records=query_bool(request, "all"),
                keep_storage=query_int(request, "keep-storage", 0),
            )
        )
        return json_response(
            {"CachesDeleted": list(result.deleted) or None, "SpaceReclaimed": result.reclaimed}
        )
