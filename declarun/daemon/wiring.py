"""The composition root of declarund: every service built once, in dependency order, and
each API area handed the services it uses.

:func:`open_services` builds, bottom up (each step uses only what the steps above built)::

    metadata (SQLite, the one authority)  ->  content store (OCI layout)
      ->  snapshotter (overlay, or copy where overlayfs does not work)
      ->  image service             (sweeps leases and garbage an earlier run left)
      ->  network service           (built-in networks, host firewall state)
      ->  volume service            (the local driver)
      ->  container service         over the images, with its networking (networks x
                                    containers), the attach/exec/health/restart hooks and
                                    volume mounts connected *before* ...
      ->  the containers are restored, the networks of running ones recovered, and health
          checks and restart policies resumed
      ->  builder service           (over the images and containers; sweeps builds a dead
                                    daemon left)

At shutdown (leaving the ``async with``) it closes in the reverse order: running builds
(cancelled, their containers removed), hooks, the
container service (containers keep running; only the watching stops), networking (DNS,
port proxies, idle bridges), and last the metadata database. :func:`api_routes` lists every
API area explicitly, with the typed services it needs; nothing is discovered.

Adding a service and its API area -- the image builder, say -- is three lines here:

1. a field of :class:`Services`:                ``builder: BuilderService``
2. its construction in :func:`open_services`:   ``builder=BuilderService(images, containers),``
   (and ``stack.push_async_callback(builder.close)`` above it if it holds resources)
3. its area in :func:`api_routes`:              ``*build.routes(services.builder),``
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass

from aiohttp import web

from declarun.daemon.api import (
    archive,
    attach,
    build,
    check,
    container_output,
    containers,
    diskusage,
    images,
    images_transfer,
    networks,
    swarm,
    system,
    volumes,
)
from declarun.daemon.api import exec as exec_area
from declarun.daemon.builder.service import BuilderService
from declarun.daemon.check import CheckContext
from declarun.daemon.config import DaemonConfig
from declarun.daemon.containers.hooks.container_hooks import ContainerHooks
from declarun.daemon.containers.lifecycle.image_source import ServiceImages
from declarun.daemon.containers.lifecycle.restore import restore
from declarun.daemon.containers.lifecycle.service import ContainerCounts, ContainerService
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.events import EventBus
from declarun.daemon.images.content import LocalStore
from declarun.daemon.images.registry import RegistryConfig
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import Metadata
from declarun.daemon.networks.service import NetworkService
from declarun.daemon.networks.wiring import ContainerNetworking
from declarun.daemon.snapshots import Snapshotter, open_data_root_snapshotter
from declarun.daemon.volumes.service import VolumeService
from declarun.daemon.volumes.store import VolumeStore

__all__ = ["Services", "api_routes", "open_services"]

log = logging.getLogger("declarun.daemon.wiring")

_DATA_ROOT_MODE = 0o711


@dataclass(frozen=True)
class Services:
    """Every service of one running daemon, built by :func:`open_services`."""

    config: DaemonConfig
    #: A stable identifier of this daemon (``ID`` in ``/info``), kept in the data root.
    engine_id: str
    events: EventBus
    metadata: Metadata
    content: LocalStore
    snapshotter: Snapshotter
    images: ImageService
    networks: NetworkService
    volumes: VolumeService
    containers: ContainerService
    #: Containers on networks (namespaces, CNI, DNS, published ports).
    networking: ContainerNetworking
    #: Attach waiters, exec instances, health checks and restart policies.
    hooks: ContainerHooks
    #: Image builds (``POST /build``) and their cache.
    builder: BuilderService

    # -- what /info counts (api.system.Inventory) --------------------------------------------

    def container_counts(self) -> ContainerCounts:
        """Containers by state."""
        return self.containers.counts()

    def image_count(self) -> int:
        """Images stored."""
        return self.images.image_count()

    @property
    def storage_driver(self) -> str:
        """The storage driver name Docker clients expect (``overlay2`` or ``vfs``)."""
        return self.images.driver_name


@contextlib.asynccontextmanager
async def open_services(
    config: DaemonConfig, engine_id: str, events: EventBus | None = None
) -> AsyncIterator[Services]:
    """Build and start every service (see the module docstring); close them on exit."""
    events = events if events is not None else EventBus()
    root = config.data_root
    async with contextlib.AsyncExitStack() as stack:
        stack.callback(events.close)  # last: ends every /events stream still open
        # The daemon's start-up makes the data root; an app served on its own (tests) may not.
        root.mkdir(parents=True, exist_ok=True, mode=_DATA_ROOT_MODE)
        metadata = await asyncio.to_thread(Metadata, root / "metadata.db")
        stack.callback(metadata.close)
        content = await asyncio.to_thread(LocalStore, root / "content")
        snapshotter = await asyncio.to_thread(open_data_root_snapshotter, root)
        image_service = ImageService(
            metadata,
            content,
            snapshotter,
            events,
            registry_config=RegistryConfig(
                insecure_registries=config.insecure_registries,
                mirrors=config.registry_mirrors,
                read_timeout=_registry_read_timeout(),
            ),
            max_concurrent_downloads=config.max_concurrent_downloads,
            scratch_dir=root,
        )
        await asyncio.to_thread(image_service.start)

        network_service = NetworkService(root, events, metadata, config.address_pools)
        await network_service.open()
        stack.push_async_callback(network_service.release_idle_bridges)
        volume_service = VolumeService(
            await asyncio.to_thread(VolumeStore, metadata, root / "volumes"), events
        )

        record_store = RecordStore(metadata, root)
        container_service = ContainerService(
            record_store,
            RootfsManager(snapshotter),
            events,
            record_store.exit_dir,
            images=ServiceImages(image_service),
            default_runtime=config.runtime,
        )
        container_service.watcher.start()
        networking = ContainerNetworking(network_service, container_service)
        container_service.use_networking(networking)
        stack.push_async_callback(networking.close)
        stack.callback(container_service.close)
        # Everything that listens to the containers is connected before the restore records
        # the exits it finds: no exit may miss a restart policy or a volume clean-up.
        hooks = ContainerHooks(container_service)
        hooks.install()
        stack.push_async_callback(hooks.close)
        container_service.register_mount_resolver(volume_service.resolve_mount)
        container_service.add_remove_listener(volume_service.container_removed)

        await restore(container_service)
        await networking.recover([r for r in container_service.list() if r.state.running])
        hooks.resume()
        builder = BuilderService(image_service, container_service, root / "builder")
        await asyncio.to_thread(builder.open)
        stack.push_async_callback(builder.close)  # running builds end before the containers

        yield Services(
            config=config,
            engine_id=engine_id,
            events=events,
            metadata=metadata,
            content=content,
            snapshotter=snapshotter,
            images=image_service,
            networks=network_service,
            volumes=volume_service,
            containers=container_service,
            networking=networking,
            hooks=hooks,
            builder=builder,
        )


def api_routes(services: Services) -> list[web.RouteDef]:
    """Every API area's routes, each area given the services it uses.

    Registration order matters where a ``{name:.+}`` path could swallow a fixed one; the
    areas keep the order they always had (by module name), and each area lists its fixed
    paths first.
    """
    s = services
    return [
        *archive.routes(s.containers, s.images),
        *attach.routes(s.containers, s.hooks.attach_waiters),
        *build.routes(s.builder),
        *check.routes(
            CheckContext.of_daemon(s.config.data_root, s.images, s.containers, s.networking)
        ),
        *container_output.routes(s.containers),
        *containers.routes(s.containers, s.images.driver_name),
        *diskusage.routes(s.images, s.containers, s.volumes, s.builder),
        *exec_area.routes(s.containers, s.hooks.execs),
        *images.routes(s.images),
        *images_transfer.routes(s.images),
        *networks.routes(s.networks, s.networking, s.containers),
        *swarm.routes(),
        *system.routes(s.config, s.engine_id, s.events, s),
        *volumes.routes(s.volumes),
    ]


def _registry_read_timeout() -> float:
    """Seconds a registry may stay silent mid-response (``DECLARUND_REGISTRY_READ_TIMEOUT``,
    for the fault tests' stalls and for slow links; 120 by default)."""
    raw = os.environ.get("DECLARUND_REGISTRY_READ_TIMEOUT", "")
    try:
        value = float(raw) if raw else 120.0
    except ValueError:
        log.warning("DECLARUND_REGISTRY_READ_TIMEOUT=%r is not a number: 120 s", raw)
        return 120.0
    return value if value > 0 else 120.0
