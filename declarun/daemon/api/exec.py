"""The Exec API area: ``POST /containers/{id}/exec``, ``POST /exec/{id}/start|resize``, ``GET /exec/{id}/json``.

Start is hijacked unless ``Detach``: raw when the start request says ``Tty``, multiplexed
otherwise (dockerd frames by the start request, not by the exec's own ``Tty``). As
in dockerd the connection is taken over *before* the process starts, so a process that
cannot start (``exec: "nope": executable file not found in $PATH``) reports its error as
output on the stream and its exit code (126/127) in ``GET /exec/{id}/json``; the docker
CLI prints the one and exits with the other. The stream ends after the exit code is
recorded, so a client inspecting the exec right after sees it.

Exec instances live in the daemon's :class:`~declarun.daemon.containers.hooks.exec_instances.ExecManager`
(one of the container hooks, :mod:`declarun.daemon.containers.hooks.container_hooks`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.attach import detach_keys_of
from declarun.daemon.api.hijack import MULTIPLEXED_STREAM, RAW_STREAM, hijack, hijacked_response
from declarun.daemon.api.http import json_response, query_int, read_json
from declarun.daemon.containers.hooks.attach_clients import AttachOptions, frame, pump
from declarun.daemon.containers.hooks.exec_instances import (
    ExecConfig,
    ExecInstance,
    ExecManager,
    ExecStartFailed,
)
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.runtime.attach_socket import STDOUT
from declarun.daemon.containers.runtime.syncpipe import MonitorError
from declarun.errdefs import Conflict, InvalidArgument

__all__ = ["routes"]

log = logging.getLogger("declarun.daemon.api.exec")


def routes(containers: ContainerService, execs: ExecManager) -> Iterable[web.RouteDef]:
    """The Exec area's routes."""
    api = _ExecApi(containers, execs)
    return [
        web.post("/containers/{id}/exec", api.create),
        web.post("/exec/{id}/start", api.start),
        web.post("/exec/{id}/resize", api.resize),
        web.get("/exec/{id}/json", api.inspect),
    ]


def _command_text(instance: ExecInstance) -> str:
    return " ".join(instance.config.cmd)


class _ExecApi:
    def __init__(self, containers: ContainerService, execs: ExecManager) -> None:
        self.containers = containers
        self.execs = execs
        self._background: set[asyncio.Task[Any]] = set()

    async def create(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/exec`` (201 ``{"Id": ...}``)."""
        service = self.containers
        record = service.get(request.match_info["id"])
        config = ExecConfig.from_api(await read_json(request, default={}))
        if config.detach_keys:
            detach_keys_of(config.detach_keys)
        instance = self.execs.create(record, config)
        service.publish(record, f"exec_create: {_command_text(instance)}",
                        {"execID": instance.id})  # fmt: skip
        return json_response({"Id": instance.id}, status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        """``GET /exec/{id}/json``."""
        instance = self.execs.get(request.match_info["id"])
        return json_response(instance.to_inspect())

    async def resize(self, request: web.Request) -> web.Response:
        """``POST /exec/{id}/resize?h=&w=``."""
        instance = self.execs.get(request.match_info["id"])
        height, width = query_int(request, "h", 0), query_int(request, "w", 0)
        if instance.session is None or not instance.running:
            raise Conflict(f"exec {instance.id} is not running")
        try:
            instance.session.resize(width, height)
        except MonitorError as exc:
            raise InvalidArgument(str(exc)) from None
        return web.Response(status=200)

    async def start(self, request: web.Request) -> web.StreamResponse:
        """``POST /exec/{id}/start``: hijacked stream, or detached."""
        body = await read_json(request, default={}) or {}
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        instance = self.execs.get(request.match_info["id"])
        service = self.containers
        record = service.get(instance.container_id)
        self.execs.check_startable(record, instance)
        # Go's JSON decoder matches names case-insensitively; clients send either spelling.
        start = {key.lower(): value for key, value in body.items()}
        if start.get("detach"):
            await self.execs.start(record, instance)
            self._published_start(service, record, instance)
            self._spawn(self._finish(service, record, instance))
            return web.Response(status=200)
        # The framing follows the start request's Tty, not the exec's (dockerd's rule):
        # docker-py's exec_start(tty=False) of a TTY exec reads frames of the TTY's output.
        options = AttachOptions(
            tty=bool(start.get("tty")),
            stdin=instance.config.attach_stdin,
            stdout=instance.config.attach_stdout,
            stderr=instance.config.attach_stderr,
            detach_keys=detach_keys_of(instance.config.detach_keys or None),
        )
        reader, writer = await hijack(
            request, content_type=RAW_STREAM if options.tty else MULTIPLEXED_STREAM
        )
        try:
            try:
                session = await self.execs.start(record, instance)
            except ExecStartFailed as exc:
                message = (str(exc) + "\r\n").encode()
                writer.write(message if options.tty else frame(STDOUT, message))
                with contextlib.suppress(ConnectionError):
                    await writer.drain()
                service.publish(record, "exec_die", {"execID": instance.id,
                                                     "exitCode": str(exc.exit_code)})  # fmt: skip
                return hijacked_response(request)
            self._published_start(service, record, instance)
            detached = False
            try:
                detached = await pump(session.attach, reader, writer, options)
            except (ConnectionError, MonitorError) as exc:
                log.debug("exec %s stream ended: %s", instance.id[:12], exc)
            finally:
                # Also when the client went away (cancellation): the exec runs on, and its
                # remaining output must still be drained and its exit recorded.
                finishing = self._spawn(self._finish(service, record, instance))
            if detached:
                service.publish(record, "exec_detach", {"execID": instance.id})
            else:
                # The exit code must be recorded before the client sees the stream end.
                await asyncio.shield(finishing)
        finally:
            writer.close()
        return hijacked_response(request)

    def _published_start(
        self, service: ContainerService, record: ContainerRecord, instance: ExecInstance
    ) -> None:
        service.publish(record, f"exec_start: {_command_text(instance)}",
                        {"execID": instance.id})  # fmt: skip

    async def _finish(
        self, service: ContainerService, record: ContainerRecord, instance: ExecInstance
    ) -> None:
        session = instance.session
        if session is not None:
            # Output nobody reads any more must still be consumed: conmon's writes block.
            with contextlib.suppress(OSError):  # the socket failed: nothing left to drain
                while await session.attach.read() is not None:
                    pass
        code = await self.execs.wait_and_close(instance)
        service.publish(record, "exec_die", {"execID": instance.id, "exitCode": str(code)})

    def _spawn(self, coro: Any) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)
        return task
