"""The Containers API area: create, list, inspect, start/stop/kill/restart, pause, rename,
wait, remove, prune.

Logs, top and stats are in :mod:`.container_output`; attach and exec are separate areas
built on the same :class:`~declarun.daemon.containers.service.ContainerService`, which this
area's start-up hook opens (:func:`~declarun.daemon.containers.setup.container_service`).
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.event_filter import parse_event_time
from declarun.daemon.api.filters import Filters, parse_filters
from declarun.daemon.api.http import compact_json, json_response, query_bool, query_int, read_json
from declarun.daemon.containers.record import ContainerRecord
from declarun.daemon.containers.service import ContainerService
from declarun.daemon.containers.setup import (
    ServiceImages,
    close_container_service,
    container_service,
    service_of,
)
from declarun.daemon.containers.views import inspect_document, summary_document
from declarun.daemon.context import DaemonContext
from declarun.daemon.images.service import ImageService
from declarun.errdefs import InvalidArgument, NotFound

__all__ = ["ContainersApi", "on_cleanup", "on_startup", "routes"]

_LIST_FILTERS = (
    "ancestor", "before", "exited", "health", "id", "label", "name", "since", "status",
    "volume", "network", "publish", "expose", "is-task",
)  # fmt: skip
_PRUNE_FILTERS = ("label", "label!", "until")
_STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")
_WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def routes(ctx: DaemonContext) -> Iterable[web.RouteDef]:
    """The Containers area's routes (fixed paths before the ``{id}`` ones)."""
    api = ContainersApi(ctx)
    return [
        web.post("/containers/create", api.create),
        web.get("/containers/json", api.list_containers),
        web.post("/containers/prune", api.prune),
        web.get("/containers/{id}/json", api.inspect),
        web.post("/containers/{id}/start", api.start),
        web.post("/containers/{id}/stop", api.stop),
        web.post("/containers/{id}/restart", api.restart),
        web.post("/containers/{id}/kill", api.kill),
        web.post("/containers/{id}/pause", api.pause),
        web.post("/containers/{id}/unpause", api.unpause),
        web.post("/containers/{id}/rename", api.rename),
        web.post("/containers/{id}/wait", api.wait),
        web.delete("/containers/{id}", api.remove),
    ]


async def on_startup(ctx: DaemonContext) -> None:
    """Open the container service and find every container again."""
    await container_service(ctx)


async def on_cleanup(ctx: DaemonContext) -> None:
    """Stop watching exits; the containers keep running."""
    close_container_service(ctx)


def _timeout(request: web.Request) -> int | None:
    raw = request.query.get("t", request.query.get("timeout", ""))
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid value for t: {raw!r} is not an integer") from None


