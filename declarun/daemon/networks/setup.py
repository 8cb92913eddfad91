"""Opening networking at daemon start and hanging it on the context and container service.

:func:`attach_networking` is called by the container service's opener before the
containers are restored (a container found dead must release its network then), and
:func:`recover_networking` right after (running containers keep theirs, the rest is
cleaned). :func:`network_service` gives API handlers the service.
"""

from __future__ import annotations

import asyncio
from typing import Any

from declarun.daemon.context import DaemonContext
from declarun.daemon.networks.service import NetworkService
from declarun.daemon.networks.wiring import ContainerNetworking
from declarun.errdefs import SystemFailure

__all__ = [
    "attach_networking",
    "close_networking",
    "network_service",
    "recover_networking",
    "wiring_of",
]

_SERVICE = "_declarun_network_service"
_WIRING = "_declarun_network_wiring"
_LOCK = asyncio.Lock()


async def attach_networking(ctx: DaemonContext, containers: Any) -> ContainerNetworking:
    """Open the network service (once) and give ``containers`` its networking."""
    async with _LOCK:
        wiring: ContainerNetworking | None = getattr(ctx, _WIRING, None)
        if wiring is None:
            service = NetworkService(ctx.data_root, ctx.events)
            await service.open()
            wiring = ContainerNetworking(service, containers)
            setattr(ctx, _SERVICE, service)
            setattr(ctx, _WIRING, wiring)
        containers.networking = wiring
        containers.exits.networking = wiring
        return wiring


async def recover_networking(ctx: DaemonContext, containers: Any) -> None:
    """Keep the network of running containers, delete every other leftover."""
    wiring = wiring_of(ctx)
    await wiring.recover([rec for rec in containers.list() if rec.state.running])


def network_service(ctx: DaemonContext) -> NetworkService:
    """The daemon's network service (500 if start-up did not open it)."""
    service = getattr(ctx, _SERVICE, None)
    if not isinstance(service, NetworkService):
        raise SystemFailure("the network service is not available")
    return service


def wiring_of(ctx: DaemonContext) -> ContainerNetworking:
    """The container networking (500 if start-up did not open it)."""
    wiring = getattr(ctx, _WIRING, None)
    if not isinstance(wiring, ContainerNetworking):
        raise SystemFailure("container networking is not available")
    return wiring


async def close_networking(ctx: DaemonContext) -> None:
    """Daemon shutdown: stop DNS and proxies, delete idle bridges."""
    wiring: ContainerNetworking | None = getattr(ctx, _WIRING, None)
    if wiring is None:
        return
    await wiring.close()
    await wiring.networks.release_idle_bridges()
