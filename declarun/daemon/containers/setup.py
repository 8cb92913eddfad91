"""Opening the container service at daemon start-up and attaching it to the context.

:func:`container_service` is idempotent and safe to await from any API area's start-up
hook (areas start in name order, so an area that sorts before ``containers`` may be the
first to ask): the first call opens the image stores if needed, restores every container
(:mod:`restore`) and sets ``ctx.containers`` and ``ctx.container_counts``.
"""

from __future__ import annotations

import asyncio
from typing import Any

from declarun.daemon.api.errors import InternalError
from declarun.daemon.containers.restore import restore
from declarun.daemon.containers.rootfs import RootfsManager
from declarun.daemon.containers.service import ContainerService
from declarun.daemon.containers.store import RecordStore
from declarun.daemon.context import DaemonContext
from declarun.daemon.images.inspect import image_config
from declarun.daemon.images.service import ImageService, attach_image_service
from declarun.daemon.metadata import Image

__all__ = ["ServiceImages", "close_container_service", "container_service", "service_of"]

_LOCK = asyncio.Lock()


class ServiceImages:
    """The image service as container creation sees it (:class:`ImageSource`)."""

    def __init__(self, images: ImageService) -> None:
        self.images = images

    def resolve(self, name: str) -> Image:
        """The image ``name`` refers to (NotFound ``No such image: name``)."""
        return self.images.resolve(name)

    def config_document(self, image: Image) -> dict[str, Any]:
        """The image's config JSON."""
        return image_config(self.images, image)

    def ensure_snapshot(self, image: Image) -> None:
        """Apply missing layers (an image loaded but never unpacked)."""
        layers = image.record.layers
        if layers and not self.images.snapshotter.exists(layers[-1].chain_id):
            self.images.ensure_unpacked(image.record)


async def container_service(ctx: DaemonContext) -> ContainerService:
    """The daemon's container service, opened and restored on first call."""
    async with _LOCK:
        existing = ctx.containers
        if isinstance(existing, ContainerService):
            return existing
        images = await asyncio.to_thread(attach_image_service, ctx)
        store = RecordStore(images.metadata, ctx.data_root)
        service = ContainerService(store, RootfsManager(images.snapshotter), ctx.events,
                                   store.exit_dir)  # fmt: skip
        service.watcher.start()
        await restore(service)
        ctx.containers = service
        ctx.container_counts = service.counts
        return service


def close_container_service(ctx: DaemonContext) -> None:
    """Stop watching exits at shutdown; containers keep running."""
    service = ctx.containers
    if isinstance(service, ContainerService):
        service.close()


def service_of(ctx: DaemonContext) -> ContainerService:
    """The attached container service (500 if start-up did not attach one)."""
    service = ctx.containers
    if not isinstance(service, ContainerService):
        raise InternalError("the container service is not available")
    return service
