"""Opening the container service at daemon start-up and attaching it to the context.

:func:`container_service` is idempotent and safe to await from any API area's start-up
hook (areas start in name order, so an area that sorts before ``containers`` may be the
first to ask). The first call, in this order:

1. opens the image stores if needed and creates the service with its exit watcher;
2. opens networking (a container found dead by the restore releases its network);
3. installs every listener (:func:`~declarun.daemon.containers.hooks.install_listeners`:
   attach, exec, health, restart policy, volumes) -- before anything can be recorded;
4. restores every container (:mod:`restore`), recording the exits it finds; networking
   keeps what running containers hold and cleans the rest;
5. sets ``ctx.containers`` and ``ctx.container_counts``;
6. resumes health checks and applies restart policies
   (:func:`~declarun.daemon.containers.hooks.start_after_restore`).

Each step sees the previous one complete: no exit is observed before the listeners exist,
and no restart decision is taken before every container's state is known.
"""

from __future__ import annotations

import asyncio
from typing import Any

from declarun.daemon.containers.hooks import container_service as service_of
from declarun.daemon.containers.hooks import install_listeners, start_after_restore
from declarun.daemon.containers.restore import restore
from declarun.daemon.containers.rootfs import RootfsManager
from declarun.daemon.containers.service import ContainerService
from declarun.daemon.containers.store import RecordStore
from declarun.daemon.context import DaemonContext
from declarun.daemon.images.inspect import image_config
from declarun.daemon.images.service import ImageService, attach_image_service
from declarun.daemon.metadata import Image
from declarun.daemon.networks.setup import attach_networking, recover_networking

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
        await attach_networking(ctx, service)
        install_listeners(ctx, service)
        await restore(service)
        await recover_networking(ctx, service)
        ctx.containers = service
        ctx.container_counts = service.counts
        start_after_restore(ctx, service)
        return service


def close_container_service(ctx: DaemonContext) -> None:
    """Stop watching exits at shutdown; containers keep running."""
    service = ctx.containers
    if isinstance(service, ContainerService):
        service.close()
