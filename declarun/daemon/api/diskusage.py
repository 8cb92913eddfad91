"""``GET /system/df``: what images, containers, volumes and the build cache take on disk.

As dockerd answers it: ``LayersSize`` (``omitempty``), ``Images`` (with ``SharedSize`` and
``Containers``), ``Containers`` (every one, with ``SizeRw`` and ``SizeRootFs``), ``Volumes``
(with ``UsageData``: ``Size`` and ``RefCount``) and ``BuildCache`` (the builder's records).
From API 1.42 ``type`` (repeatable: ``container``, ``image``, ``volume``, ``build-cache``)
limits the answer to those parts (the others are ``null``); before 1.42 every part is
computed and ``BuilderSize`` sums the build cache.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from aiohttp import web

from declarun.daemon.api.apiversion import API_VERSION_KEY
from declarun.daemon.api.http import json_response
from declarun.daemon.builder.prune import build_cache_records
from declarun.daemon.builder.service import BuilderService
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.views.documents import summary_document
from declarun.daemon.filters import Filters
from declarun.daemon.images.service import ImageService
from declarun.daemon.images.usage import image_disk_usage
from declarun.daemon.volumes.service import VolumeService
from declarun.errdefs import InvalidArgument

__all__ = ["DiskUsageApi", "routes"]

_TYPES = ("container", "image", "volume", "build-cache")


def routes(
    images: ImageService,
    containers: ContainerService,
    volumes: VolumeService,
    builder: BuilderService,
) -> Iterable[web.RouteDef]:
    """The ``/system/df`` route."""
    api = DiskUsageApi(images, containers, volumes, builder)
    return [web.get("/system/df", api.disk_usage)]


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split(".") if part.isdigit())


class DiskUsageApi:
    """The handler of ``/system/df``."""

    def __init__(
        self,
        images: ImageService,
        containers: ContainerService,
        volumes: VolumeService,
        builder: BuilderService,
    ) -> None:
        self.images = images
        self.containers = containers
        self.volumes = volumes
        self.builder = builder

    async def disk_usage(self, request: web.Request) -> web.StreamResponse:
        """``GET /system/df?type=``."""
        old = _version(request[API_VERSION_KEY]) < (1, 42)
        wanted = set(request.query.getall("type", []))
        for kind in wanted:
            if kind not in _TYPES:
                raise InvalidArgument(f"unknown object type: {kind}")
        if old or not wanted:
            wanted = set(_TYPES)
        doc: dict[str, Any] = {}
        if "image" in wanted:
            counts: dict[str, int] = {}
            for rec in self.containers.list():
                if rec.image_id:
                    counts[rec.image_id] = counts.get(rec.image_id, 0) + 1
            layers_size, summaries = await asyncio.to_thread(image_disk_usage, self.images, counts)
            if layers_size:
                doc["LayersSize"] = layers_size
            if _version(request[API_VERSION_KEY]) < (1, 44):
                for summary in summaries:  # dropped from API 1.44 on; older clients read it
                    summary.setdefault("VirtualSize", summary.get("Size", 0))
            doc["Images"] = summaries
        else:
            doc["Images"] = None
        doc["Containers"] = await self._containers() if "container" in wanted else None
        doc["Volumes"] = await asyncio.to_thread(self._volumes) if "volume" in wanted else None
        if "build-cache" in wanted:
            records = await asyncio.to_thread(build_cache_records, self.builder)
            doc["BuildCache"] = [r.to_api() for r in records]
            if old:
                doc["BuilderSize"] = sum(r.size for r in records)
        else:
            doc["BuildCache"] = None
        return json_response(doc)

    async def _containers(self) -> list[dict[str, Any]]:
        service = self.containers
        networking = service.networking
        out = []
        for rec in reversed(service.list()):
            size_rw = await asyncio.to_thread(service.size_rw, rec)
            out.append(
                summary_document(
                    rec,
                    size_rw=size_rw,
                    size_root=service.image_size(rec) + size_rw,
                    network_settings=(
                        networking.settings(rec, summary=True) if networking is not None else None
                    ),
                    ports=networking.port_summary(rec) if networking is not None else None,
                )
            )
        return out

    def _volumes(self) -> list[dict[str, Any]]:
        out = []
        for volume in self.volumes.list(Filters()):
            size, refs = self.volumes.usage(volume)
            doc = volume.to_api()
            doc["UsageData"] = {"Size": size, "RefCount": refs}
            out.append(doc)
        return out
