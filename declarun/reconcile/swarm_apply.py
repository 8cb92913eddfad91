"""Apply, destroy and status on a Swarm: observe → plan → execute → observe again.

The same loop as on one engine (``reconcile.apply``) and the same values — ``Plan``,
``ApplyOptions``, ``ApplyReport`` — with the Swarm's observer, diff and steps. A saved
plan is carried out only while the Swarm's fingerprint and the desired state are the ones
it was made from.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any

from declarun.engine.swarm_port import SwarmEngine
from declarun.observe.swarm import observe_swarm
from declarun.plan.model import Plan
from declarun.plan.swarm_desired import DesiredSwarm
from declarun.plan.swarm_diff import diff_swarm, plan_destroy_swarm, swarm_desired_hash
from declarun.plan.swarm_observed import ObservedCluster
from declarun.reconcile.apply import (
    ApplyOptions,
    ApplyRefused,
    ApplyReport,
    PlanRun,
    Round,
    StalePlan,
)
from declarun.reconcile.executor import ApplyResult, Cancellation, NullProgress, execute
from declarun.reconcile.lockfile import load_stack_lock
from declarun.reconcile.swarm_steps import swarm_steps
from declarun.stack.model import Stack

__all__ = [
    "SwarmPlanned",
    "apply_saved_swarm_plan",
    "apply_swarm",
    "destroy_swarm",
    "make_swarm_plan",
    "swarm_status_rows",
]


_DEFAULTS = ApplyOptions()


@contextlib.contextmanager
def _quiet(_: Plan) -> Any:
    yield NullProgress()


@dataclass(frozen=True)
class SwarmPlanned:
    """A Swarm plan with what it was made from."""

    plan: Plan
    observed: ObservedCluster
    desired: DesiredSwarm


def make_swarm_plan(
    engine: SwarmEngine, stack: Stack, options: ApplyOptions = _DEFAULTS
) -> SwarmPlanned:
    """Observe the Swarm once and plan from what was seen."""
    lock = load_stack_lock(stack, locked=options.locked)
    seen = observe_swarm(engine, stack, lock=lock)
    plan = diff_swarm(stack, seen.observed, seen.desired, prune=options.prune)
    return SwarmPlanned(plan, seen.observed, seen.desired)


def _refuse_errors(plan: Plan) -> None:
    if plan.errors:
        lines = [f"{c.kind} {c.name}: {r.message}" for c in plan.errors for r in c.reasons]
        raise ApplyRefused("the plan has changes that cannot be made:\n" + "\n".join(lines))


def _run(
    engine: SwarmEngine,
    plan: Plan,
    desired: DesiredSwarm,
    parallel: int,
    on_plan: PlanRun,
    *,
    cancel: Cancellation | None = None,
) -> ApplyResult:
    steps = swarm_steps(engine, plan, desired)
    with on_plan(plan) as progress:
        return execute(steps, parallel=parallel, progress=progress, cancel=cancel)


def apply_swarm(
    engine: SwarmEngine,
    stack: Stack,
    options: ApplyOptions = _DEFAULTS,
    on_plan: PlanRun = _quiet,
    cancel: Cancellation | None = None,
) -> ApplyReport:
    """Make the Swarm match ``stack``: plan, execute, re-observe; at most ``max_rounds``.
    Raises ApplyRefused before touching anything when the plan holds ``error`` changes. Once
    ``cancel`` is requested no change starts and no round follows."""
    rounds: list[Round] = []
    for _ in range(max(1, options.max_rounds)):
        planned = make_swarm_plan(engine, stack, options)
        if planned.plan.is_empty:
            return ApplyReport(tuple(rounds), planned.plan)
        _refuse_errors(planned.plan)
        result = _run(
            engine, planned.plan, planned.desired, options.parallel, on_plan, cancel=cancel
        )
        rounds.append(Round(planned.plan, result))
        if not result.ok or result.cancelled:
            break
    return ApplyReport(tuple(rounds), make_swarm_plan(engine, stack, options).plan)


def apply_saved_swarm_plan(
    engine: SwarmEngine,
    stack: Stack,
    saved: Plan,
    options: ApplyOptions = _DEFAULTS,
    on_plan: PlanRun = _quiet,
    cancel: Cancellation | None = None,
) -> ApplyReport:
    """Carry out ``saved`` exactly, refusing (StalePlan) if the Swarm or the stack moved."""
    if saved.stack != stack.name:
        raise StalePlan(f"the plan is for stack '{saved.stack}', not '{stack.name}'")
    lock = load_stack_lock(stack, locked=options.locked)
    seen = observe_swarm(engine, stack, lock=lock)
    if seen.observed.fingerprint() != saved.fingerprint:
        raise StalePlan("the swarm changed since the plan was made: re-run plan")
    if saved.mode == "apply" and swarm_desired_hash(seen.desired) != saved.desired_hash:
        raise StalePlan("the stack changed since the plan was made: re-run plan")
    _refuse_errors(saved)
    rounds: tuple[Round, ...] = ()
    if not saved.is_empty:
        result = _run(engine, saved, seen.desired, options.parallel, on_plan, cancel=cancel)
        rounds = (Round(saved, result),)
    if saved.mode == "destroy":
        after = observe_swarm(engine, stack, lock=lock).observed
        remaining = plan_destroy_swarm(stack, after)
    else:
        remaining = make_swarm_plan(engine, stack, options).plan
    return ApplyReport(rounds, remaining)


def destroy_swarm(
    engine: SwarmEngine,
    stack: Stack,
    *,
    parallel: int = 4,
    on_plan: PlanRun = _quiet,
    cancel: Cancellation | None = None,
) -> ApplyReport:
    """Remove everything ``stack`` owns on the Swarm, dependents first."""
    seen = observe_swarm(engine, stack)
    plan = plan_destroy_swarm(stack, seen.observed)
    if plan.is_empty:
        return ApplyReport((), plan)
    result = _run(engine, plan, seen.desired, parallel, on_plan, cancel=cancel)
    remaining = plan_destroy_swarm(stack, observe_swarm(engine, stack).observed)
    return ApplyReport((Round(plan, result),), remaining)


def swarm_status_rows(engine: SwarmEngine, stack: Stack) -> list[dict[str, Any]]:
    """Each service, network, config and secret of ``stack``: desired next to actual, where
    the tasks run, and what a plan would do."""
    planned = make_swarm_plan(engine, stack)
    plan, observed = planned.plan, planned.observed
    rows: list[dict[str, Any]] = []
    for change in plan.changes:
        row: dict[str, Any] = {
            "kind": change.kind,
            "name": change.name,
            "engine_name": change.engine_name,
            "action": change.action,
            "reasons": [r.message for r in change.reasons],
            "desired": "absent" if change.action == "remove" else "present",
            "actual": "missing" if change.action == "create" else "present",
            "health": None,
            "ports": [],
            "nodes": [],
        }
        service = observed.services.get(change.engine_name)
        if change.kind == "service":
            wanted = planned.desired.services.get(change.name)
            replicas = wanted.replicas if wanted is not None else 0
            if wanted is not None and wanted.run == "once":
                row["desired"] = f"{replicas} completed"
            elif change.action != "remove":
                row["desired"] = f"{replicas} running"
            if service is not None:
                if service.is_job:
                    row["actual"] = f"{service.completed()} completed"
                else:
                    row["actual"] = f"{service.running()} running"
                row["ports"] = list(service.published)
                row["nodes"] = sorted(
                    {t.node for t in service.live() if t.state == "running" and t.current}
                )
                if wanted is not None and wanted.healthcheck and not service.is_job:
                    row["health"] = "healthy" if service.running() else "starting"
        rows.append(row)
    return rows
