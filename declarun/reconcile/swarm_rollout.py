"""Waiting for a Swarm service to reach its spec, and explaining when it does not.

A created service is ready when every replica runs the present spec (a task with a health
check is *running* only once healthy: Swarm's executor waits for the verdict), a job when
it completed its runs. An updated service is ready when Swarm's rolling update completed;
Swarm rolls it back by itself when a new task fails within the monitor period
(``failure_action: rollback``), and that is reported as the failure it is, with the failing
task's error, exit code and the tail of its log. Waits are level-triggered, reading the
service and its tasks until the condition holds or can no longer hold.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

from declarun.engine.swarm_port import SwarmEngine
from declarun.engine.swarm_types import ServiceInfo, TaskInfo
from declarun.errdefs import ErrorKind, NotFound
from declarun.reconcile.executor import StepFailed

__all__ = [
    "READY_TIMEOUT",
    "ServiceCondition",
    "failure_report",
    "wait_condition",
    "wait_ready",
    "wait_rolled_out",
]

ServiceCondition = Literal["started", "healthy", "completed"]
READY_TIMEOUT = 300.0
_POLL = 1.0
_LOG_TAIL = 20
_FAILED = ("failed", "rejected")
_ROLLED_BACK = ("rollback_started", "rollback_paused", "rollback_completed", "paused")
_GIVE_UP_AFTER = 5  # failed tasks of a new service, none running: it will not come up


def _nodes(engine: SwarmEngine) -> dict[str, str]:
    try:
        return {n.id: n.hostname for n in engine.list_nodes()}
    except ErrorKind:
        return {}


def _failed_tasks(tasks: list[TaskInfo]) -> list[TaskInfo]:
    failed = [t for t in tasks if t.state in _FAILED or (t.error and t.state == "shutdown")]
    return sorted(failed, key=lambda t: t.timestamp)


def failure_report(engine: SwarmEngine, service: str, tasks: list[TaskInfo] | None = None) -> str:
    """What a person needs when a service's tasks fail: the latest failing task's node,
    state, error and exit code, and the tail of its log."""
    try:
        found = tasks if tasks is not None else engine.list_tasks(service)
    except ErrorKind as exc:
        return f"{service}: cannot list its tasks: {exc}"
    failed = _failed_tasks(found)
    if not failed:
        return _stuck_report(service, found)
    task = failed[-1]
    node = _nodes(engine).get(task.node_id, task.node_id or "no node")
    slot = f".{task.slot}" if task.slot is not None else ""
    lines = [f"task {service}{slot} ({task.id[:12]}) on {node}: {task.state}"]
    if task.exit_code is not None:
        lines[0] += f", exit code {task.exit_code}"
    if task.error:
        lines.append(f"error: {task.error}")
    elif task.message:
        lines.append(f"message: {task.message}")
    if len(failed) > 1:
        lines.append(f"({len(failed)} failed tasks in the service's recent history)")
    try:
        logs = engine.task_logs(task.id, tail=_LOG_TAIL).decode(errors="replace").rstrip()
    except ErrorKind:
        logs = ""
    if logs:
        lines.append(f"last {_LOG_TAIL} lines of its log:")
        lines.extend(f"  | {line}" for line in logs.splitlines()[-_LOG_TAIL:])
    return "\n".join(lines)


def _stuck_report(service: str, tasks: list[TaskInfo]) -> str:
    """Tasks that are wanted running but are not, with what Swarm says of them (a task no
    node can take: ``no suitable node (max replicas per node limit exceed)``)."""
    waiting = [
        t for t in tasks if t.desired_state == "running" and t.state not in ("running", "complete")
    ]
    lines = []
    for task in sorted(waiting, key=lambda t: t.slot or 0):
        slot = f".{task.slot}" if task.slot is not None else ""
        why = task.error or task.message
        lines.append(f"task {service}{slot}: {task.state}" + (f": {why}" if why else ""))
    return "\n".join(lines)


def _look(engine: SwarmEngine, name: str) -> tuple[ServiceInfo, list[TaskInfo]]:
    try:
        return engine.inspect_service(name), engine.list_tasks(name)
    except NotFound:
        raise StepFailed(f"service {name} does not exist") from None
    except ErrorKind as exc:
        raise StepFailed(f"cannot read service {name}: {exc}") from None


def _progress(service: ServiceInfo, tasks: list[TaskInfo]) -> tuple[int, int, int]:
    """(running on the present spec, completed on it, failed on it)."""
    live = [t for t in tasks if t.current]
    running = sum(1 for t in live if t.state == "running" and t.desired_state == "running")
    completed = sum(1 for t in live if t.state == "complete")
    failed = sum(1 for t in live if t.state in _FAILED)
    return running, completed, failed


def _met(condition: ServiceCondition, service: ServiceInfo, tasks: list[TaskInfo]) -> bool:
    wanted = service.replicas or 0
    running, completed, _ = _progress(service, tasks)
    if service.is_job or condition == "completed":
        return completed >= wanted
    if condition == "started":
        return running >= min(1, wanted)
    return running >= wanted


def wait_condition(
    engine: SwarmEngine,
    name: str,
    condition: ServiceCondition,
    *,
    timeout: float = READY_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> None:
    """Block until service ``name`` meets ``condition`` (``started``: a task runs;
    ``healthy``: every replica runs, healthy where it has a check; ``completed``: a job did
    all its runs); StepFailed with the failing task's report when it cannot."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        service, tasks = _look(engine, name)
        if _met(condition, service, tasks):
            return
        running, completed, failed = _progress(service, tasks)
        wanted = service.replicas or 0
        if failed >= _GIVE_UP_AFTER and running == 0 and completed < wanted:
            raise StepFailed(
                f"the tasks of {name} keep failing ({failed} failed, none running)",
                failure_report(engine, name, tasks),
            )
        if (
            service.is_job
            and failed
            and not any(
                t.current and t.desired_state in ("running", "complete") and t.state not in _FAILED
                for t in tasks
                if t.state != "complete"
            )
        ):
            raise StepFailed(f"the job {name} failed", failure_report(engine, name, tasks))
        now = f"{completed}/{wanted} done" if service.is_job else f"{running}/{wanted} running"
        if report is not None and now != shown:
            report(f"waiting for {name} to be {condition} ({now})")
            shown = now
        if time.monotonic() > deadline:
            raise StepFailed(
                f"timed out waiting for {name} to be {condition} (still {now})",
                failure_report(engine, name, tasks),
            )
        time.sleep(_POLL)


