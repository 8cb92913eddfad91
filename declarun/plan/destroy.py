"""The destroy plan: remove everything a stack owns, dependents first.

Pure, like ``diff``: it reads only the snapshot (what is owned) and the stack (dependency
order between containers, and ``keep:`` of the volumes it still declares).
"""

from __future__ import annotations

from declarun.plan.drafts import Draft, finish, now, reason, short_name, volume_removal
from declarun.plan.graph import build_graph
from declarun.plan.identity import LABEL_KEEP, LABEL_RESOURCE, parse_resource
from declarun.plan.model import Plan
from declarun.plan.observed import ObservedState
from declarun.stack.model import Stack

__all__ = ["plan_destroy"]


def plan_destroy(
    stack: Stack | None,
    snapshot: ObservedState,
    *,
    volumes: bool = False,
    created_at: str | None = None,
) -> Plan:
    """Remove everything the stack owns, dependents first; volumes only with ``volumes=True``
    and never those marked ``keep`` (in the stack, or by their label once undeclared)."""
    drafts: dict[str, Draft] = {}
    for name, container in snapshot.containers.items():
        if snapshot.owns(container.labels):
            id_ = f"container:{short_name(snapshot.stack, name)}"
            drafts[id_] = Draft(
                id_,
                "remove",
                "container",
                short_name(snapshot.stack, name),
                name,
                [reason("destroy", "destroy")],
                observed_id=container.id,
            )
    container_ids = sorted(drafts)
    for name, network in snapshot.networks.items():
        if snapshot.owns(network.labels):
            id_ = f"network:{short_name(snapshot.stack, name)}"
            drafts[id_] = Draft(
                id_,
                "remove",
                "network",
                short_name(snapshot.stack, name),
                name,
                [reason("destroy", "destroy")],
                observed_id=network.id,
                depends_on=set(container_ids),
            )
    declared_keep = {} if stack is None else {v.name: v.keep for v in stack.volumes.values()}
    for name, volume in snapshot.volumes.items():
        if not snapshot.owns(volume.labels):
            continue
        resource = parse_resource(volume.labels.get(LABEL_RESOURCE))
        keep = declared_keep.get(
            resource[1] if resource else "", volume.labels.get(LABEL_KEEP) == "true"
        )
        id_ = f"volume:{short_name(snapshot.stack, name)}"
        draft = Draft(
            id_,
            "remove",
            "volume",
            short_name(snapshot.stack, name),
            name,
            observed_id=name,
            depends_on=set(container_ids),
        )
        drafts[id_] = volume_removal(draft, "destroy", keep=keep, prune=True, volumes=volumes)
        if drafts[id_].action == "remove":
            drafts[id_].reasons = [reason("destroy", "destroy")]
    if stack is not None:
        graph = build_graph(stack, snapshot.base_images)
        for source, target, condition in graph.edges(data="condition"):
            # source needs target: remove source before target.
            if condition is not None and source in drafts and target in drafts:
                drafts[target].depends_on.add(source)
    return Plan(
        stack=snapshot.stack,
        changes=finish(drafts),
        fingerprint=snapshot.fingerprint(),
        created_at=created_at or now(),
        mode="destroy",
        platform=snapshot.platform,
    )
