"""The plan function: ``diff(stack, snapshot) -> Plan``, pure, and ``plan_destroy``.

No I/O happens here: everything the decision needs is in the stack model and the snapshot
(``observe`` did the reading), so a plan can be computed, shown, saved and later re-derived
to check that nothing moved. The rules, per resource:

* images: built when missing, when what they would be built from differs from what they
  were built from (``plan.builds``), or when a stack image they are built on is built
  again; pulled when absent (``pull: missing``), always (``pull: always``), never
  (``pull: never`` and absent: error);
* volumes and networks: created when missing; a network whose configuration changed is
  replaced (and so are the containers on it); a volume never is (its data would go);
* containers: created when missing; replaced when their configuration, an input file, or
  their image changed; started when a service is not running; a ``run: once`` job that
  completed with the same inputs is left alone, a failed one runs again; a container whose
  image is built again is replaced *if* the build gives a new image (``image_rebuilt``:
  apply decides once the build ran);
* objects the stack owns but no longer declares are removed (not with ``prune=False``);
  volumes only with ``volumes=True`` and never with ``keep: true``;
* a name held by an object declarun does not own is an ``error`` change: nothing is touched.

Dependencies follow the stack graph (``plan.graph``): a change depends on the changes of
everything its resource needs; removals of networks and volumes wait for the containers
using them; creations wait for the removal of orphaned containers (they may hold ports).
"""

from __future__ import annotations

import os.path
from collections.abc import Iterable, Mapping

from declarun.plan.builds import build_reasons
from declarun.plan.crashes import crash_reason
from declarun.plan.desired import (
    DesiredBuild,
    DesiredContainer,
    DesiredImage,
    DesiredState,
    desired_state,
)
from declarun.plan.destroy import plan_destroy
from declarun.plan.digraph import DiGraph
from declarun.plan.drafts import (
    Draft,
    error,
    finish,
    foreign,
    missing,
    now,
    orphan_removal,
    reason,
    short_name,
    volume_removal,
)
from declarun.plan.graph import build_graph
from declarun.plan.identity import (
    LABEL_KEEP,
    LABEL_PROFILES,
    LABEL_RESOURCE,
    config_hash,
    parse_resource,
)
from declarun.plan.lock import Lock
from declarun.plan.model import Action, ChangeKind, Plan, Reason, Wait
from declarun.plan.network_changes import network_change, network_recreated
from declarun.plan.observed import ObservedContainer, ObservedNetwork, ObservedState
from declarun.plan.reasons import config_reasons, image_reasons, input_reasons, short_digest
from declarun.plan.waits import refuse_impossible_waits
from declarun.stack.model import Stack
from declarun.stack.naming import image_for_reference

__all__ = ["desired_hash", "diff", "plan_destroy"]


# -- images ---------------------------------------------------------------------------------


def _build(image: DesiredImage, build: DesiredBuild, snapshot: ObservedState) -> Draft:
    present = snapshot.images.get(image.ref)
    draft = Draft(image.id, "noop", "image", image.name, image.ref)
    draft.observed_id = None if present is None else present.id
    if build.inputs is None:
        draft.action = "error"
        draft.reasons.append(
            reason("input_unreadable", f"cannot read the build of {image.ref}: {build.problem}")
        )
        return draft
    if present is None:
        draft.action = "build"
        draft.reasons.append(reason("missing", f"image {image.ref} is not built yet"))
        return draft
    observed = snapshot.builds.get(image.name)
    recorded = None if observed is None else observed.recorded
    changes = None if observed is None else observed.changes
    why = build_reasons(
        build.inputs,
        recorded,
        changes,
        image=image.ref,
        context=build.context,
        dockerfile=os.path.normpath(os.path.join(build.context, build.dockerfile)),
    )
    if why:
        draft.action = "build"
        draft.reasons.extend(why)
    return draft


def _rebuild_dependents(stack: Stack, desired: DesiredState, drafts: dict[str, Draft]) -> None:
    """A build whose base image (another image of the stack) is rebuilt is rebuilt after it:
    the engine's build cache makes that cheap when the base comes out the same."""
    changed = True
    while changed:  # until a fixpoint: chains of builds (base <- app <- tool) propagate
        changed = False
        for image in desired.images.values():
            draft = drafts[image.id]
            if image.build is None or draft.action != "noop":
                continue
            for base in image.build.bases:
                name = image_for_reference(stack, base)
                if name is None or name == image.name:
                    continue
                if drafts[desired.images[name].id].action == "build":
                    draft.action = "build"
                    draft.reasons.append(
                        reason(
                            "dependency_replaced",
                            f"its base image {base} is built again first",
                            field=f"build.from.{base}",
                            before=base,
                            after=base,
                        )
                    )
                    changed = True
                    break


