"""What attach, exec, health checks and restart policies hang on the container service.

The container service knows nothing of these features; they register listeners on it.
The composition root (:mod:`declarun.daemon.wiring`) builds one :class:`ContainerHooks`
and calls :meth:`ContainerHooks.install` *before* the stored containers are restored, so
that no exit the restore records (ended while the daemon was down, or while it was
restoring) misses the restart policy or the health checker; then, once every container is
restored, :meth:`ContainerHooks.resume`:

* pre-start: clients waiting in ``POST /containers/{id}/attach`` connect to conmon's
  attach socket before the container's process runs (:class:`AttachWaiters`);
* start: the health checker of the container starts (:class:`HealthMonitors`);
* start failure: the attaches waiting for that start end with its error;
* user stop or kill: a pending restart is cancelled;
* exit: the health checker stops; the restart policy decides (:class:`RestartManager`);
* remove: the container's exec instances are forgotten, its health checker stopped, its
  pending restart cancelled;
* after the restore, running containers resume their health checks and the restart
  policies are applied (:meth:`RestartManager.restart_at_daemon_start`).
"""

from __future__ import annotations

import asyncio
import logging

from declarun.daemon.containers.hooks.attach_clients import AttachWaiters
from declarun.daemon.containers.hooks.exec_instances import ExecManager
from declarun.daemon.containers.hooks.health import HealthMonitors
from declarun.daemon.containers.hooks.restart import RestartManager
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.runtime.exitwatch import ExitStatus

__all__ = ["ContainerHooks"]

log = logging.getLogger("declarun.daemon.containers.hooks")


class ContainerHooks:
    """The per-daemon state of attach, exec, health checks and restart policies."""

    def __init__(self, service: ContainerService) -> None:
        self.service = service
        #: Clients waiting to attach to a container that has not started yet.
        self.attach_waiters = AttachWaiters()
        #: The daemon's exec instances.
        self.execs = ExecManager()
        #: The running health checkers.
        self.health = HealthMonitors(service)
        #: The restart-policy engine.
        self.restart = RestartManager(service)

    def install(self) -> None:
        """Register every listener on the service (once, before its containers are restored)."""
        waiters, execs, health, restart = (
            self.attach_waiters,
            self.execs,
            self.health,
            self.restart,
        )
        # Exits recorded by the restore are only noted: the policy decides once all are known.
        restart.hold()

        async def prestart(record: ContainerRecord) -> None:
            await waiters.connect_all(record.id, record.layout.attach_socket)

        def started(record: ContainerRecord) -> None:
            health.start(record)

        def start_failed(record: ContainerRecord, error: BaseException) -> None:
            # `docker run` attaches, then starts; when the start fails (`exec: "nope":
            # executable file not found`) the CLI waits for its attach stream to end before
            # it reports the error, as dockerd closes the streams.
            waiters.fail_all(record.id, f"the container did not start: {error}")

        def stopped(record: ContainerRecord) -> None:
            restart.cancel(record.id)

        def exited(record: ContainerRecord, status: ExitStatus) -> None:
            health.stop(record.id)
            restart.on_exit(record, status)

        def removed(record: ContainerRecord, _remove_volumes: bool) -> None:
            health.stop(record.id)
            restart.cancel(record.id)
            execs.forget_container(record.id)

        service = self.service
        service.add_prestart_listener(prestart)
        service.add_start_listener(started)
        service.add_start_failure_listener(start_failed)
        service.add_stop_listener(stopped)
        service.add_exit_listener(exited)
        service.add_remove_listener(removed)

    def resume(self) -> None:
        """After the restore: resume health checks of running containers and apply the
        restart policies."""
        for record in self.service.list():
            # Containers that survived a daemon restart keep being checked.
            if record.state.running:
                self.health.start(record, resume=True)
        self.restart.restart_at_daemon_start()

    async def close(self) -> None:
        """Stop health checkers and pending restarts (daemon shutdown)."""
        await self.health.close()
        await self.restart.close()
        await asyncio.sleep(0)
