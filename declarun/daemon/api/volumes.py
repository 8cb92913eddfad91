"""The Volume API area: ``/volumes`` create, list, inspect, remove, prune.

The volume service (:mod:`declarun.daemon.volumes.service`) holds the rules -- list
filters, prune policy, events -- and volumes as container mounts; this area parses the
requests. The one HTTP concern left in prune is the API version: from 1.42 on (as
dockerd), prune removes only anonymous volumes unless the ``all=true`` filter is given;
older clients prune every unused volume.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import web

from declarun.daemon.api.apiversion import API_VERSION_KEY
from declarun.daemon.api.http import json_response, query_bool, read_json
from declarun.daemon.filters import parse_filters
from declarun.daemon.volumes.service import VolumeService
from declarun.errdefs import InvalidArgument

__all__ = ["routes"]

# From this API version on, prune takes only anonymous volumes unless told ``all``.
_PRUNE_ANONYMOUS_SINCE = (1, 42)


def routes(volumes: VolumeService) -> Iterable[web.RouteDef]:
    """The Volume area's routes."""
    api = _VolumeApi(volumes)
    return [
        web.get("/volumes", api.list),
        web.post("/volumes/create", api.create),
        web.post("/volumes/prune", api.prune),
        web.get("/volumes/{name}", api.inspect),
        web.delete("/volumes/{name}", api.remove),
    ]


class _VolumeApi:
    def __init__(self, volumes: VolumeService) -> None:
        self.volumes = volumes

    async def list(self, request: web.Request) -> web.Response:
        """``GET /volumes``: ``{"Volumes": [...], "Warnings": []}``."""
        filters = parse_filters(request.query.get("filters"))
        volumes = await asyncio.to_thread(self.volumes.list, filters)
        return json_response({"Volumes": [v.to_api() for v in volumes], "Warnings": []})

    async def create(self, request: web.Request) -> web.Response:
        """``POST /volumes/create`` (201, the Volume)."""
        body = await read_json(request, default={})
        if not isinstance(body, dict):
            raise InvalidArgument("invalid JSON body: expected an object")
        name = body.get("Name") or ""
        driver = body.get("Driver") or "local"
        opts = body.get("DriverOpts") or {}
        labels = body.get("Labels") or {}
        if not isinstance(name, str) or not isinstance(driver, str):
            raise InvalidArgument("invalid value for Name or Driver: expected a string")
        for what, value in (("DriverOpts", opts), ("Labels", labels)):
            if not isinstance(value, dict) or not all(
                isinstance(k, str) and isinstance(v, str) for k, v in value.items()
            ):
                raise InvalidArgument(f"invalid value for {what}: expected an object of strings")
        volume = await asyncio.to_thread(
            self.volumes.create, name, driver=driver, options=opts, labels=labels
        )
        return json_response(volume.to_api(), status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        """``GET /volumes/{name}``."""
        volume = await asyncio.to_thread(self.volumes.get, request.match_info["name"])
        return json_response(volume.to_api())

    async def remove(self, request: web.Request) -> web.Response:
        """``DELETE /volumes/{name}?force=`` (204)."""
        name = request.match_info["name"]
        await asyncio.to_thread(self.volumes.remove, name, force=query_bool(request, "force"))
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.Response:
        """``POST /volumes/prune``: unused (anonymous, unless ``all``) volumes go."""
        filters = parse_filters(request.query.get("filters"))
        old_client = _version_tuple(request[API_VERSION_KEY]) < _PRUNE_ANONYMOUS_SINCE
        result = await asyncio.to_thread(self.volumes.prune, filters, all_by_default=old_client)
        return json_response(
            {"VolumesDeleted": result.deleted or None, "SpaceReclaimed": result.space_reclaimed}
        )


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (1, 45)
