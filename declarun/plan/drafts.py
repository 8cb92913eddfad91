"""Changes under construction, and what both plan functions (apply and destroy) share.

``Draft`` is a mutable change while a plan is being worked out; :func:`finish` freezes the
drafts into :class:`~declarun.plan.model.Change` values in dependency order (dependencies
first; ties by kind, then id, so plans are stable).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from declarun.plan.digraph import DiGraph, lexicographical_topological_sort
from declarun.plan.model import Action, Change, ChangeKind, Reason, Wait

__all__ = [
    "Draft",
    "error",
    "finish",
    "foreign",
    "missing",
    "now",
    "orphan_removal",
    "reason",
    "short_name",
    "volume_removal",
]

_KIND_ORDER = {
    "image": 0,
    "volume": 1,
    "config": 1,
    "secret": 1,
    "network": 2,
    "container": 3,
    "service": 3,
}


@dataclass
class Draft:
    """A change under construction (dependencies are added once every change is known)."""

    id: str
    action: Action
    kind: ChangeKind
    name: str
    engine_name: str
    reasons: list[Reason] = field(default_factory=list)
    observed_id: str | None = None
    desired_hash: str | None = None
    depends_on: set[str] = field(default_factory=set)
    waits: list[Wait] = field(default_factory=list)


def reason(kind: str, message: str, **extra: object) -> Reason:
    """A :class:`Reason` (``kind`` is checked by the plan document's reader and schema)."""
    return Reason(kind=kind, message=message, **extra)  # type: ignore[arg-type]


def short_name(stack: str, engine_name: str) -> str:
    """An engine name without the stack prefix: the name a change is known by."""
    prefix = f"{stack}-"
    return engine_name[len(prefix) :] if engine_name.startswith(prefix) else engine_name


def error(kind: ChangeKind, id_: str, name: str, engine: str, *why: Reason) -> Draft:
    """An ``error`` change: nothing can be done to the object for the reasons ``why``."""
    return Draft(id_, "error", kind, name, engine, list(why))


def foreign(kind: ChangeKind, id_: str, name: str, engine: str, owner: str | None) -> Draft:
    """An ``error`` change: the name ``engine`` is held by an object declarun does not own
    (``owner`` is the stack its label names, if any)."""
    whose = f"stack '{owner}'" if owner else "no declarun stack"
    message = (
        f"the name {engine} is taken by a {kind} that belongs to {whose}; declarun "
        "never touches objects it does not own: rename or remove it yourself"
    )
    return error(kind, id_, name, engine, reason("foreign", message))


def missing(kind: ChangeKind, id_: str, name: str, engine: str, desired_hash: str) -> Draft:
    """A ``create`` change for an object (a volume, a network) whose engine name is unused."""
    return Draft(
        id_,
        "create",
        kind,
        name,
        engine,
        [reason("missing", f"{kind} {engine} does not exist")],
        desired_hash=desired_hash,
    )


def orphan_removal(draft: Draft, why: str, *, prune: bool) -> Draft:
    """Decide the removal of an owned object the stack no longer declares (not a volume:
    see :func:`volume_removal`): removed when pruning, else kept (``--no-prune``)."""
    if prune:
        draft.reasons.append(reason("orphan", why))
    else:
        draft.action = "noop"
        draft.reasons.append(reason("kept", f"{why}; kept (--no-prune)"))
    return draft


def volume_removal(draft: Draft, why: str, *, keep: bool, prune: bool, volumes: bool) -> Draft:
    """Decide a volume removal: only with ``--volumes`` (and pruning), never ``keep``."""
    if keep:
        draft.action = "noop"
        draft.reasons.append(reason("kept", f"{why}; kept (keep: true)"))
    elif not (prune and volumes):
        draft.action = "noop"
        flag = "--volumes" if prune else "--volumes without --no-prune"
        draft.reasons.append(reason("kept", f"{why}; volumes are kept unless {flag} is given"))
    else:
        draft.reasons.append(reason("orphan", why))
    return draft


def finish(drafts: dict[str, Draft]) -> tuple[Change, ...]:
    """Freeze drafts into changes, dependencies first."""
    order = DiGraph()
    order.add_nodes_from(drafts)
    for draft in drafts.values():
        order.add_edges_from((needed, draft.id) for needed in draft.depends_on)
    ids = lexicographical_topological_sort(order, key=lambda i: (_KIND_ORDER[drafts[i].kind], i))
    return tuple(
        Change(
            id=d.id,
            action=d.action,
            kind=d.kind,
            name=d.name,
            engine_name=d.engine_name,
            depends_on=tuple(sorted(d.depends_on)),
            waits=tuple(sorted(set(d.waits), key=lambda w: w.on)),
            reasons=tuple(d.reasons),
            observed_id=d.observed_id,
            desired_hash=d.desired_hash,
        )
        for d in (drafts[i] for i in ids)
    )


def now() -> str:
    """The current time as a plan records it (UTC, seconds, ``Z``)."""
    return datetime.now(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
