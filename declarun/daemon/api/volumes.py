"""The Volume API area: ``/volumes`` create, list, inspect, remove, prune.

The store is :class:`declarun.daemon.volumes.VolumeStore` under ``<data-root>/volumes``.
At start-up it is hooked to the container service both ways: the service resolves
``volume`` mounts through :func:`declarun.daemon.containers.volumemounts.resolver`
(named volumes created on first use, anonymous ones for ``-v /path`` and image
``VOLUME``s), and the store asks the service which containers use a volume.

Prune (API >= 1.42, as dockerd) removes only anonymous volumes unless the ``all=true``
filter is given; older clients prune every unused volume.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.apiversion import API_VERSION_KEY
from declarun.daemon.api.filters import Filters, parse_filters
from declarun.daemon.api.http import json_response, query_bool, read_json
from declarun.daemon.containers.setup import container_service
from declarun.daemon.containers.volumemounts import volume_store
from declarun.daemon.context import DaemonContext
from declarun.daemon.volumes import Volume, VolumeStore
from declarun.errdefs import InvalidArgument

__all__ = ["on_startup", "routes"]

_LIST_FILTERS = ("name", "label", "dangling", "driver")
_PRUNE_FILTERS = ("label", "label!", "all")


async def on_startup(ctx: DaemonContext) -> None:
    """Open the container service, which connects the volume store to it."""
    await container_service(ctx)


def routes(ctx: DaemonContext) -> Iterable[web.RouteDef]:
    """The Volume area's routes."""
    api = _VolumeApi(ctx)
    return [
        web.get("/volumes", api.list),
        web.post("/volumes/create", api.create),
        web.post("/volumes/prune", api.prune),
        web.get("/volumes/{name}", api.inspect),
        web.delete("/volumes/{name}", api.remove),
    ]


def _bool_filter(filters: Filters, name: str) -> bool | None:
    values = filters.get(name)
    if not values:
        return None
    wanted: bool | None = None
    for value in values:
        if value.lower() in ("true", "1"):
            wanted = True
        elif value.lower() in ("false", "0"):
            wanted = False
        else:
            raise InvalidArgument(f"invalid filter '{name}={value}'")
    return wanted


def _name_matches(filters: Filters, name: str) -> bool:
    values = filters.get("name")
    # dockerd matches names as regular expressions (and so substrings).
    return not values or any(_search(v, name) for v in values)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _labels_exclude(filters: Filters, labels: dict[str, str]) -> bool:
    """``label!`` filters: true when one of them matches (the volume is left alone)."""
    for value in filters.get("label!"):
        key, has_value, wanted = value.partition("=")
        if key in labels and (not has_value or labels[key] == wanted):
            return True
    return False


class _VolumeApi:
    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx

    @property
    def store(self) -> VolumeStore:
        return volume_store(self.ctx)

    async def list(self, request: web.Request) -> web.Response:
        """``GET /volumes``: ``{"Volumes": [...], "Warnings": []}``."""
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_LIST_FILTERS)
        dangling = _bool_filter(filters, "dangling")
        volumes = await asyncio.to_thread(self.store.list)
        out: list[dict[str, Any]] = []
        for volume in volumes:
            if not _name_matches(filters, volume.name):
                continue
            if not filters.exact_match("driver", volume.driver):
                continue
            if not filters.match_kv_list("label", dict(volume.labels)):
                continue
            if dangling is not None:
                used = bool(await asyncio.to_thread(self.store.users, volume.name))
                if used == dangling:
                    continue
            out.append(volume.to_api())
        return json_response({"Volumes": out, "Warnings": []})

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
        volume, new = await asyncio.to_thread(
            self.store.create, name, driver=driver, options=opts, labels=labels
        )
        if new:
            self._publish(volume, "create", {"driver": volume.driver})
        return json_response(volume.to_api(), status=201)

    async def inspect(self, request: web.Request) -> web.Response:
        """``GET /volumes/{name}``."""
        volume = await asyncio.to_thread(self.store.get, request.match_info["name"])
        return json_response(volume.to_api())

    async def remove(self, request: web.Request) -> web.Response:
        """``DELETE /volumes/{name}?force=`` (204)."""
        name = request.match_info["name"]
        force = query_bool(request, "force")
        existed = await asyncio.to_thread(self.store.find, name)
        await asyncio.to_thread(self.store.remove, name, force=force)
        if existed is not None:
            self._publish(existed, "destroy", {"driver": existed.driver})
        return web.Response(status=204)

    async def prune(self, request: web.Request) -> web.Response:
        """``POST /volumes/prune``: unused (anonymous, unless ``all``) volumes go."""
        filters = parse_filters(request.query.get("filters"))
        filters.validate(_PRUNE_FILTERS)
        everything = _bool_filter(filters, "all")
        version = request[API_VERSION_KEY]
        if everything is None:
            everything = _version_tuple(version) < (1, 42)
        deleted: list[str] = []
        reclaimed = 0
        for volume in await asyncio.to_thread(self.store.list):
            if not everything and not volume.anonymous:
                continue
            if not filters.match_kv_list("label", dict(volume.labels)):
                continue
            if _labels_exclude(filters, dict(volume.labels)):
                continue
            if await asyncio.to_thread(self.store.users, volume.name):
                continue
            size = await asyncio.to_thread(_du, volume)
            try:
                await asyncio.to_thread(self.store.remove, volume.name)
            except Exception:  # taken into use meanwhile: keep it
                continue
            deleted.append(volume.name)
            reclaimed += size
            self._publish(volume, "destroy", {"driver": volume.driver})
        self.ctx.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return json_response({"VolumesDeleted": deleted or None, "SpaceReclaimed": reclaimed})

    def _publish(self, volume: Volume, action: str, attributes: dict[str, str]) -> None:
        self.ctx.events.publish("volume", action, volume.name, attributes)


def _version_tuple(version: str) -> tuple[int, ...]:
    try:
        return tuple(int(p) for p in version.split("."))
    except ValueError:
        return (1, 45)


def _du(volume: Volume) -> int:
    total = 0
    seen: set[tuple[int, int]] = set()
    for path in [volume.mountpoint, *volume.mountpoint.rglob("*")]:
        try:
            st = path.lstat()
        except OSError:
            continue
        if (st.st_dev, st.st_ino) not in seen:
            seen.add((st.st_dev, st.st_ino))
            total += st.st_blocks * 512 if path != volume.mountpoint else 0
    return total
