"""Waiting for a container to reach a ``depends_on`` condition, and explaining when it does not.

The conditions are Compose's: ``started`` (running, or already finished with exit code 0),
``healthy`` (its health check says healthy), ``completed`` (exited with code 0). Each wait is
level-triggered — it reads the container's state with ``inspect`` until the condition holds
or can no longer hold — so it needs no event stream and cannot miss a transition. It fails
fast: an ``unhealthy`` verdict or a non-zero exit ends the wait at once, with a report.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from declarun.engine.port import Engine
from declarun.engine.types import ContainerDetails, engine_time
from declarun.errdefs import ErrorKind, NotFound
from declarun.plan.crashes import describe_exit
from declarun.reconcile.executor import StepFailed

__all__ = [
    "COMPLETED_TIMEOUT",
    "STARTED_TIMEOUT",
    "Condition",
    "describe_state",
    "failure_report",
    "health_timeout",
    "wait_for",
]

Condition = Literal["started", "healthy", "completed"]
STARTED_TIMEOUT = 60.0
COMPLETED_TIMEOUT = 600.0
_POLL = 0.2
_LOG_TAIL = 20
_NS = 1_000_000_000


def health_timeout(details: ContainerDetails) -> float:
    """How long a health check may take to decide: its start period plus every retry, + slack."""
    check = details.healthcheck
    interval = ((check and check.interval) or 30 * _NS) / _NS
    timeout = ((check and check.timeout) or 30 * _NS) / _NS
    retries = (check and check.retries) or 3
    start = ((check and check.start_period) or 0) / _NS
    return max(30.0, start + (interval + timeout) * (retries + 1) + 10.0)


def _health_output(details: ContainerDetails) -> str:
    entries = details.state.health_log
    if not entries:
        return ""
    last = entries[-1]
    output = last.output.strip()
    return f"last health check (exit {last.exit_code}): {output or '(no output)'}"


def describe_state(details: ContainerDetails) -> str:
    """The state in words: ``running (healthy)``, ``exited with code 1 0.2 s after it
    started``, ``restarting: exited with code 1 0.2 s after it started, 3 restarts``."""
    state = details.state
    started, finished = engine_time(state.started_at), engine_time(state.finished_at)
    ran_for = None
    if started is not None and finished is not None and state.status != "running":
        ran_for = max(0.0, finished - started)  # it may exit before its start is noted
    restarts = details.restart_count
    counted = f", {restarts} restart{'s' if restarts != 1 else ''}" if restarts else ""
    if state.restarting:
        return f"restarting: {describe_exit(state.exit_code, ran_for)}{counted}"
    if state.running:
        health = f" ({state.health})" if state.health else ""
        return f"{state.status or 'running'}{health}{counted}"
    if state.status == "exited":
        return f"{describe_exit(state.exit_code, ran_for)}{counted}"
    if state.status == "dead":
        return f"dead: {describe_exit(state.exit_code, ran_for)}{counted}"
    return state.status or "?"


def failure_report(engine: Engine, name: str, details: ContainerDetails | None = None) -> str:
    """What a person needs to see when a container fails: state, exit code, health, logs."""
    try:
        data = details if details is not None else engine.inspect_container(name)
    except ErrorKind as exc:
        return f"{name}: cannot inspect: {exc}"
    state = data.state
    lines = [f"{name}: {describe_state(data)}"]
    if state.error:
        lines.append(f"error: {state.error}")
    if state.oom_killed:
        lines.append("killed: out of memory")
    health = _health_output(data)
    if health:
        lines.append(health)
    try:
        logs = engine.container_logs(name, tail=_LOG_TAIL).decode(errors="replace").rstrip()
    except ErrorKind:
        logs = ""
    if logs:
        lines.append(f"last {_LOG_TAIL} lines of its log:")
        lines.extend(f"  | {line}" for line in logs.splitlines()[-_LOG_TAIL:])
    return "\n".join(lines)


def _check(
    condition: Condition, name: str, details: ContainerDetails
) -> tuple[bool, str | None, str]:
    """(met, failure or None, what it is doing now) for one look at the container."""
    state = details.state
    status = state.status
    exit_code = state.exit_code
    finished = status in ("exited", "dead") and not state.restarting
    if condition == "completed":
        if finished:
            if exit_code == 0:
                return True, None, "completed"
            return False, f"{name} exited with code {exit_code}", status
        if status == "created":
            return False, f"{name} was never started", status
        return False, None, status
    if condition == "started":
        if state.running:
            return True, None, "running"
        if finished and exit_code == 0:
            return True, None, "completed"
        if finished or status == "created":
            return False, f"{name} is not running: {describe_state(details)}", status
        return False, None, status
    verdict = state.health
    if verdict is None:
        return False, f"{name} has no health check, so it can never be healthy", status
    if verdict == "healthy" and state.running:
        return True, None, "healthy"
    if verdict == "unhealthy":
        return False, f"{name} is unhealthy", "unhealthy"
    if finished or status == "created":
        return False, f"{name} is not running: {describe_state(details)}", status
    return False, None, verdict or status


def wait_for(
    engine: Engine,
    name: str,
    condition: Condition,
    *,
    timeout: float | None = None,
    report: Callable[[str], None] | None = None,
) -> None:
    """Block until container ``name`` meets ``condition``; StepFailed (with a report) if not.

    ``timeout`` defaults by condition: 60 s to start, the health check's own schedule to turn
    healthy, 10 minutes to complete.
    """
    deadline: float | None = None
    last_status = ""
    while True:
        try:
            data = engine.inspect_container(name)
        except NotFound:
            raise StepFailed(f"{name} does not exist, so it cannot be {condition}") from None
        if deadline is None:
            limit = timeout
            if limit is None:
                limit = {"started": STARTED_TIMEOUT, "completed": COMPLETED_TIMEOUT}.get(
                    condition, health_timeout(data)
                )
            deadline = time.monotonic() + limit
        met, failure, now = _check(condition, name, data)
        if met:
            return
        if failure is not None:
            raise StepFailed(failure, failure_report(engine, name, data))
        if report is not None and now != last_status:
            report(f"waiting for {name} to be {condition} ({now})")
            last_status = now
        if time.monotonic() > deadline:
            raise StepFailed(
                f"timed out waiting for {name} to be {condition} (still {now})",
                failure_report(engine, name, data),
            )
        time.sleep(_POLL)
