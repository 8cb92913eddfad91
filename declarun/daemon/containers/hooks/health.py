"""Health checks: the daemon runs a container's ``Healthcheck`` as an exec, on an interval.

One asyncio task per running container with a health check (never a process). It follows
dockerd's rules (``daemon/health.go``):

* ``Test``: ``["CMD", args...]`` runs ``args``; ``["CMD-SHELL", cmd]`` runs
  ``/bin/sh -c cmd``; ``["NONE"]`` (or no test) disables checking.
* The first probe runs one interval after the start. Defaults: Interval 30 s, Timeout
  30 s, Retries 3, StartPeriod 0; StartInterval (5 s by default) is the interval while the
  container is still ``starting`` inside its start period.
* Exit code 0 is healthy (the failing streak resets); anything else, a timeout (exit code
  -1, ``Health check exceeded timeout (30s)``) or an exec that cannot start (-1, its
  error) is a failure. Failures inside the start period while still ``starting`` do not
  count; ``Retries`` consecutive counted failures make the container ``unhealthy``.
* ``State.Health`` holds ``Status`` (starting, healthy, unhealthy), ``FailingStreak`` and
  the last five results (``Start``, ``End``, ``ExitCode``, ``Output`` cut to 4096 bytes).
* Each change of status publishes ``health_status: <status>``.

A container's checker starts on every start (status reset to ``starting``) and stops when
the container exits or is removed; the last status stays visible in inspect. After a
daemon restart, running containers resume checking with the status they had.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from typing import Any

from declarun.daemon.containers.hooks.container_tasks import ContainerTasks
from declarun.daemon.containers.hooks.exec_instances import ExecConfig, build_process, exec_dir
from declarun.daemon.containers.lifecycle.record import format_time
from declarun.daemon.containers.runtime.exec_session import run_exec
from declarun.errdefs import NotFound
from declarun.errors import DeclarunError

__all__ = [
    "DEFAULT_INTERVAL",
    "DEFAULT_RETRIES",
    "DEFAULT_START_INTERVAL",
    "DEFAULT_TIMEOUT",
    "MAX_LOG_ENTRIES",
    "MAX_OUTPUT",
    "HealthMonitors",
    "go_duration",
    "probe_command",
]

log = logging.getLogger("declarun.daemon.health")

_S = 1_000_000_000
DEFAULT_INTERVAL = 30 * _S
DEFAULT_TIMEOUT = 30 * _S
DEFAULT_START_INTERVAL = 5 * _S
DEFAULT_RETRIES = 3
MAX_LOG_ENTRIES = 5
MAX_OUTPUT = 4096
STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"


def go_duration(ns: int) -> str:
    """A duration the way Go prints it (``30s``, ``1.5s``, ``500ms``, ``1m30s``)."""
    if ns == 0:
        return "0s"
    if ns < 1_000_000:
        return f"{ns / 1000:g}µs"
    if ns < _S:
        return f"{ns / 1_000_000:g}ms"
    seconds = ns / _S
    minutes, rest = divmod(seconds, 60)
    hours, minutes = divmod(int(minutes), 60)
    text = f"{rest:.9f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{hours}h{minutes}m{text}"
    if minutes:
        return f"{minutes}m{text}"
    return text


def probe_command(test: tuple[str, ...]) -> tuple[str, ...] | None:
    """The command a ``Test`` runs; ``None`` when checking is disabled or unset."""
    if not test or test[0] == "NONE":
        return None
    if test[0] == "CMD" and len(test) > 1:
        return test[1:]
    if test[0] == "CMD-SHELL" and len(test) > 1:
        return ("/bin/sh", "-c", " ".join(test[1:]))
    return None


def _or(value: int, default: int) -> int:
    return value if value > 0 else default


class HealthMonitors:
    """The health-check tasks of the daemon, one per running container with a check."""

    def __init__(self, service: Any) -> None:
        self.service = service
        self._tasks = ContainerTasks()

    def start(self, record: Any, *, resume: bool = False) -> None:
        """Begin checking ``record`` (status ``starting``, or as it was with ``resume``)."""
        check = record.config.healthcheck
        if check is None or probe_command(check.test) is None:
            return
        self.stop(record.id)
        health = record.state.health
        if not resume or not isinstance(health, dict):
            health = {"Status": STARTING, "FailingStreak": 0, "Log": []}
            self.service.update_state(record.id, health=health)
        self._tasks.start(record.id, self._run(record.id), name=f"health-{record.id[:12]}")

    def stop(self, container_id: str) -> None:
        """Stop checking a container (it exited or was removed)."""
        self._tasks.cancel(container_id)

    async def close(self) -> None:
        """Stop every checker (daemon shutdown)."""
        await self._tasks.close()  # _run reports its own errors

    async def _run(self, container_id: str) -> None:
        try:
            while True:
                record = self.service.get(container_id)
                if not record.state.running:
                    return
                check = record.config.healthcheck
                await asyncio.sleep(self._interval(record, check) / _S)
                record = self.service.get(container_id)
                if not record.state.running:
                    return
                if record.state.paused:
                    continue  # dockerd skips probes of a paused container
                result = await self._probe(record, check)
                record = self.service.get(container_id)
                if not record.state.running:
                    return
                self._record(record, check, result)
        except asyncio.CancelledError:
            raise
        except NotFound as exc:  # removed meanwhile
            log.debug("health checker of %s ended: %s", container_id[:12], exc)
        except Exception:  # a daemon fault: this checker ends, the others go on
            log.exception("health checker of %s failed", container_id[:12])
        finally:
            self._tasks.forget_current(container_id)

    def _interval(self, record: Any, check: Any) -> int:
        health = record.state.health or {}
        start_period = check.start_period
        in_start = (
            health.get("Status") == STARTING
            and start_period > 0
            and time.time_ns() - record.state.started_at < start_period
        )
        if in_start:
            return _or(check.start_interval, DEFAULT_START_INTERVAL)
        return _or(check.interval, DEFAULT_INTERVAL)

    async def _probe(self, record: Any, check: Any) -> dict[str, Any]:
        command = probe_command(check.test)
        assert command is not None
        timeout = _or(check.timeout, DEFAULT_TIMEOUT)
        # A probe is an exec like any other (dockerd's ID form and events), so `docker
        # events` shows each one.
        exec_id = secrets.token_hex(32)
        text = " ".join(command)
        start = time.time_ns()
        self.service.publish(record, f"exec_create: {text}", {"execID": exec_id})
        try:
            process = build_process(record, ExecConfig(cmd=command))
            self.service.publish(record, f"exec_start: {text}", {"execID": exec_id})
            result = await run_exec(record.runtime, record.id, exec_dir(record, exec_id),
                                    process, exec_id=exec_id, timeout=timeout / _S)  # fmt: skip
            code = result.exit_code
            output = result.stdout + result.stderr
        except TimeoutError:
            code, output = -1, f"Health check exceeded timeout ({go_duration(timeout)})".encode()
        except (DeclarunError, OSError) as exc:  # the exec failed, or the bundle vanished
            code, output = -1, str(exc).encode()
        self.service.publish(record, "exec_die", {"execID": exec_id, "exitCode": str(code)})
        return {
            "Start": format_time(start),
            "End": format_time(time.time_ns()),
            "ExitCode": code,
            "Output": output[:MAX_OUTPUT].decode(errors="replace"),
            "_start_ns": start,
        }

    def _record(self, record: Any, check: Any, result: dict[str, Any]) -> None:
        start_ns = result.pop("_start_ns")
        old = dict(record.state.health or {"Status": STARTING, "FailingStreak": 0, "Log": []})
        status = str(old.get("Status", STARTING))
        streak = int(old.get("FailingStreak", 0))
        if result["ExitCode"] == 0:
            status, streak = HEALTHY, 0
        else:
            counts = not (
                status == STARTING and start_ns - record.state.started_at < check.start_period
            )
            if counts:
                streak += 1
                if streak >= _or(check.retries, DEFAULT_RETRIES):
                    status = UNHEALTHY
        entries = [*list(old.get("Log") or []), result][-MAX_LOG_ENTRIES:]
        health = {"Status": status, "FailingStreak": streak, "Log": entries}
        self.service.update_state(record.id, health=health)
        if status != old.get("Status"):
            self.service.publish(record, f"health_status: {status}")