def _image(image: DesiredImage, snapshot: ObservedState) -> Draft:
    if image.build is not None:
        return _build(image, image.build, snapshot)
    present = snapshot.images.get(image.ref)
    draft = Draft(image.id, "noop", "image", image.name, image.ref)
    draft.observed_id = None if present is None else present.id
    if image.pull == "always":
        draft.action = "pull"
        draft.reasons.append(reason("pull_policy", "pull: always"))
    elif present is None and image.pull == "never":
        draft.action = "error"
        draft.reasons.append(
            reason(
                "image_missing", f"image {image.ref} is not present and its pull policy is never"
            )
        )
    elif present is None:
        draft.action = "pull"
        pinned = f" (pinned by the lock to {image.locked_digest})" if image.locked_digest else ""
        draft.reasons.append(reason("missing", f"image {image.ref} is not present{pinned}"))
    return draft


# -- volumes and networks -------------------------------------------------------------------


def _external(kind: ChangeKind, id_: str, name: str, engine: str, observed_id: str | None) -> Draft:
    """An external volume or network: used as it is; while it is missing, nothing can start."""
    if observed_id is not None:
        return Draft(id_, "noop", kind, name, engine, observed_id=observed_id)
    message = (
        f"the external {kind} {engine} does not exist; declarun uses it but never "
        f"creates it: create it yourself (docker {kind} create {engine})"
    )
    return error(kind, id_, name, engine, reason("external_missing", message))


def _volumes(desired: DesiredState, snapshot: ObservedState) -> Iterable[Draft]:
    for volume in desired.volumes.values():
        observed = snapshot.volumes.get(volume.engine_name)
        if volume.external:
            found = None if observed is None else observed.name
            yield _external("volume", volume.id, volume.name, volume.engine_name, found)
            continue
        if observed is None:
            yield missing("volume", volume.id, volume.name, volume.engine_name, volume.config_hash)
            continue
        if not snapshot.owns(observed.labels):
            owner = observed.labels.get("dev.declarun.stack")
            yield foreign("volume", volume.id, volume.name, volume.engine_name, owner)
            continue
        reasons = config_reasons(volume.config, volume.config_hash, observed.labels)
        if reasons:
            reasons.append(
                reason(
                    "not_replaced",
                    "volumes are never recreated by apply (their data would be lost): remove "
                    f"{volume.engine_name} yourself (destroy --volumes) to apply this",
                )
            )
        yield Draft(
            volume.id,
            "noop",
            "volume",
            volume.name,
            volume.engine_name,
            reasons,
            observed_id=observed.name,
            desired_hash=volume.config_hash,
        )


def _networks(desired: DesiredState, snapshot: ObservedState) -> Iterable[Draft]:
    for network in desired.networks.values():
        observed = snapshot.networks.get(network.engine_name)
        if network.external:
            found = None if observed is None else observed.id
            yield _external("network", network.id, network.name, network.engine_name, found)
            continue
        yield network_change(network, observed, snapshot.owns)


# -- containers -----------------------------------------------------------------------------


def _state_change(
    container: DesiredContainer, observed: ObservedContainer
) -> tuple[Action, list[Reason]]:
    state, code = observed.state, observed.exit_code
    if state == "dead":
        return "recreate", [
            reason(
                "stopped", "the container is dead", field="state", before="dead", after="running"
            )
        ]
    if container.run != "once" and (state in ("restarting", "exited") or observed.restart_count):
        crashing = crash_reason(
            state=state,
            exit_code=code,
            ran_for=observed.ran_for,
            restart_count=observed.restart_count,
            restart_policy=str(container.config.get("restart") or ""),
        )
        if crashing is not None:
            return "noop", [crashing]
    if state in ("running", "restarting", "paused", "removing"):
        return "noop", []
    if container.run == "once":
        if state == "exited" and code == 0:
            return "noop", []
        if state == "exited":
            return "start", [
                reason(
                    "job_failed",
                    f"the job exited with code {code}; it runs again",
                    field="exit_code",
                    before=code,
                    after=0,
                )
            ]
        return "start", [
            reason(
                "stopped",
                "the job was created but never ran",
                field="state",
                before=state,
                after="exited",
            )
        ]
    why = f"exited with code {code}" if state == "exited" else f"is {state}"
    return "start", [
        reason("stopped", f"the container {why}", field="state", before=state, after="running")
    ]


