"""``POST /containers/{id}/attach`` (hijacked) and ``POST /containers/{id}/resize``.

Attach answers ``101 UPGRADED`` (or ``200 OK`` to a client that did not ask to upgrade)
at once, then:

* with ``logs=1``, replays the container's log (the requested streams);
* with ``stream=1``, connects to conmon's attach socket -- now if the container runs,
  else at its next start, before its process runs (``docker run`` attaches between create
  and start, and must not miss the first byte) -- and copies output to the client until
  the container ends, and the client's input to the container's stdin when ``stdin=1``.

Without a TTY the output is multiplexed (8-byte frame headers); with one it is raw. The
connection ends when the container's output ends, the client detaches (``detachKeys``,
default ``ctrl-p,ctrl-q``), or the client goes away; the container keeps running.

Clients waiting for a container's start are kept in the daemon's
:class:`~declarun.daemon.containers.hooks.attach_clients.AttachWaiters`, which the container hooks
(:mod:`declarun.daemon.containers.hooks.container_hooks`) connect when the container starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable

from aiohttp import web

from declarun.daemon.api.hijack import MULTIPLEXED_STREAM, RAW_STREAM, hijack, hijacked_response
from declarun.daemon.api.http import query_bool, query_int
from declarun.daemon.containers.hooks.attach_clients import (
    DEFAULT_DETACH_KEYS,
    AttachOptions,
    AttachWaiters,
    parse_detach_keys,
    pump,
)
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.runtime.attach_socket import AttachStream, resize_terminal
from declarun.daemon.containers.runtime.logfile import read_log
from declarun.daemon.containers.runtime.syncpipe import MonitorError
from declarun.errdefs import Conflict, InvalidArgument

__all__ = ["detach_keys_of", "routes"]

log = logging.getLogger("declarun.daemon.api.attach")

_HEAD_ALONE = 0.05


def routes(containers: ContainerService, waiters: AttachWaiters) -> Iterable[web.RouteDef]:
    """The attach/resize routes."""

    async def attach(request: web.Request) -> web.StreamResponse:
        return await _attach(containers, waiters, request)

    async def resize(request: web.Request) -> web.StreamResponse:
        return await _resize(containers, request)

    return [
        web.post("/containers/{id}/attach", attach),
        web.post("/containers/{id}/resize", resize),
    ]


def detach_keys_of(spec: str | None) -> bytes:
    """The detach sequence a request asked for (400 if malformed)."""
    if not spec:
        return DEFAULT_DETACH_KEYS
    try:
        return parse_detach_keys(spec)
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None


async def _attach(
    service: ContainerService, waiters: AttachWaiters, request: web.Request
) -> web.StreamResponse:
    record = service.get(request.match_info["id"])
    options = AttachOptions(
        tty=record.config.tty,
        stdin=query_bool(request, "stdin"),
        stdout=query_bool(request, "stdout"),
        stderr=query_bool(request, "stderr"),
        detach_keys=detach_keys_of(request.query.get("detachKeys")),
    )
    stream = query_bool(request, "stream")
    logs = query_bool(request, "logs")
    if options.stdin and not record.config.open_stdin:
        # dockerd attaches no stdin then; we do the same rather than fail.
        options = AttachOptions(options.tty, False, options.stdout, options.stderr,
                                options.detach_keys)  # fmt: skip
    future = None
    if stream and not record.state.running:
        # Registered before the response head goes out: once the client has the head it
        # may start the container at once.
        future = waiters.add(record.id)
    content_type = RAW_STREAM if options.tty else MULTIPLEXED_STREAM
    reader, writer = await hijack(request, content_type=content_type)
    source: AttachStream | None = None
    try:
        if logs:
            # The replay exists at once; docker-py loses stream bytes that arrive in the same
            # read as the response head (see hijack), so let the head travel alone first.
            await writer.drain()
            await asyncio.sleep(_HEAD_ALONE)
            async for entry in read_log(record.layout.log_file):
                if options.wants(entry.stream):
                    writer.write(options.encode(entry.stream, entry.data))
                    await writer.drain()
        if stream:
            if future is not None:
                source = await future
            else:
                source = await AttachStream.connect(record.layout.attach_socket)
            await pump(source, reader, writer, options)
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()
    except (ConnectionError, MonitorError) as exc:
        log.debug("attach to %s ended: %s", record.id[:12], exc)
    finally:
        if future is not None:
            waiters.discard(record.id, future)
        if source is not None:
            source.close()
        writer.close()
    return hijacked_response(request)


async def _resize(service: ContainerService, request: web.Request) -> web.StreamResponse:
    record = service.get(request.match_info["id"])
    height = query_int(request, "h", 0)
    width = query_int(request, "w", 0)
    if not record.state.running:
        raise Conflict(f"Container {record.id} is not running")
    try:
        resize_terminal(record.layout.ctl_fifo, width, height)
    except MonitorError as exc:
        raise Conflict(f"cannot resize container {record.id}: {exc}") from None
    return web.Response(status=200)
