"""What attach, exec, health checks, restart policies and volumes hang on the container service.

The container service (``ctx.containers``) knows nothing of these features; they register
listeners on it. Opening the service (:func:`~declarun.daemon.containers.setup.container_service`)
calls :func:`install_listeners` *before* it restores the stored containers, so that no exit
the restore records (ended while the daemon was down, or while it was restoring) misses
the restart policy, the health checker or the volume store; then, once every container
is restored, :func:`start_after_restore`:

* pre-start: clients waiting in ``POST /containers/{id}/attach`` connect to conmon's
  attach socket before the container's process runs (:class:`AttachWaiters`);
* start: the health checker of the container starts (:class:`HealthMonitors`);
* start failure: the attaches waiting for that start end with its error;
* user stop or kill: a pending restart is cancelled;
* exit: the health checker stops; the restart policy decides (:class:`RestartManager`);
* remove: the container's exec instances are forgotten, its health checker stopped, its
  pending restart cancelled;
* the volume store is connected (:func:`~declarun.daemon.containers.volumemounts.connect_volume_store`);
* after the restore, running containers resume their health checks and the restart
  policies are applied (:meth:`RestartManager.restart_at_daemon_start`).

The per-daemon objects live on the context (see :func:`attach_waiters`, :func:`exec_manager`).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from declarun.daemon.containers.attachment import AttachWaiters
from declarun.daemon.containers.execs import ExecManager
from declarun.daemon.containers.health import HealthMonitors
from declarun.daemon.containers.restart import RestartManager
from declarun.daemon.containers.service import ContainerService
from declarun.daemon.containers.volumemounts import connect_volume_store
from declarun.daemon.context import DaemonContext
from declarun.errdefs import SystemFailure

__all__ = [
    "attach_waiters",
    "container_service",
    "exec_manager",
    "health_monitors",
    "install_listeners",
    "restart_manager",
    "shutdown_hooks",
    "start_after_restore",
]

log = logging.getLogger("declarun.daemon.containers.hooks")

_WAITERS = "_declarun_attach_waiters"
_EXECS = "_declarun_exec_manager"
_HEALTH = "_declarun_health_monitors"
_RESTART = "_declarun_restart_manager"
_INSTALLED = "_declarun_hooks_installed"


def container_service(ctx: DaemonContext) -> ContainerService:
    """The daemon's container service (500 if start-up did not attach one)."""
    service = ctx.containers
    if not isinstance(service, ContainerService):
        raise SystemFailure("the container service is not available")
    return service


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


def install_listeners(ctx: DaemonContext, service: ContainerService) -> None:
    """Register every listener on ``service`` (once, before its containers are restored)."""
    if getattr(ctx, _INSTALLED, False):
        return
    setattr(ctx, _INSTALLED, True)
    waiters = attach_waiters(ctx)
    execs = exec_manager(ctx)
    health: HealthMonitors = _singleton(ctx, _HEALTH, lambda: HealthMonitors(service))
    restart: RestartManager = _singleton(ctx, _RESTART, lambda: RestartManager(service))
    # Exits recorded by the restore are only noted: the policy decides once all are known.
    restart.hold()

    async def prestart(record: Any) -> None:
        await waiters.connect_all(record.id, record.layout.attach_socket)

    def started(record: Any) -> None:
        health.start(record)

    def start_failed(record: Any, error: BaseException) -> None:
        # `docker run` attaches, then starts; when the start fails (`exec: "nope":
        # executable file not found`) the CLI waits for its attach stream to end before it
        # reports the error, as dockerd closes the streams.
        waiters.fail_all(record.id, f"the container did not start: {error}")

    def stopped(record: Any) -> None:
        restart.cancel(record.id)

    def exited(record: Any, status: Any) -> None:
        health.stop(record.id)
        restart.on_exit(record, status)

    def removed(record: Any, _remove_volumes: bool) -> None:
        health.stop(record.id)
        restart.cancel(record.id)
        execs.forget_container(record.id)

    service.add_prestart_listener(prestart)
    service.add_start_listener(started)
    service.add_start_failure_listener(start_failed)
    service.add_stop_listener(stopped)
    service.add_exit_listener(exited)
    service.add_remove_listener(removed)
    connect_volume_store(ctx, service)


def start_after_restore(ctx: DaemonContext, service: ContainerService) -> None:
    """Resume health checks of running containers and apply the restart policies."""
    health = health_monitors(ctx)
    for record in service.list():
        # Containers that survived a daemon restart keep being checked.
        if record.state.running:
            health.start(record, resume=True)
    restart_manager(ctx).restart_at_daemon_start()


async def shutdown_hooks(ctx: DaemonContext) -> None:
    """Stop health checkers and pending restarts (daemon shutdown)."""
    monitors: HealthMonitors | None = getattr(ctx, _HEALTH, None)
    if monitors is not None:
        await monitors.close()
    manager: RestartManager | None = getattr(ctx, _RESTART, None)
    if manager is not None:
        await manager.close()
    await asyncio.sleep(0)
