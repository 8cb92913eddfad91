"""What every API area shares: the daemon's configuration, event bus and stores.

One :class:`DaemonContext` is built at start-up and handed to each area's ``routes(ctx)``
(see :mod:`declarun.daemon.api.server`). Parts of the daemon that are built by other modules
(metadata database, content store, image store, snapshotter, container counts) attach
themselves here, typically from an area's ``on_startup(ctx)`` hook; until they do, the
fields hold ``None`` or a callable that reports zero.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web

from declarun.daemon.config import DaemonConfig
from declarun.daemon.events import EventBus

__all__ = ["CONTEXT_KEY", "ContainerCounts", "DaemonConfig", "DaemonContext"]


@dataclass(frozen=True)
class ContainerCounts:
    """Containers by state, as ``/info`` reports them."""

    running: int = 0
    paused: int = 0
    stopped: int = 0

    @property
    def total(self) -> int:
        """All containers, whatever their state."""
        return self.running + self.paused + self.stopped


def _no_containers() -> ContainerCounts:
    return ContainerCounts()


def _no_images() -> int:
    return 0


@dataclass
class DaemonContext:
    """The daemon's shared state. Handlers reach it through the closure of ``routes(ctx)``.

    The ``Any``-typed fields are attachment points for modules written separately; each
    should be narrowed to that module's Protocol when it lands.
    """

    config: DaemonConfig
    events: EventBus = field(default_factory=EventBus)
    # A stable identifier of this daemon (``ID`` in /info), kept in the data root.
    engine_id: str = ""
    started_at: float = field(default_factory=time.time)
    # Attachment points (None until the owning module attaches its implementation).
    metadata: Any = None  # SQLite metadata: images, tags, layers (declarun.daemon.metadata)
    content_store: Any = None  # OCI-layout blob store (declarun.daemon.images.content)
    image_store: Any = None  # image resolution and listing (declarun.daemon.images.store)
    snapshotter: Any = None  # overlayfs or copy snapshotter (declarun.daemon.snapshots)
    containers: Any = None  # ContainerService (declarun.daemon.containers.service)
    # The storage driver name /info reports; the snapshotter sets it when attached.
    storage_driver: str = "overlay2"
    # Counters /info reads on each call; they must be quick and must not block.
    container_counts: Callable[[], ContainerCounts] = _no_containers
    image_count: Callable[[], int] = _no_images

    @property
    def data_root(self) -> Path:
        """The daemon's data root (``--data-root``)."""
        return self.config.data_root


# Where the context is stored on the aiohttp application (for middlewares and helpers).
CONTEXT_KEY: web.AppKey[DaemonContext] = web.AppKey("declarun_context", DaemonContext)
