"""What attach, exec, health checks, restart policies and volumes hang on the container service.

The container service (``ctx.containers``, attached by the containers API area) knows
nothing of these features; they register listeners on it. :func:`install_hooks` does that
once per daemon (idempotent; the attach area calls it from its start-up hook, opening
the service first if the containers area has not yet):

* pre-start: clients waiting in ``POST /containers/{id}/attach`` connect to conmon's
  attach socket before the container's process runs (:class:`AttachWaiters`);
* start: the health checker of the container starts (:class:`HealthMonitors`);
* exit: the health checker stops; the restart policy decides (:class:`RestartManager`);
* remove: the container's exec instances are forgotten, its health checker stopped;
* a failed start ends the attaches waiting for it (``start`` is wrapped: the service has
  no start-failure listener);
* the volume store is connected (:func:`~declarun.daemon.containers.volumemounts.attach_volume_store`)
  before, once, the containers whose restart policy says so are started again
  (:meth:`RestartManager.restart_at_daemon_start`).

The per-daemon objects live on the context (see :func:`attach_waiters`, :func:`exec_manager`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from declarun.daemon.containers.attachment import AttachWaiters
from declarun.daemon.containers.execs import ExecManager
from declarun.daemon.containers.health import HealthMonitors
from declarun.daemon.containers.restart import RestartManager
from declarun.daemon.containers.service import ContainerService
from declarun.daemon.containers.setup import container_service as open_container_service
from declarun.daemon.containers.setup import service_of
from declarun.daemon.containers.volumemounts import attach_volume_store
from declarun.daemon.context import DaemonContext

__all__ = [
    "attach_waiters",
    "container_service",
    "exec_manager",
    "health_monitors",
    "install_hooks",
    "restart_manager",
    "shutdown_hooks",
]

log = logging.getLogger("declarun.daemon.containers.hooks")

_WAITERS = "_declarun_attach_waiters"
_EXECS = "_declarun_exec_manager"
_HEALTH = "_declarun_health_monitors"
_RESTART = "_declarun_restart_manager"
_INSTALLED = "_declarun_hooks_installed"


def container_service(ctx: DaemonContext) -> ContainerService:
    """The daemon's container service (500 if start-up did not attach one)."""
    return service_of(ctx)


def _singleton(ctx: DaemonContext, attr: str, make: Any) -> Any:
    value = getattr(ctx, attr, None)
    if value is None:
        value = make()
        setattr(ctx, attr, value)
    return value


def attach_waiters(ctx: DaemonContext) -> AttachWaiters:
    """Clients waiting to attach to a container that has not started yet."""
    waiters: AttachWaiters = _singleton(ctx, _WAITERS, AttachWaiters)
    return waiters


def exec_manager(ctx: DaemonContext) -> ExecManager:
    """The daemon's exec instances."""
    manager: ExecManager = _singleton(ctx, _EXECS, ExecManager)
    return manager


def health_monitors(ctx: DaemonContext) -> HealthMonitors:
    """The running health checkers."""
    monitors: HealthMonitors = _singleton(
        ctx, _HEALTH, lambda: HealthMonitors(container_service(ctx))
    )
    return monitors


def restart_manager(ctx: DaemonContext) -> RestartManager:
    """The restart-policy engine."""
    manager: RestartManager = _singleton(
        ctx, _RESTART, lambda: RestartManager(container_service(ctx))
    )
    return manager


async def install_hooks(ctx: DaemonContext) -> None:
    """Open the container service if needed and register every listener, once."""
    service = await open_container_service(ctx)
    if getattr(ctx, _INSTALLED, False):
        return
    setattr(ctx, _INSTALLED, True)
    waiters = attach_waiters(ctx)
    execs = exec_manager(ctx)
    health = health_monitors(ctx)
    restart = restart_manager(ctx)

    async def prestart(record: Any) -> None:
        await waiters.connect_all(record.id, record.layout.attach_socket)

    def started(record: Any) -> None:
        health.start(record)

    def exited(record: Any, status: Any) -> None:
        health.stop(record.id)
        restart.on_exit(record, status)

    def removed(record: Any, _remove_volumes: bool) -> None:
        health.stop(record.id)
        restart.cancel(record.id)
        execs.forget_container(record.id)

    _end_attaches_on_failed_start(service, waiters)
    service.add_prestart_listener(prestart)
    service.add_start_listener(started)
    service.add_exit_listener(exited)
    service.add_remove_listener(removed)
    # Volume mounts must resolve before any container is started again below.
    await attach_volume_store(ctx)
    for record in service.list():
        # Containers that survived a daemon restart keep being checked.
        if record.state.running:
            health.start(record, resume=True)
    restart.restart_at_daemon_start()


def _end_attaches_on_failed_start(service: ContainerService, waiters: AttachWaiters) -> None:
    """Make a failed start end the attaches waiting for it, as dockerd closes the streams.

    ``docker run`` attaches, then starts; when the start fails (``exec: "nope": executable
    file not found``) the CLI waits for its attach stream to end before it reports the
    error; with ``--rm`` it then waits for the container's removal. The service has no
    start-failure listener, so its ``start`` is wrapped here.
    """
    original = service.start

    async def start(ref: str) -> Any:
        try:
            return await original(ref)
        except Exception as exc:
            with contextlib.suppress(Exception):
                record = service.get(ref)
                waiters.fail_all(record.id, f"the container did not start: {exc}")
                if record.host_config.auto_remove and not record.state.running:
                    # dockerd removes an AutoRemove container whose start failed; `docker
                    # run --rm` waits for that removal before it reports the error.
                    await service.remove(record.id, force=True, volumes=True)
            raise

    service.start = start  # type: ignore[method-assign]


async def shutdown_hooks(ctx: DaemonContext) -> None:
    """Stop health checkers and pending restarts (daemon shutdown)."""
    monitors: HealthMonitors | None = getattr(ctx, _HEALTH, None)
    if monitors is not None:
        await monitors.close()
    manager: RestartManager | None = getattr(ctx, _RESTART, None)
    if manager is not None:
        await manager.close()
    await asyncio.sleep(0)
