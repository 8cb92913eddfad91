"""Restart policies: ``no``, ``on-failure[:max]``, ``always``, ``unless-stopped``.

Decided after each recorded exit (the service's exit listener), as dockerd's restart
manager does:

* ``always`` and ``unless-stopped`` restart whatever the exit code; ``on-failure``
  restarts a non-zero exit while ``RestartCount`` is below ``max`` (0 = no limit);
* a container stopped by the user (``State.manually_stopped``, set by stop/kill) is never
  restarted, nor one that is being removed; a stop or kill during the back-off cancels the
  pending restart (the service's stop listener calls :meth:`RestartManager.cancel`);
* the delay starts at 100 ms and doubles with each restart up to one minute; it returns
  to 100 ms once a run lasted at least 10 s;
* during the delay ``State.Restarting`` is true; ``RestartCount`` grows by one with each
  restart. A stop, kill, start or removal meanwhile cancels the pending restart.

At daemon start the listeners are installed before the restore and the manager is *held*
(:meth:`RestartManager.hold`): exits the restore records are only noted. Then
:meth:`RestartManager.restart_at_daemon_start` decides once, with every container's state
known: containers that are not running are started again when their policy is
``always``, or ``unless-stopped`` and they were not stopped by the user -- also when they
ended while the daemon was down; an ``on-failure`` container whose exit was noted meanwhile
gets its ordinary policy decision. Nothing is started twice: a container with a pending
restart is left to it.

The back-off delay is kept in memory per container (a daemon restart resets it, as in
dockerd).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from dataclasses import dataclass
from typing import Any

from declarun.daemon.containers.hooks.container_tasks import ContainerTasks
from declarun.errdefs import NotFound
from declarun.errors import DeclarunError

__all__ = [
    "BACKOFF_START",
    "MAX_BACKOFF",
    "RESET_AFTER",
    "RestartManager",
    "next_delay",
    "should_restart",
]

log = logging.getLogger("declarun.daemon.restart")

BACKOFF_START = 0.1
MAX_BACKOFF = 60.0
RESET_AFTER = 10.0


def should_restart(policy: str, maximum: int, exit_code: int, restart_count: int,
                   manually_stopped: bool) -> bool:  # fmt: skip
    """Whether a container that just exited restarts (dockerd's ``ShouldRestart``)."""
    if manually_stopped:
        return False
    if policy in ("always", "unless-stopped"):
        return True
    if policy == "on-failure":
        return exit_code != 0 and (maximum == 0 or restart_count < maximum)
    return False


def next_delay(previous: float, ran_for: float) -> float:
    """The back-off before the next restart (0 ``previous`` means none yet)."""
    if ran_for >= RESET_AFTER:
        previous = 0.0
    delay = BACKOFF_START if previous <= 0 else previous * 2
    return min(delay, MAX_BACKOFF)


@dataclass(frozen=True)
class _LastExit:
    """The recorded exit of a container, as the exit listener receives one."""

    code: int


class RestartManager:
    """Pending restarts and back-off delays of the daemon's containers."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._delays: dict[str, float] = {}
        self._pending = ContainerTasks()
        self._held = False
        self._noted: dict[str, Any] = {}

    def hold(self) -> None:
        """Only note exits until :meth:`restart_at_daemon_start` (the daemon is restoring)."""
        self._held = True

    def on_exit(self, record: Any, status: Any) -> None:
        """The exit listener: schedule a restart when the policy asks for one."""
        if self._held:
            self._noted[record.id] = status
            return
        policy = record.host_config.restart_policy
        state = record.state
        if state.removal_in_progress or not should_restart(
            policy.name, policy.maximum_retry_count, status.code, state.restart_count,
            state.manually_stopped,
        ):  # fmt: skip
            return
        started = state.started_at / 1e9 if state.started_at else time.time()
        finished = state.finished_at / 1e9 if state.finished_at else time.time()
        delay = next_delay(self._delays.get(record.id, 0.0), finished - started)
        self._delays[record.id] = delay
        self.cancel(record.id)
        self.service.update_state(record.id, restarting=True)
        self._pending.start(
            record.id, self._restart_later(record.id, delay), name=f"restart-{record.id[:12]}"
        )

    def cancel(self, container_id: str) -> None:
        """Forget a pending restart (the container was stopped, started or removed)."""
        self._pending.cancel(container_id)

    async def close(self) -> None:
        """Cancel every pending restart (daemon shutdown)."""
        await self._pending.close()  # the tasks report their errors

    async def _restart_later(self, container_id: str, delay: float) -> None:
        try:
            await asyncio.sleep(delay)
            record = self.service.get(container_id)
            state = record.state
            # Anything that happened meanwhile (stop, kill, start, rm) cleared the flag.
            if not state.restarting or state.running or state.manually_stopped:
                if state.restarting and not state.running:
                    self.service.update_state(container_id, restarting=False)
                return
            # Still "restarting" until the start has made it "running": no observer may see
            # the container settled between the two.
            self.service.update_state(container_id, restart_count=state.restart_count + 1)
            try:
                await self.service.start(container_id)
            except DeclarunError as exc:  # a failed start ends the policy run
                log.warning("restarting container %s failed: %s", container_id[:12], exc)
                with contextlib.suppress(NotFound):  # removed by the failed start (AutoRemove)
                    self.service.update_state(container_id, restarting=False)
        except asyncio.CancelledError:
            raise
        except NotFound as exc:  # removed meanwhile
            log.debug("restart of %s abandoned: %s", container_id[:12], exc)
        except Exception:  # a daemon fault: this restart ends, the others go on
            log.exception("restart of %s failed", container_id[:12])
        finally:
            self._pending.forget_current(container_id)

    def restart_at_daemon_start(self) -> None:
        """Start the containers whose policy wants them running (see module docstring)."""
        self._held = False
        noted, self._noted = self._noted, {}
        for record in self.service.list():
            policy = record.host_config.restart_policy.name
            state = record.state
            if state.running or state.removal_in_progress or record.id in self._pending:
                continue
            wanted = policy == "always" or (
                policy == "unless-stopped" and not state.manually_stopped
            )
            was_restarting = state.restarting
            if was_restarting:  # a back-off the previous daemon did not finish
                self.service.update_state(record.id, restarting=False)
            if not wanted or state.started_at == 0:
                if record.id in noted or was_restarting:
                    self.on_exit(record, noted.get(record.id) or _LastExit(state.exit_code))
                continue
            self._pending.start(
                record.id, self._start_now(record.id), name=f"restart-{record.id[:12]}"
            )

    async def _start_now(self, container_id: str) -> None:
        try:
            await self.service.start(container_id)
            log.info("restarted container %s (restart policy)", container_id[:12])
        except DeclarunError as exc:  # reported, the daemon keeps starting
            log.warning("restarting container %s at daemon start failed: %s",
                        container_id[:12], exc)  # fmt: skip
        except Exception:  # a daemon fault: logged, the daemon keeps starting
            log.exception("restarting container %s at daemon start failed", container_id[:12])
        finally:
            self._pending.forget_current(container_id)