def wait_ready(
    engine: SwarmEngine, name: str, *, report: Callable[[str], None] | None = None
) -> None:
    """A new service is ready: every replica runs (healthy), or a job completed."""
    wait_condition(engine, name, "healthy", report=report)


def wait_rolled_out(
    engine: SwarmEngine,
    name: str,
    *,
    after: int,
    timeout: float = READY_TIMEOUT,
    report: Callable[[str], None] | None = None,
) -> None:
    """Block until the update that moved ``name`` past spec version ``after`` is rolled out
    on every replica; StepFailed when Swarm paused it or rolled it back (with the report of
    the task that failed)."""
    deadline = time.monotonic() + timeout
    shown = ""
    while True:
        service, tasks = _look(engine, name)
        state = service.update_state
        if state in _ROLLED_BACK:
            # Swarm is rolling back (or has): the update failed; wait for the old tasks to
            # be back before telling, so what is reported is where it ended.
            if state == "rollback_started" and time.monotonic() < deadline:
                if report is not None:
                    report(f"{name}: the update failed; Swarm is rolling it back")
                time.sleep(_POLL)
                continue
            what = "rolled it back" if state.startswith("rollback") else "paused it"
            raise StepFailed(
                f"the update of {name} failed and Swarm {what} ({service.update_message})",
                failure_report(engine, name, tasks),
            )
        if (
            service.version > after
            and state in ("", "completed")
            and _met("healthy", service, tasks)
        ):
            return
        if service.is_job and _met("completed", service, tasks):
            return
        running, completed, _ = _progress(service, tasks)
        wanted = service.replicas or 0
        now = f"{state or 'updating'}, {running}/{wanted} on the new spec"
        if service.is_job:
            now = f"{completed}/{wanted} done"
        if report is not None and now != shown:
            report(f"rolling out {name} ({now})")
            shown = now
        if time.monotonic() > deadline:
            raise StepFailed(
                f"timed out rolling out {name} (still {now})", failure_report(engine, name, tasks)
            )
        time.sleep(_POLL)
