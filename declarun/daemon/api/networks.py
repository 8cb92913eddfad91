"""The networks API area: ``/networks`` create, list, inspect, connect, disconnect, remove,
prune — Swagger's ``Network``, ``NetworkCreateResponse`` and dockerd's messages.

The network service and the container wiring are opened with the container service
(:mod:`declarun.daemon.networks.setup`); this area only serves them.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

from aiohttp import web

from declarun.daemon.api.event_filter import parse_event_time
from declarun.daemon.api.filters import Filters, parse_filters
from declarun.daemon.api.http import json_response, read_json
from declarun.daemon.containers.setup import container_service, service_of
from declarun.daemon.context import DaemonContext
from declarun.daemon.networks.service import NetworkService, parse_create_body
from declarun.daemon.networks.setup import close_networking, network_service, wiring_of
from declarun.daemon.networks.store import NetworkRecord
from declarun.daemon.networks.views import network_document
from declarun.errdefs import InvalidArgument

__all__ = ["on_cleanup", "on_startup", "routes"]

_LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
_PRUNE_FILTERS = ("label", "label!", "until")


async def on_startup(ctx: DaemonContext) -> None:
    """Networking opens with the container service; make sure it is open."""
    await container_service(ctx)


async def on_cleanup(ctx: DaemonContext) -> None:
    """Stop the embedded DNS and the port proxies; delete idle bridges."""
    await close_networking(ctx)


def _truthy(value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid filter 'dangling={value}'")


def _matches(service: NetworkService, record: NetworkRecord, filters: Filters) -> bool:
    names = filters.get("name")
    if names and not any(n in record.name for n in names):
        return False
    if not filters.fuzzy_match("id", record.id):
        return False
    if not filters.exact_match("driver", record.driver):
        return False
    if not filters.exact_match("scope", "local"):
        return False
    kind = "builtin" if record.builtin else "custom"
    for wanted in filters.get("type"):
        if wanted not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{wanted}'")
    if not filters.exact_match("type", kind):
        return False
    if not filters.match_kv_list("label", record.labels):
        return False
    for value in filters.get("dangling"):
        dangling = not record.builtin and not service.attached(record.id)
        if _truthy(value) != dangling:
            return False
    return True


def routes(ctx: DaemonContext) -> Iterable[web.RouteDef]:
    """The ``/networks`` endpoints."""

    async def list_networks(request: web.Request) -> web.Response:
        service = network_service(ctx)
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_LIST_FILTERS)
        out = []
        for record in service.all():
            if _matches(service, record, filters):
                doc = network_document(record, {})
                out.append(doc)
        return json_response(out)

    async def inspect(request: web.Request) -> web.Response:
        service = network_service(ctx)
        record = service.get(request.match_info["id"])
        return json_response(network_document(record, service.attached(record.id)))

    async def create(request: web.Request) -> web.Response:
        body = await read_json(request)
        fields = parse_create_body(body)
        service = network_service(ctx)
        network_id = await service.create(fields)
        return json_response({"Id": network_id, "Warning": ""}, status=201)

    async def connect(request: web.Request) -> web.Response:
        service = network_service(ctx)
        record = service.get(request.match_info["id"])
        body = await read_json(request, default={})
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid request: Container is required")
        containers = service_of(ctx)
        rec = containers.get(body["Container"])
        async with containers.lock(rec):
            await wiring_of(ctx).connect(record, rec, body.get("EndpointConfig") or {})
        return web.Response(status=200)

    async def disconnect(request: web.Request) -> web.Response:
        service = network_service(ctx)
        record = service.get(request.match_info["id"])
        body = await read_json(request, default={})
        if not isinstance(body, dict) or not isinstance(body.get("Container"), str):
            raise InvalidArgument("invalid request: Container is required")
        containers = service_of(ctx)
        rec = containers.get(body["Container"])
        async with containers.lock(rec):
            await wiring_of(ctx).disconnect(record, rec)
        return web.Response(status=200)

    async def remove(request: web.Request) -> web.Response:
        await network_service(ctx).remove(request.match_info["id"])
        return web.Response(status=204)

    async def prune(request: web.Request) -> web.Response:
        service = network_service(ctx)
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_PRUNE_FILTERS)
        until = None
        for value in filters.get("until"):
            until = parse_event_time(value, "until")

        def keep(record: NetworkRecord) -> bool:
            if not filters.match_kv_list("label", record.labels):
                return True
            negated = filters.get("label!")
            if negated and Filters({"label": negated}).match_kv_list("label", record.labels):
                return True
            return until is not None and _created_after(record, until)

        removed = await service.prune(keep)
        return json_response({"NetworksDeleted": removed})

    return [
        web.get("/networks", list_networks),
        web.post("/networks/create", create),
        web.post("/networks/prune", prune),
        web.get("/networks/{id}", inspect),
        web.delete("/networks/{id}", remove),
        web.post("/networks/{id}/connect", connect),
        web.post("/networks/{id}/disconnect", disconnect),
    ]


def _created_after(record: NetworkRecord, until_ns: int) -> bool:
    """Whether the network was created after ``until_ns`` (nanoseconds since the epoch)."""
    try:
        created = datetime.strptime(record.created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return created.timestamp() * 1e9 > until_ns