def _containers(
    desired: DesiredState,
    snapshot: ObservedState,
    images: dict[str, Draft],
    replaced_networks: set[str],
) -> Iterable[Draft]:
    for container in desired.containers.values():
        observed = snapshot.containers.get(container.engine_name)
        draft = Draft(
            container.id,
            "create",
            "container",
            container.replica,
            container.engine_name,
            desired_hash=container.config_hash,
        )
        if observed is None:
            draft.reasons.append(
                reason("missing", f"container {container.engine_name} does not exist")
            )
            yield draft
            continue
        if not snapshot.owns(observed.labels):
            owner = observed.labels.get("dev.declarun.stack")
            yield foreign(
                "container", container.id, container.replica, container.engine_name, owner
            )
            continue
        draft.observed_id = observed.id
        image = desired.images[container.image]
        will_pull = images[image.id].action == "pull"
        reasons = config_reasons(container.config, container.config_hash, observed.labels)
        reasons += input_reasons(container.inputs, observed.labels)
        reasons += image_reasons(
            container, image, snapshot.images.get(image.ref), observed, will_pull
        )
        for network in sorted(replaced_networks & set(observed.networks)):
            reasons.append(network_recreated(network))
        if reasons:
            draft.action, draft.reasons = "recreate", reasons
        else:
            draft.action, draft.reasons = _state_change(container, observed)
        if draft.action == "noop" and images[image.id].action == "build":
            # Whether the build gives another image is known only once it ran: apply
            # replaces the container then, and only if its image id changed.
            draft.action = "recreate"
            draft.reasons = [
                reason(
                    "image_rebuilt",
                    f"image {image.ref} is built again: replaced if that gives a new image "
                    f"(it runs {short_digest(observed.image_id)})",
                    field="image",
                    before=observed.image_id,
                    after=None,
                )
            ]
        yield draft


# -- what the stack no longer declares ------------------------------------------------------


def _orphan_message(kind: str, labels: dict[str, str] | None, desired: DesiredState) -> str:
    labels = labels or {}
    profiles = labels.get(LABEL_PROFILES)
    resource = parse_resource(labels.get(LABEL_RESOURCE))
    if profiles:
        return f"its profiles ({profiles}) are not active"
    if (
        kind == "container"
        and resource is not None
        and any(c.container == resource[1] for c in desired.containers.values())
    ):
        return f"container {resource[1]} has fewer replicas now"
    return f"the {kind} is no longer in the stack"


def _orphans(
    desired: DesiredState, snapshot: ObservedState, prune: bool, volumes: bool
) -> Iterable[Draft]:
    wanted = desired.engine_names
    sources: tuple[tuple[ChangeKind, Mapping[str, ObservedContainer | ObservedNetwork]], ...] = (
        ("container", snapshot.containers),
        ("network", snapshot.networks),
    )
    for kind, observed_map in sources:
        for name, observed in observed_map.items():
            if (kind, name) in wanted or not snapshot.owns(observed.labels):
                continue
            why = _orphan_message(kind, dict(observed.labels), desired)
            draft = Draft(
                f"{kind}:{short_name(snapshot.stack, name)}",
                "remove",
                kind,
                short_name(snapshot.stack, name),
                name,
                observed_id=observed.id,
            )
            yield orphan_removal(draft, why, prune=prune)
    for name, volume in snapshot.volumes.items():
        if ("volume", name) in wanted or not snapshot.owns(volume.labels):
            continue
        why = _orphan_message("volume", dict(volume.labels), desired)
        draft = Draft(
            f"volume:{short_name(snapshot.stack, name)}",
            "remove",
            "volume",
            short_name(snapshot.stack, name),
            name,
            observed_id=name,
        )
        yield volume_removal(
            draft, why, keep=volume.labels.get(LABEL_KEEP) == "true", prune=prune, volumes=volumes
        )


