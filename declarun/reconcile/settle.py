"""The last word of an apply: is every container that should run running, and did every job
complete?

A container that starts and dies a moment later passes every wait of the apply (it *was*
running); a crash loop under a restart policy is ``running`` half the time. So once the
engine matches the stack, each service must still be running — not restarting, not
restarted meanwhile, and healthy where it has a health check — after a settle period since
its start (:data:`DEFAULT_SETTLE` seconds), and each ``run: once`` job must have exited 0.
Containers that this apply did not touch and that the final observation shows fine are not
looked at again, so a no-op apply costs nothing more.

Each container that fails comes back as a :class:`Failing` with the failure report (state,
exit code, last health output, log tail).
"""

from __future__ import annotations

import time
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from declarun.engine.port import Engine
from declarun.engine.types import ContainerDetails, engine_time
from declarun.errdefs import ErrorKind, NotFound
from declarun.plan.desired import DesiredContainer, DesiredState
from declarun.plan.observed import ObservedContainer, ObservedState
from declarun.reconcile.conditions import describe_state, failure_report, wait_for
from declarun.reconcile.executor import Cancellation, StepFailed
from declarun.reconcile.replace import has_healthcheck

__all__ = ["DEFAULT_SETTLE", "Failing", "check_settled"]

#: Seconds a service must have stayed up since its start before the apply trusts it.
DEFAULT_SETTLE = 3.0


@dataclass(frozen=True, slots=True)
class Failing:
    """A container that is not as the stack wants it after the apply."""

    name: str  # the stack's (replica) name
    engine_name: str
    message: str  # one line: "web exited with code 1 0.2 s after it started"
    report: str  # the failure report: state, exit code, last health output, log tail


def _looks_fine(container: DesiredContainer, observed: ObservedContainer | None) -> bool:
    if observed is None:
        return False
    if container.run == "once":
        return observed.state == "exited" and observed.exit_code == 0
    return observed.state == "running" and observed.health in (None, "healthy")


def _inspect(engine: Engine, name: str) -> ContainerDetails | None:
    try:
        return engine.inspect_container(name)
    except NotFound:
        return None


def _settle_deadline(details: Iterable[ContainerDetails], settle: float) -> float:
    """The wall-clock time by which every running one has been up for ``settle`` seconds."""
    latest = 0.0
    for found in details:
        started = engine_time(found.state.started_at)
        if found.state.running and started is not None:
            latest = max(latest, min(started, time.time()) + settle)
    return latest


def _verdict(
    engine: Engine, container: DesiredContainer, before: ContainerDetails, now: ContainerDetails
) -> str | None:
    """Why ``container`` is not as wanted (None when it is); may wait for a pending health
    check or a running job."""
    name, state = container.engine_name, now.state
    if container.run == "once":
        if state.status == "exited" and state.exit_code == 0 and not state.restarting:
            return None
        if state.running:
            try:
                wait_for(engine, name, "completed")
            except StepFailed as exc:
                return str(exc)
            return None
        return f"the job {container.replica} did not complete: {describe_state(now)}"
    if not state.running or state.restarting:
        return f"{container.replica} is not running: {describe_state(now)}"
    if now.restart_count > before.restart_count or now.state.started_at != before.state.started_at:
        return f"{container.replica} keeps dying: the engine restarted it ({describe_state(now)})"
    if has_healthcheck(now):
        if state.health == "unhealthy":
            return f"{container.replica} is unhealthy"
        if state.health != "healthy":
            try:
                wait_for(engine, name, "healthy")
            except StepFailed as exc:
                return str(exc)
    return None


def check_settled(
    engine: Engine,
    desired: DesiredState,
    observed: ObservedState,
    *,
    touched: Collection[str] = (),
    reported: Collection[str] = (),
    settle: float = DEFAULT_SETTLE,
    cancel: Cancellation | None = None,
) -> tuple[Failing, ...]:
    """Every desired container that is not running (healthy), or not completed, after the
    settle period; ``touched`` are the engine names of the containers this apply created,
    replaced or started (always looked at again), ``reported`` those whose step failed
    (their failure is told already). Containers absent from ``observed`` are left to the
    plan (it creates them). Once ``cancel`` is requested nothing more is waited for or
    judged."""
    suspects = [
        c
        for c in desired.containers.values()
        if c.engine_name in observed.containers
        and c.engine_name not in reported
        and (c.engine_name in touched or not _looks_fine(c, observed.containers[c.engine_name]))
    ]
    try:
        first = {c.engine_name: _inspect(engine, c.engine_name) for c in suspects}
        services = [d for c in suspects if c.run != "once" and (d := first[c.engine_name])]
        pause = _settle_deadline(services, settle) - time.time()
        if pause > 0:
            if cancel is None:
                time.sleep(min(pause, settle))
            elif cancel.wait(min(pause, settle)):
                return ()
        failing: list[Failing] = []
        for container in suspects:
            if cancel is not None and cancel.requested:
                return ()
            before = first[container.engine_name]
            now = _inspect(engine, container.engine_name)
            if before is None or now is None:
                continue  # removed meanwhile: the plan says what is missing
            why = _verdict(engine, container, before, now)
            if why is not None:
                report = failure_report(engine, container.engine_name)
                failing.append(Failing(container.replica, container.engine_name, why, report))
    except ErrorKind as exc:
        return (
            Failing(
                "?", "?", f"cannot check the containers' state: {exc}", "the engine did not answer"
            ),
        )
    return tuple(failing)
