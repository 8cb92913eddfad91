"""Apply and destroy: observe → plan → execute → observe again, until the machine matches.

Reconciliation is level-triggered: every round reads the whole actual state afresh and plans
from it, so a step that half-worked, or an object changed meanwhile, is simply seen and put
right in the next round. Rounds are bounded (:data:`DEFAULT_ROUNDS`); a round with a failure
ends the loop (repeating a failing step would only fail again) and the report says what is
left. A saved plan is applied exactly as saved, and only if the world it was made from is
still the world: same observed fingerprint, same desired state.

Each round observes once (``declarun.observe``), which also works out the desired state
against what it saw; the diff and the steps that carry the plan out use that same value.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from declarun.engine.port import Engine
from declarun.errors import DeclarunError
from declarun.observe.state import observe, observe_stack
from declarun.plan.builds import plan_builds
from declarun.plan.desired import DesiredState
from declarun.plan.destroy import plan_destroy
from declarun.plan.diff import desired_hash, diff
from declarun.plan.lock import Lock, LockError, lock_path, stale_reasons
from declarun.plan.model import Plan
from declarun.plan.observed import ObservedState
from declarun.plan.staleness import desired_differences, world_differences
from declarun.reconcile.builds import BuildOptions
from declarun.reconcile.executor import (
    DEFAULT_PARALLEL,
    ApplyResult,
    Cancellation,
    NullProgress,
    ProgressSink,
    Status,
    execute,
)
from declarun.reconcile.lockfile import load_stack_lock
from declarun.reconcile.settle import DEFAULT_SETTLE, Failing, check_settled
from declarun.reconcile.steps import plan_steps
from declarun.stack.model import Stack

__all__ = [
    "DEFAULT_ROUNDS",
    "ApplyOptions",
    "ApplyRefused",
    "ApplyReport",
    "PlanRun",
    "Planned",
    "Round",
    "StalePlan",
    "apply_saved_plan",
    "apply_stack",
    "build_stack",
    "destroy_stack",
    "make_plan",
]

DEFAULT_ROUNDS = 3


class ApplyRefused(DeclarunError):
    """A plan holds changes that cannot be made (a foreign object in the way, ...)."""


class StalePlan(DeclarunError):
    """A saved plan no longer fits the world or the stack."""


@dataclass(frozen=True)
class ApplyOptions:
    """How an apply behaves (the command line's flags)."""

    prune: bool = True
    volumes: bool = False
    locked: bool = False
    parallel: int = DEFAULT_PARALLEL
    max_rounds: int = DEFAULT_ROUNDS
    settle: float = DEFAULT_SETTLE  # seconds a started service must stay up (reconcile.settle)


@dataclass(frozen=True)
class Round:
    """One execution: the plan it carried out and how each change ended."""

    plan: Plan
    result: ApplyResult


@dataclass(frozen=True)
class ApplyReport:
    """Every round of an apply, and the plan still left afterwards (empty when converged)."""

    rounds: tuple[Round, ...]
    remaining: Plan
    failing: tuple[Failing, ...] = ()  # containers not running (healthy) or jobs not completed

    @property
    def converged(self) -> bool:
        """True when the last observation matched the stack."""
        return self.remaining.is_empty

    @property
    def ok(self) -> bool:
        """True when every change succeeded, the machine matches the stack, every service
        stays up (healthy) and every job completed."""
        return self.converged and all(r.result.ok for r in self.rounds) and not self.failing

    @property
    def cancelled(self) -> bool:
        """True when the apply was interrupted (no change started after the request)."""
        return any(r.result.cancelled for r in self.rounds)

    @property
    def nothing_to_do(self) -> bool:
        """True when the first observation already matched: no action was taken."""
        return not self.rounds and self.converged


#: Called with each plan before it runs; returns the progress sink (a context manager).
PlanRun = Callable[[Plan], contextlib.AbstractContextManager[ProgressSink]]


@contextlib.contextmanager
def _quiet(_: Plan) -> Any:
    yield NullProgress()


def _check_lock(lock: Lock | None, stack: Stack, observed: ObservedState, locked: bool) -> None:
    if lock is None or not locked:
        return
    reasons = stale_reasons(lock, stack, observed.platform, observed.base_images)
    if reasons:
        raise LockError(f"{lock_path(stack)} is stale (run 'declarun lock'): " + "; ".join(reasons))


@dataclass(frozen=True)
class Planned:
    """A plan with what it was made from: the observed state, the desired state worked out
    against it, and the lock used (None without one)."""

    plan: Plan
    observed: ObservedState
    desired: DesiredState
    lock: Lock | None


def make_plan(engine: Engine, stack: Stack, options: ApplyOptions = ApplyOptions()) -> Planned:
    """Observe the engine once and plan from what was seen."""
    lock = load_stack_lock(stack, locked=options.locked)
    seen = observe_stack(engine, stack, lock=lock)
    _check_lock(lock, stack, seen.observed, options.locked)
    plan = diff(
        stack, seen.observed, desired=seen.desired, prune=options.prune, volumes=options.volumes
    )
    return Planned(plan, seen.observed, seen.desired, lock)


def _refuse_errors(plan: Plan) -> None:
    if plan.errors:
        lines = [f"{c.kind} {c.name}: {r.message}" for c in plan.errors for r in c.reasons]
        raise ApplyRefused("the plan has changes that cannot be made:\n" + "\n".join(lines))


def _run(
    engine: Engine,
    plan: Plan,
    stack: Stack,
    desired: DesiredState,
    parallel: int,
    on_plan: PlanRun,
    *,
    cancel: Cancellation | None = None,
    build_options: BuildOptions | None = None,
) -> ApplyResult:
    steps = plan_steps(engine, plan, desired, stack, build_options)
    with on_plan(plan) as progress:
        return execute(steps, parallel=parallel, progress=progress, cancel=cancel)


def apply_stack(
    engine: Engine,
    stack: Stack,
    options: ApplyOptions = ApplyOptions(),
    on_plan: PlanRun = _quiet,
    cancel: Cancellation | None = None,
) -> ApplyReport:
    """Make the engine match ``stack``: plan, execute, re-observe; at most ``max_rounds``.

    Raises ApplyRefused before touching anything when the plan holds ``error`` changes, and
    LockError for a missing or stale lock under ``locked``. Once ``cancel`` is requested no
    change starts and no round follows; the report says what was reached.
    """
    rounds: list[Round] = []
    for _ in range(max(1, options.max_rounds)):
        planned = make_plan(engine, stack, options)
        if planned.plan.is_empty:
            return _settled(engine, rounds, planned, options, cancel)
        _refuse_errors(planned.plan)
        result = _run(
            engine, planned.plan, stack, planned.desired, options.parallel, on_plan, cancel=cancel
        )
        rounds.append(Round(planned.plan, result))
        if not result.ok:
            break
    return _settled(engine, rounds, make_plan(engine, stack, options), options, cancel)


def _containers_acted_on(rounds: list[Round], status: Status) -> set[str]:
    """Engine names of the containers whose create, replace or start ended with ``status``."""
    names = set()
    for round_ in rounds:
        for outcome in round_.result.by_status(status):
            change = round_.plan.change(outcome.key)
            if change.kind == "container" and change.action in ("create", "recreate", "start"):
                names.add(change.engine_name)
    return names


def _settled(
    engine: Engine,
    rounds: list[Round],
    last: Planned,
    options: ApplyOptions,
    cancel: Cancellation | None = None,
) -> ApplyReport:
    """The report, with the containers that do not stay up; those a step failed on or the
    remaining plan still acts on are told already. An interrupted apply is not checked: it
    stopped early on purpose."""
    if cancel is not None and cancel.requested:
        return ApplyReport(tuple(rounds), last.plan)
    pending = {c.engine_name for c in last.plan.actionable if c.kind == "container"}
    failing = check_settled(
        engine,
        last.desired,
        last.observed,
        touched=_containers_acted_on(rounds, "done"),
        reported=_containers_acted_on(rounds, "failed") | pending,
        settle=options.settle,
        cancel=cancel,
    )
    if cancel is not None and cancel.requested:
        return ApplyReport(tuple(rounds), last.plan)
    return ApplyReport(tuple(rounds), last.plan, failing)


def apply_saved_plan(
    engine: Engine,
    stack: Stack,
    saved: Plan,
    options: ApplyOptions = ApplyOptions(),
    on_plan: PlanRun = _quiet,
    cancel: Cancellation | None = None,
    recorded: Mapping[str, Mapping[str, str]] | None = None,
) -> ApplyReport:
    """Carry out ``saved`` exactly, refusing (StalePlan) if the world or the stack moved;
    ``recorded`` (the objects the saved plan saw) lets the refusal name what moved."""
    if saved.stack != stack.name:
        raise StalePlan(f"the plan is for stack '{saved.stack}', not '{stack.name}'")
    lock = load_stack_lock(stack, locked=options.locked)
    seen = observe_stack(engine, stack, lock=lock)
    if seen.observed.fingerprint() != saved.fingerprint:
        moved = world_differences(recorded, seen.observed) if recorded is not None else []
        raise StalePlan(
            "the actual state changed since the plan was made"
            + "".join(f"\n  - {what}" for what in moved)
            + ("\n" if moved else ": ")
            + "re-run plan"
        )
    if saved.mode == "apply":
        _check_lock(lock, stack, seen.observed, options.locked)
        if desired_hash(seen.desired) != saved.desired_hash:
            moved = desired_differences(saved, seen.desired) or [
                "an input file's content or an image's build context"
            ]
            raise StalePlan(
                "the stack changed since the plan was made"
                + "".join(f"\n  - {what}" for what in moved)
                + "\nre-run plan"
            )
    _refuse_errors(saved)
    rounds: tuple[Round, ...] = ()
    if not saved.is_empty:
        result = _run(engine, saved, stack, seen.desired, options.parallel, on_plan, cancel=cancel)
        rounds = (Round(saved, result),)
    if saved.mode == "destroy":
        after = observe(engine, stack)
        return ApplyReport(rounds, plan_destroy(stack, after, volumes=_destroys_volumes(saved)))
    return _settled(engine, list(rounds), make_plan(engine, stack, options), options, cancel)


def _destroys_volumes(plan: Plan) -> bool:
    return any(c.kind == "volume" and c.action == "remove" for c in plan.changes)


def destroy_stack(
    engine: Engine,
    stack: Stack,
    *,
    volumes: bool = False,
    parallel: int = DEFAULT_PARALLEL,
    on_plan: PlanRun = _quiet,
    cancel: Cancellation | None = None,
) -> ApplyReport:
    """Remove everything ``stack`` owns, dependents first; volumes only with ``volumes``
    (never ``keep: true`` ones)."""
    seen = observe_stack(engine, stack)
    plan = plan_destroy(stack, seen.observed, volumes=volumes)
    if plan.is_empty:
        return ApplyReport((), plan)
    result = _run(engine, plan, stack, seen.desired, parallel, on_plan, cancel=cancel)
    remaining = plan_destroy(stack, observe(engine, stack), volumes=volumes)
    return ApplyReport((Round(plan, result),), remaining)


def build_stack(
    engine: Engine,
    stack: Stack,
    names: Sequence[str] = (),
    *,
    options: ApplyOptions = ApplyOptions(),
    build_options: BuildOptions | None = None,
    on_plan: PlanRun = _quiet,
) -> ApplyReport:
    """``declarun build``: build the images ``names`` (every image the stack builds when
    empty) whatever changed, after the stack images they start ``FROM`` that are missing;
    no container is touched. Raises :class:`~declarun.plan.builds.UnknownImage` for a name
    the stack does not build, and LockError as apply does under ``locked``."""
    lock = load_stack_lock(stack, locked=options.locked)
    seen = observe_stack(engine, stack, lock=lock)
    _check_lock(lock, stack, seen.observed, options.locked)
    plan = plan_builds(stack, seen.observed, seen.desired, names)
    result = _run(
        engine, plan, stack, seen.desired, options.parallel, on_plan, build_options=build_options
    )
    left = Plan(
        stack=stack.name,
        changes=(),
        fingerprint=plan.fingerprint,
        created_at=plan.created_at,
        platform=plan.platform,
    )
    return ApplyReport((Round(plan, result),), left)
