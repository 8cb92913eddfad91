"""The networks API area: ``/networks`` create, list, inspect, connect, disconnect, remove,
prune — Swagger's ``Network``, ``NetworkCreateResponse`` and dockerd's messages.

The network service, the container networking and the list/prune policy
(:mod:`declarun.daemon.networks.listing`) do the work; this area only serves them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.http import json_response, read_json
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.filters import parse_filters
from declarun.daemon.networks.listing import list_networks, prune_keeps
from declarun.daemon.networks.service import NetworkService, parse_create_body
from declarun.daemon.networks.views import network_document
from declarun.daemon.networks.wiring import ContainerNetworking
from declarun.errdefs import InvalidArgument

__all__ = ["routes"]


def routes(
    service: NetworkService, networking: ContainerNetworking, containers: ContainerService
) -> Iterable[web.RouteDef]:
    """The ``/networks`` endpoints."""

    async def container_of(request: web.Request) -> tuple[ContainerRecord, Any]:
        """The body's container and its ``EndpointConfig``."""
        body = await read_json(request, default={})
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid request: Container is required")
        return containers.get(body["Container"]), body.get("EndpointConfig") or {}

    async def list_all(request: web.Request) -> web.Response:
        filters = parse_filters(request.query.get("filters"))
        return json_response([network_document(r, {}) for r in list_networks(service, filters)])

    async def inspect(request: web.Request) -> web.Response:
        record = service.get(request.match_info["id"])
        return json_response(network_document(record, service.attached(record.id)))

    async def create(request: web.Request) -> web.Response:
        body = await read_json(request)
        fields = parse_create_body(body)
        network_id = await service.create(fields)
        return json_response({"Id": network_id, "Warning": ""}, status=201)

    async def connect(request: web.Request) -> web.Response:
        record = service.get(request.match_info["id"])
        rec, endpoint_config = await container_of(request)
        async with containers.lock(rec):
            await networking.connect(record, rec, endpoint_config)
        return web.Response(status=200)

    async def disconnect(request: web.Request) -> web.Response:
        record = service.get(request.match_info["id"])
        rec, _ = await container_of(request)
        async with containers.lock(rec):
            await networking.disconnect(record, rec)
        return web.Response(status=200)

    async def remove(request: web.Request) -> web.Response:
        await service.remove(request.match_info["id"])
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        keep = prune_keeps(parse_filters(request.query.get("filters")))
        removed = await service.prune(keep)
        return json_response({"NetworksDeleted": removed})

    return [
        web.get("/networks", list_all),
        web.post("/networks/create", create),
        web.post("/networks/prune", prune),
        web.get("/networks/{id}", inspect),
        web.delete("/networks/{id}", remove),
        web.post("/networks/{id}/connect", connect),
        web.post("/networks/{id}/disconnect", disconnect),
    ]