# -- ordering -------------------------------------------------------------------------------


def _container_ids(drafts: dict[str, Draft], snapshot: ObservedState) -> dict[str, str]:
    """Engine container name -> the id of the change acting on it."""
    return {d.engine_name: d.id for d in drafts.values() if d.kind == "container"}


def _link(drafts: dict[str, Draft], graph: DiGraph, snapshot: ObservedState) -> None:
    for node in graph.nodes:
        if node not in drafts:
            continue
        for needed in graph.successors(node):
            if needed in drafts:
                drafts[node].depends_on.add(needed)
                condition = graph.edges[node, needed].get("condition")
                if condition is not None:
                    drafts[node].waits.append(Wait(needed, condition))
    orphan_removals = {
        d.id
        for d in drafts.values()
        if d.kind == "container" and d.action == "remove" and d.id not in graph
    }
    by_engine = _container_ids(drafts, snapshot)
    for draft in drafts.values():
        if draft.kind == "container" and draft.action in ("create", "recreate", "start"):
            draft.depends_on |= orphan_removals
        if draft.kind in ("network", "volume") and draft.action in ("remove", "recreate"):
            for container in snapshot.containers.values():
                uses = container.networks if draft.kind == "network" else container.volumes
                change = by_engine.get(container.name)
                if draft.engine_name not in uses or change is None:
                    continue
                # A network or volume cannot go while an old container still uses it.
                if drafts[change].action in ("remove", "recreate") and draft.action == "remove":
                    draft.depends_on.add(change)


def _build_digest(build: DesiredBuild | None) -> str | None:
    if build is None:
        return None
    return build.problem if build.inputs is None else build.inputs.digest()


def desired_hash(desired: DesiredState) -> str:
    """What a saved plan records of the desired state: equal when the stack, its inputs and the
    images it uses are the same, so an apply can tell that the stack moved."""
    return config_hash(
        {
            "images": {n: [i.ref, _build_digest(i.build)] for n, i in desired.images.items()},
            "volumes": {n: v.config_hash for n, v in desired.volumes.items()},
            "networks": {n: v.config_hash for n, v in desired.networks.items()},
            "containers": {
                n: [c.config_hash, [[i.path, i.digest] for i in c.inputs]]
                for n, c in desired.containers.items()
            },
        }
    )


def diff(
    stack: Stack,
    snapshot: ObservedState,
    *,
    prune: bool = True,
    volumes: bool = False,
    lock: Lock | None = None,
    desired: DesiredState | None = None,
    created_at: str | None = None,
) -> Plan:
    """The changes that make the engine, as observed in ``snapshot``, match ``stack``.

    ``prune=False`` keeps owned objects the stack no longer declares; ``volumes=True`` lets
    such volumes be removed (never ``keep: true`` ones); ``lock`` pins image references.
    ``desired`` is the desired state already worked out against ``snapshot`` (the observer's,
    see ``declarun.observe``); without it, it is computed here from ``lock``.
    Pure: reads nothing but its arguments (and the clock, when ``created_at`` is not given).
    """
    if desired is None:
        desired = desired_state(
            stack,
            inputs=snapshot.inputs,
            lock=lock,
            platform=snapshot.platform,
            bases=snapshot.base_images,
            builds=snapshot.builds,
        )
    drafts: dict[str, Draft] = {}
    for image in desired.images.values():
        drafts[image.id] = _image(image, snapshot)
    _rebuild_dependents(stack, desired, drafts)
    for draft in [*_volumes(desired, snapshot), *_networks(desired, snapshot)]:
        drafts[draft.id] = draft
    replaced = {
        d.engine_name for d in drafts.values() if d.kind == "network" and d.action == "recreate"
    }
    for draft in _containers(desired, snapshot, drafts, replaced):
        drafts[draft.id] = draft
    for draft in _orphans(desired, snapshot, prune, volumes):
        drafts.setdefault(draft.id, draft)
    _link(drafts, build_graph(stack, snapshot.base_images), snapshot)
    refuse_impossible_waits(stack, desired, snapshot, drafts)
    return Plan(
        stack=stack.name,
        changes=finish(drafts),
        fingerprint=snapshot.fingerprint(),
        created_at=created_at or now(),
        mode="apply",
        platform=snapshot.platform,
        desired_hash=desired_hash(desired),
    )
