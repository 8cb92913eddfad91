"""The Containers API area: create, list, inspect, start/stop/kill/restart, pause, rename,
wait, remove, prune.

Logs, top and stats are in :mod:`.container_output`; attach and exec are separate areas
built on the same :class:`~declarun.daemon.containers.lifecycle.service.ContainerService`. Which
containers a list shows and a prune removes is the service side's policy
(:mod:`declarun.daemon.containers.views.listing`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.apiversion import API_VERSION_KEY, parse_api_version
from declarun.daemon.api.http import compact_json, json_response, query_bool, query_int, read_json
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.views.documents import inspect_document, summary_document
from declarun.daemon.containers.views.listing import list_containers, prune_keeps
from declarun.daemon.filters import parse_filters
from declarun.errdefs import InvalidArgument, NotFound

__all__ = ["ContainersApi", "routes"]

_WAIT_CONDITIONS = ("not-running", "next-exit", "removed")


def routes(containers: ContainerService, storage_driver: str) -> Iterable[web.RouteDef]:
    """The Containers area's routes (fixed paths before the ``{id}`` ones)."""
    api = ContainersApi(containers, storage_driver)
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
        web.post("/containers/{id}/update", api.update),
        web.post("/containers/{id}/wait", api.wait),
        web.delete("/containers/{id}", api.remove),
        web.delete("/containers/{id}/{link}", api.remove_link),
    ]


def _timeout(request: web.Request) -> int | None:
    raw = request.query.get("t", request.query.get("timeout", ""))
    if raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid value for t: {raw!r} is not an integer") from None


def _short_id_aliases(doc: dict[str, Any], short_id: str) -> None:
    """Before API 1.44 dockerd lists a running container's short ID among the ``Aliases``
    of each user network (clients such as docker-compose v1 look for it there)."""
    networks = (doc.get("NetworkSettings") or {}).get("Networks") or {}
    for name, endpoint in networks.items():
        if name in ("bridge", "host", "none") or not isinstance(endpoint, dict):
            continue
        aliases = list(endpoint.get("Aliases") or [])
        if short_id not in aliases:
            endpoint["Aliases"] = [*aliases, short_id]


class ContainersApi:
    """Handlers of the Containers area."""

    def __init__(self, service: ContainerService, storage_driver: str) -> None:
        self.service = service
        self.storage_driver = storage_driver

    async def create(self, request: web.Request) -> web.Response:
        """``POST /containers/create?name=``: 201 ``{Id, Warnings}``."""
        body = await read_json(request, default=None)
        rec = await self.service.create(body, name=request.query.get("name", ""))
        return json_response({"Id": rec.id, "Warnings": []}, status=201)

    async def list_containers(self, request: web.Request) -> web.Response:
        """``GET /containers/json``: newest first, running only unless ``all``."""
        filters = parse_filters(request.query.get("filters"))
        show_all = query_bool(request, "all")
        limit = query_int(request, "limit", -1)
        size = query_bool(request, "size")
        records = list_containers(self.service, filters, show_all=show_all, limit=limit)
        out = []
        for rec in records:
            size_rw = await asyncio.to_thread(self.service.size_rw, rec) if size else None
            size_root = self.service.image_size(rec) + (size_rw or 0) if size else None
            out.append(summary_document(
                rec, size_rw=size_rw, size_root=size_root,
                network_settings=self._network_settings(rec, summary=True),
                ports=self.service.networking.port_summary(rec) if self.service.networking else None,
            ))  # fmt: skip
        return json_response(out)

    def _network_settings(self, rec: ContainerRecord, *, summary: bool) -> dict[str, Any] | None:
        networking = self.service.networking
        return networking.settings(rec, summary=summary) if networking is not None else None

    async def inspect(self, request: web.Request) -> web.Response:
        """``GET /containers/{id}/json`` (``size`` adds SizeRw/SizeRootFs)."""
        rec = self.service.get(request.match_info["id"])
        size_rw = size_root = None
        if query_bool(request, "size"):
            size_rw = await asyncio.to_thread(self.service.size_rw, rec)
            size_root = self.service.image_size(rec) + size_rw
        doc = inspect_document(rec, driver=self.storage_driver,
                               layer_dir=self.service.layer_dir(rec),
                               size_rw=size_rw, size_root=size_root,
                               network_settings=self._network_settings(rec, summary=False))  # fmt: skip
        if parse_api_version(request[API_VERSION_KEY]) < (1, 44) and rec.state.running:
            _short_id_aliases(doc, rec.short_id)
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

    async def update(self, request: web.Request) -> web.Response:
        """``POST /containers/{id}/update``: ``{"Warnings": null}`` as dockerd answers."""
        body = await read_json(request, default=None)
        await self.service.update(request.match_info["id"], body)
        return json_response({"Warnings": None})

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
            document: dict[str, Any] = {"Error": None, "StatusCode": code}
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

    async def remove_link(self, request: web.Request) -> web.Response:
        """``DELETE /containers/{name}/{alias}?link=1``: forget a legacy link."""
        ref, alias = request.match_info["id"], request.match_info["link"]
        if not query_bool(request, "link"):
            raise NotFound(f"No such container: {ref}/{alias}")
        await self.service.remove_link(ref, alias)
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.Response:
        """``POST /containers/prune``: remove stopped containers (label/until filters)."""
        keep = prune_keeps(parse_filters(request.query.get("filters")))
        removed, freed = await self.service.prune(keep)
        return json_response({"ContainersDeleted": removed or None, "SpaceReclaimed": freed})