class ContainersApi:
    """Handlers of the Containers area."""

    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx

    @property
    def service(self) -> ContainerService:
        """The container service."""
        return service_of(self.ctx)

    def _images(self) -> ImageService:
        images = self.ctx.image_store
        if not isinstance(images, ImageService):
            raise InvalidArgument("the image store is not available")
        return images

    async def create(self, request: web.Request) -> web.Response:
        """``POST /containers/create?name=``: 201 ``{Id, Warnings}``."""
        body = await read_json(request, default=None)
        rec = await self.service.create(
            body,
            name=request.query.get("name", ""),
            images=ServiceImages(self._images()),
            default_runtime=self.ctx.config.runtime,
        )
        return json_response({"Id": rec.id, "Warnings": []}, status=201)

    async def list_containers(self, request: web.Request) -> web.Response:
        """``GET /containers/json``: newest first, running only unless ``all``."""
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_LIST_FILTERS)
        for status in filters.get("status"):
            if status not in _STATUSES:
                raise InvalidArgument(f"invalid filter 'status={status}'")
        show_all = query_bool(request, "all")
        limit = query_int(request, "limit", -1)
        size = query_bool(request, "size")
        records = list(reversed(self.service.list()))
        records = [r for r in records if self._matches(r, filters, show_all or limit > 0)]
        if limit > 0:
            records = records[:limit]
        out = []
        for rec in records:
            size_rw = await asyncio.to_thread(self.service.size_rw, rec) if size else None
            size_root = self._image_size(rec) + (size_rw or 0) if size else None
            net = getattr(self.service, "networking", None)
            out.append(summary_document(
                rec, size_rw=size_rw, size_root=size_root,
                network_settings=net.settings(rec, summary=True) if net else None,
                ports=net.port_summary(rec) if net else None,
            ))  # fmt: skip
        return json_response(out)

    def _image_size(self, rec: ContainerRecord) -> int:
        try:
            return self._images().metadata.get_image(rec.image_id).record.size
        except Exception:
            return 0

    def _matches(self, rec: ContainerRecord, filters: Filters, show_all: bool) -> bool:
        state = rec.state
        statuses = filters.get("status")
        # Like dockerd, where a container in a restart back-off still counts as running.
        if not show_all and not state.listed and not statuses:
            return False
        if statuses and state.status not in statuses:
            return False
        if not filters.fuzzy_match("id", rec.id):
            return False
        if "name" in filters and not any(_name_match(v, rec.name) for v in filters.get("name")):
            return False
        if not filters.match_kv_list("label", dict(rec.config.labels)):
            return False
        exited = filters.get("exited")
        if exited:
            if state.listed or state.started_at == 0:
                return False
            if str(state.exit_code) not in exited:
                return False
        if "ancestor" in filters and not any(
            self._ancestor(v, rec) for v in filters.get("ancestor")
        ):
            return False
        for key, newer in (("before", False), ("since", True)):
            for ref in filters.get(key):
                other = self.service.get(ref)
                if newer and rec.created_ns <= other.created_ns:
                    return False
                if not newer and rec.created_ns >= other.created_ns:
                    return False
        health = filters.get("health")
        if health:
            current = (state.health or {}).get("Status", "none")
            if current not in health:
                return False
        volumes = filters.get("volume")
        if volumes:
            names = set(rec.volume_names.values()) | {m.target for m in rec.host_config.mounts}
            names |= {m.source for m in rec.host_config.mounts}
            if not names & volumes:
                return False
        return True

    def _ancestor(self, value: str, rec: ContainerRecord) -> bool:
        if value in (rec.config.image, rec.image_id) or rec.image_id.removeprefix(
            "sha256:"
        ).startswith(value.removeprefix("sha256:")):
            return True
        try:
            return self._images().resolve(value).id == rec.image_id
        except (NotFound, InvalidArgument):
            return False

    async def inspect(self, request: web.Request) -> web.Response:
        """``GET /containers/{id}/json`` (``size`` adds SizeRw/SizeRootFs)."""
        rec = self.service.get(request.match_info["id"])
        size_rw = size_root = None
        if query_bool(request, "size"):
            size_rw = await asyncio.to_thread(self.service.size_rw, rec)
            size_root = self._image_size(rec) + size_rw
        layer_dir = self.service.rootfs.snapshotter.root / "containers" / rec.id
        net = getattr(self.service, "networking", None)
        doc = inspect_document(rec, driver=self.ctx.storage_driver, layer_dir=layer_dir,
                               size_rw=size_rw, size_root=size_root,
                               network_settings=net.settings(rec, summary=False) if net else None)  # fmt: skip
        return json_response(doc)

    async def start(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/start``: 204, or 304 when already running."""
        await self.service.start(request.match_info["id"])
        return web.Response(status=204)

    async def stop(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/stop?t=&signal=``: 204, or 304 when not running."""
        await self.service.stop(
            request.match_info["id"], _timeout(request), request.query.get("signal") or None
        )
        return web.Response(status=204)

    async def restart(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/restart?t=``."""
        await self.service.restart(request.match_info["id"], _timeout(request))
        return web.Response(status=204)

    async def kill(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/kill?signal=``."""
        await self.service.kill(request.match_info["id"], request.query.get("signal") or "KILL")
        return web.Response(status=204)

    async def pause(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/pause``."""
        await self.service.pause(request.match_info["id"])
        return web.Response(status=204)

    async def unpause(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/unpause``."""
        await self.service.unpause(request.match_info["id"])
        return web.Response(status=204)

    async def rename(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/rename?name=``."""
        await self.service.rename(request.match_info["id"], request.query.get("name", ""))
        return web.Response(status=204)

    async def wait(self, request: web.Request) -> web.StreamResponse:
        """``POST /containers/{id}/wait?condition=``: ``{StatusCode, Error}`` once it holds.

        The headers go out at once (as dockerd sends them) so a client knows the wait is
        registered before it starts the container.
        """
        condition = request.query.get("condition", "") or "not-running"
        if condition not in _WAIT_CONDITIONS:
            raise InvalidArgument(f"invalid condition: {condition!r}")
        rec = self.service.get(request.match_info["id"])
        waiting = asyncio.ensure_future(self.service.wait(rec.id, condition))
        await asyncio.sleep(0)  # registers the waiter before anything else can happen
        response = web.StreamResponse(status=200)
        response.content_type = "application/json"
        try:
            await response.prepare(request)
            code = await waiting
            document: dict[str, Any] = {"StatusCode": code}
        except NotFound as exc:
            document = {"StatusCode": -1, "Error": {"Message": str(exc)}}
        finally:
            waiting.cancel()
        await response.write(compact_json(document).encode())
        await response.write_eof()
        return response

    async def remove(self, request: web.Request) -> web.Response:
        """``DELETE /containers/{id}?force=&v=``."""
        await self.service.remove(
            request.match_info["id"],
            force=query_bool(request, "force"),
            volumes=query_bool(request, "v"),
        )
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.Response:
        """``POST /containers/prune``: remove stopped containers (label/until filters)."""
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_PRUNE_FILTERS)
        until_ns: int | None = None
        for value in filters.get("until"):
            until_ns = parse_event_time(value, "until")

        def keep(rec: ContainerRecord) -> bool:
            labels = dict(rec.config.labels)
            if not filters.match_kv_list("label", labels):
                return True
            negated = filters.get("label!")
            if negated and Filters({"label": negated}).match_kv_list("label", labels):
                return True
            return until_ns is not None and rec.created_ns >= until_ns

        removed, freed = await self.service.prune(keep)
        return json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": freed})


def _name_match(pattern: str, name: str) -> bool:
    """dockerd matches ``name`` filters as regular expressions against ``/name``."""
    try:
        return re.search(pattern, f"/{name}") is not None
    except re.error:
        return pattern in name
