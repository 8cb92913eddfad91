"""What a container shows of itself: ``logs``, ``top`` and ``stats``.

``GET /containers/{id}/logs`` reads the log file conmon writes (:mod:`~declarun.daemon.
containers.logfile`) and frames it as dockerd does: without a TTY, each chunk gets the
8-byte multiplexing header (stream byte, three zero bytes, big-endian length) and the
response is ``application/vnd.docker.multiplexed-stream``; with a TTY the bytes go out raw
(``application/vnd.docker.raw-stream``). ``follow`` keeps the stream open until the
container's current run ends.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterable

from aiohttp import web

from declarun.daemon.api.http import json_response, query_bool, start_json_stream, write_json_line
from declarun.daemon.containers.lifecycle.record import format_time
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.runtime.logfile import read_log
from declarun.daemon.containers.views.stats import StatsSampler, container_top
from declarun.daemon.filters import parse_time
from declarun.errdefs import InvalidArgument, NotFound

__all__ = ["MULTIPLEXED", "RAW_STREAM", "frame", "routes"]

MULTIPLEXED = "application/vnd.docker.multiplexed-stream"
RAW_STREAM = "application/vnd.docker.raw-stream"
_HEADER = struct.Struct(">BxxxI")
_STATS_INTERVAL = 1.0


def frame(stream: int, data: bytes) -> bytes:
    """One chunk in Docker's multiplexed framing."""
    return _HEADER.pack(stream, len(data)) + data


def routes(containers: ContainerService) -> Iterable[web.RouteDef]:
    """The logs, top and stats routes."""
    api = OutputApi(containers)
    return [
        web.get("/containers/{id}/logs", api.logs),
        web.get("/containers/{id}/top", api.top),
        web.get("/containers/{id}/stats", api.stats),
    ]


def _tail(request: web.Request) -> int | None:
    raw = request.query.get("tail", "all").strip()
    if raw in ("", "all"):
        return None
    try:
        value = int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid value for tail: {raw!r}") from None
    return None if value < 0 else value


class OutputApi:
    """Handlers for logs, top and stats."""

    def __init__(self, service: ContainerService) -> None:
        self.service = service

    async def logs(self, request: web.Request) -> web.StreamResponse:
        """``GET /containers/{id}/logs``."""
        rec = self.service.get(request.match_info["id"])
        want = {1: query_bool(request, "stdout"), 2: query_bool(request, "stderr")}
        if not any(want.values()):
            raise InvalidArgument("Bad parameters: you must choose at least one stream")
        follow = query_bool(request, "follow")
        timestamps = query_bool(request, "timestamps")
        since = parse_time(request.query.get("since"), "since") or None
        until = parse_time(request.query.get("until"), "until") or None
        tty = rec.config.tty
        stopped = asyncio.Event()
        watcher: asyncio.Task[None] | None = None
        if follow and rec.state.running:

            async def wait_stop() -> None:
                try:
                    await self.service.wait_exit(rec.id)
                except NotFound:  # removed meanwhile: its log ends too
                    pass
                finally:
                    stopped.set()

            watcher = asyncio.ensure_future(wait_stop())
        else:
            stopped.set()
        response = web.StreamResponse(status=200)
        response.content_type = RAW_STREAM if tty else MULTIPLEXED
        await response.prepare(request)
        try:
            async for record in read_log(rec.layout.log_file, follow=follow, stopped=stopped,
                                         since_ns=since, until_ns=until, tail=_tail(request)):  # fmt: skip
                if not want.get(record.stream, False):
                    continue
                data = record.data
                if timestamps:
                    data = format_time(record.time_ns).encode() + b" " + data
                await response.write(data if tty else frame(record.stream, data))
        finally:
            if watcher is not None:
                watcher.cancel()
        await response.write_eof()
        return response

    async def top(self, request: web.Request) -> web.Response:
        """``GET /containers/{id}/top?ps_args=``: ``{Titles, Processes}``."""
        rec = self.service.get(request.match_info["id"])
        titles, processes = await container_top(rec, request.query.get("ps_args", ""))
        return json_response({"Titles": titles, "Processes": processes})

    async def stats(self, request: web.Request) -> web.StreamResponse:
        """``GET /containers/{id}/stats?stream=&one-shot=``."""
        rec = self.service.get(request.match_info["id"])
        stream = query_bool(request, "stream", default=True)
        one_shot = query_bool(request, "one-shot")
        sampler = StatsSampler(rec)
        if not stream:
            first = await sampler.sample()
            if not one_shot and rec.state.running:
                await asyncio.sleep(_STATS_INTERVAL)
                first = await sampler.sample()
            return json_response(first)
        response = await start_json_stream(request)
        while True:
            await write_json_line(response, await sampler.sample())
            if not rec.state.running or not self.service.store.contains(rec.id):
                break
            await asyncio.sleep(_STATS_INTERVAL)
        await response.write_eof()
        return response
