"""``status``: each resource of a stack, what it should be next to what it is.

One row per declared volume, network and container replica, plus what the stack owns but no
longer declares; each row carries the action a plan would take on it (``noop`` when right)
and, for a container, the ``problem`` a plan cannot fix by itself (crash-looping, dying at
start, unhealthy, a failed job), or None. Rows are plain data so the CLI can print a table
or JSON.
"""

from __future__ import annotations

from typing import Any

from declarun.engine.port import Engine
from declarun.plan.model import Change
from declarun.plan.observed import ObservedContainer
from declarun.reconcile.apply import ApplyOptions, make_plan
from declarun.stack.model import Stack

__all__ = ["status_rows"]


def _container_actual(observed: ObservedContainer | None) -> str:
    if observed is None:
        return "missing"
    if observed.state in ("exited", "dead", "restarting") and observed.exit_code is not None:
        return f"{observed.state} ({observed.exit_code})"
    return observed.state


def _problem(change: Change | None, observed: ObservedContainer | None) -> str | None:
    """What is wrong with a container that a plan cannot fix by itself, in a few words."""
    if observed is None:
        return None
    if change is not None and any(r.kind == "crashing" for r in change.reasons):
        restarts = observed.restart_count
        counted = f", {restarts} restart{'s' if restarts != 1 else ''}" if restarts else ""
        if observed.state != "exited":
            last = f"exit {observed.exit_code}" if observed.exit_code is not None else "restarted"
            return f"crash-looping ({last}{counted})"
        return f"dies at start (exit {observed.exit_code}{counted})"
    if change is not None and any(r.kind == "job_failed" for r in change.reasons):
        return f"job failed (exit {observed.exit_code})"
    if observed.health == "unhealthy":
        return "unhealthy"
    return None


def _row(change: Change | None, kind: str, name: str, engine_name: str, **extra: Any) -> Any:
    return {
        "kind": kind,
        "name": name,
        "engine_name": engine_name,
        "action": "noop" if change is None else change.action,
        "reasons": [] if change is None else [r.message for r in change.reasons],
        **extra,
    }


def status_rows(engine: Engine, stack: Stack) -> list[dict[str, Any]]:
    """Observe the engine and describe every resource of ``stack`` (see the module docstring)."""
    planned = make_plan(engine, stack, ApplyOptions(prune=True))
    plan, snapshot, desired = planned.plan, planned.observed, planned.desired
    changes = {c.id: c for c in plan.changes}
    rows: list[dict[str, Any]] = []
    described: set[str] = set()
    for volume in desired.volumes.values():
        present = volume.engine_name in snapshot.volumes
        rows.append(
            _row(
                changes.get(volume.id),
                "volume",
                volume.name,
                volume.engine_name,
                desired="present",
                actual="present" if present else "missing",
                health=None,
                ports=[],
                problem=None,
            )
        )
        described.add(volume.id)
    for network in desired.networks.values():
        present = network.engine_name in snapshot.networks
        rows.append(
            _row(
                changes.get(network.id),
                "network",
                network.name,
                network.engine_name,
                desired="present",
                actual="present" if present else "missing",
                health=None,
                ports=[],
                problem=None,
            )
        )
        described.add(network.id)
    for container in desired.containers.values():
        observed = snapshot.containers.get(container.engine_name)
        rows.append(
            _row(
                changes.get(container.id),
                "container",
                container.replica,
                container.engine_name,
                desired="completed" if container.run == "once" else "running",
                actual=_container_actual(observed),
                health=None if observed is None else observed.health,
                ports=[] if observed is None else list(observed.ports),
                problem=_problem(changes.get(container.id), observed),
            )
        )
        described.add(container.id)
    for change in plan.changes:
        if change.id in described or change.kind == "image":
            continue
        observed = snapshot.containers.get(change.engine_name)
        rows.append(
            _row(
                change,
                change.kind,
                change.name,
                change.engine_name,
                desired="absent",
                actual=_container_actual(observed) if change.kind == "container" else "present",
                health=None if observed is None else observed.health,
                ports=[] if observed is None else list(observed.ports),
                problem=None,
            )
        )
    return rows
