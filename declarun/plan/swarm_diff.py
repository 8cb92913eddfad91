"""The plan on a Swarm: ``diff_swarm(stack, observed, desired) -> Plan``, pure, and
``plan_destroy_swarm``.

The same :class:`~declarun.plan.model.Plan` value as on one engine, with the Swarm's kinds
(``service``, ``network``, ``config``, ``secret``). The rules:

* services: created when missing; **updated** in place when their recorded configuration, an
  input file or the image reference differs (Swarm rolls the tasks, health-gated, and rolls
  back a failing update) — replaced (``recreate``) only when Swarm cannot update it: a
  service turned into a job or back, or a network it is on replaced; ``start`` (a forced
  update) for a service none of whose tasks are wanted running any more (``restart: no``
  services that exited) and for a job that failed; a ``noop`` whose tasks are not all
  running says so (``converging``: Swarm is rescheduling them);
* overlay networks: created when missing, replaced when their configuration changed;
* configs and secrets: content-addressed, so only ever created, or removed once no service
  of the stack names them;
* what the stack owns but no longer declares is removed (``prune``), foreign names are
  ``error`` changes, and a service that cannot be made (a built image, an unreadable file)
  is an ``error`` change too.

Dependencies: a service's change follows the changes of its networks, configs, secrets and
the services it ``depends_on`` (whose conditions become ``waits``), and the removal of
orphaned services; removals of networks, configs and secrets follow every service change.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping

from declarun.plan.drafts import (
    Draft,
    error,
    finish,
    foreign,
    now,
    orphan_removal,
    reason,
    short_name,
)
from declarun.plan.identity import LABEL_PROFILES, LABEL_RESOURCE, config_hash, parse_resource
from declarun.plan.model import Action, ChangeKind, Plan, Reason, Wait
from declarun.plan.network_changes import network_change, network_recreated
from declarun.plan.reasons import config_reasons, input_reasons, short_digest
from declarun.plan.swarm_desired import DesiredService, DesiredSwarm, DesiredSwarmNetwork
from declarun.plan.swarm_observed import ObservedCluster, ObservedService, ObservedSwarmObject
from declarun.stack.model import Stack

__all__ = ["diff_swarm", "plan_destroy_swarm", "swarm_desired_hash"]


def _notes(service: DesiredService) -> list[Reason]:
    return [reason("adapted", note) for note in service.notes]


def _state(service: DesiredService, observed: ObservedService, down: tuple[str, ...]) -> Draft:
    draft = Draft(
        service.id,
        "noop",
        "service",
        service.name,
        service.engine_name,
        observed_id=observed.id,
        desired_hash=service.config_hash,
    )
    wanted = service.replicas
    if observed.is_job:
        done = observed.completed()
        live = [t for t in observed.live() if t.current]
        failed = [t for t in observed.tasks if t.current and t.state in ("failed", "rejected")]
        if done >= wanted:
            return draft
        if failed and not live:
            last = failed[-1]
            draft.action = "start"
            draft.reasons.append(
                reason(
                    "job_failed",
                    f"the job failed ({last.error or 'exit code ' + str(last.exit_code)}); "
                    "it runs again",
                    field="exit_code",
                    before=last.exit_code,
                    after=0,
                )
            )
            return draft
        draft.reasons.append(reason("converging", f"the job is running: {done} of {wanted} done"))
        return draft
    running = observed.running()
    if wanted and not observed.live():
        draft.action = "start"
        draft.reasons.append(
            reason(
                "stopped",
                "no task of the service is running (it exited and its restart policy lets it be)",
                field="state",
                before="stopped",
                after="running",
            )
        )
    elif running < wanted:
        where = f"; nodes down: {', '.join(down)}" if down else ""
        draft.reasons.append(
            reason(
                "converging",
                f"{running} of {wanted} tasks running: Swarm is placing the rest{where}",
            )
        )
    return draft


def _service(
    service: DesiredService,
    observed: ObservedService | None,
    cluster: ObservedCluster,
    replaced_networks: set[str],
) -> Draft:
    if service.problems:
        return error(
            "service",
            service.id,
            service.name,
            service.engine_name,
            *(reason("input_unreadable", problem) for problem in service.problems),
        )
    if observed is None:
        draft = Draft(
            service.id,
            "create",
            "service",
            service.name,
            service.engine_name,
            [reason("missing", f"service {service.engine_name} does not exist")],
            desired_hash=service.config_hash,
        )
        draft.reasons.extend(_notes(service))
        return draft
    if not cluster.owns(observed.labels):
        owner = observed.labels.get("dev.declarun.stack")
        return foreign("service", service.id, service.name, service.engine_name, owner)
    reasons = config_reasons(service.config, service.config_hash, observed.labels)
    reasons += input_reasons(
        service.inputs, observed.labels, consequence="it reaches the tasks as a new config"
    )
    if observed.image != service.image_ref and not any(r.field == "image" for r in reasons):
        reasons.append(
            reason(
                "image_changed",
                f"the service runs {observed.image}; the stack (its lock) wants "
                f"{service.image_ref}",
                field="image",
                before=observed.image,
                after=service.image_ref,
            )
        )
    replaced = sorted(replaced_networks & set(service.networks))
    reasons.extend(network_recreated(network) for network in replaced)
    if not reasons:
        return _state(service, observed, cluster.down_nodes())
    mode_changed = any(r.field == "run" for r in reasons) or observed.is_job != (
        service.run == "once"
    )
    action: Action = "recreate" if mode_changed or replaced else "update"
    if action == "recreate" and mode_changed and not replaced:
        reasons.append(
            reason("adapted", "Swarm cannot turn a service into a job or back: it is recreated")
        )
    draft = Draft(
        service.id,
        action,
        "service",
        service.name,
        service.engine_name,
        [*reasons, *_notes(service)],
        observed_id=observed.id,
        desired_hash=service.config_hash,
    )
    if observed.update_state.startswith("rollback"):
        draft.reasons.append(
            reason(
                "converging",
                f"the last update was rolled back ({observed.update_state}): "
                f"{observed.update_message}",
            )
        )
    return draft


def _external_network(network: DesiredSwarmNetwork, found: str | None) -> Draft:
    """An external network: used as it is; while it is missing, its services cannot start."""
    if found is not None:
        return Draft(
            network.id, "noop", "network", network.name, network.engine_name, observed_id=found
        )
    message = (
        f"the external network {network.engine_name} does not exist; declarun uses it "
        "but never creates it: create it yourself (docker network create --driver "
        f"overlay --attachable {network.engine_name})"
    )
    return error(
        "network",
        network.id,
        network.name,
        network.engine_name,
        reason("external_missing", message),
    )


def _networks(desired: DesiredSwarm, cluster: ObservedCluster) -> Iterable[Draft]:
    for network in desired.networks.values():
        observed = cluster.networks.get(network.engine_name)
        if network.external:
            yield _external_network(network, None if observed is None else observed.id)
            continue
        yield network_change(network, observed, cluster.owns)


def _files(desired: DesiredSwarm, cluster: ObservedCluster) -> Iterable[Draft]:
    for item in desired.files.values():
        present = (cluster.configs if item.kind == "config" else cluster.secrets).get(
            item.engine_name
        )
        if present is None:
            yield Draft(
                item.id,
                "create",
                item.kind,
                item.name,
                item.engine_name,
                [reason("missing", f"{item.kind} of {item.source} ({short_digest(item.digest)})")],
            )
        elif not cluster.owns(present.labels):
            owner = present.labels.get("dev.declarun.stack")
            yield foreign(item.kind, item.id, item.name, item.engine_name, owner)
        else:
            yield Draft(
                item.id, "noop", item.kind, item.name, item.engine_name, observed_id=present.id
            )


def _orphan_message(kind: str, labels: Mapping[str, str], desired: DesiredSwarm) -> str:
    profiles = labels.get(LABEL_PROFILES)
    if profiles:
        return f"its profiles ({profiles}) are not active"
    if kind in ("config", "secret"):
        return f"no service of the stack uses this {kind} any more (its content changed or went)"
    return f"the {kind} is no longer in the stack"


def _owned(
    cluster: ObservedCluster,
) -> Iterator[tuple[ChangeKind, str, str, ObservedService | ObservedSwarmObject]]:
    """(kind, engine name, short name, object) of every object of the stack on the cluster:
    services, networks, configs, secrets; the short name from the resource label."""
    sources: tuple[tuple[ChangeKind, Mapping[str, ObservedService | ObservedSwarmObject]], ...] = (
        ("service", cluster.services),
        ("network", cluster.networks),
        ("config", cluster.configs),
        ("secret", cluster.secrets),
    )
    for kind, observed_map in sources:
        for name, observed in observed_map.items():
            if not cluster.owns(observed.labels):
                continue
            resource = parse_resource(observed.labels.get(LABEL_RESOURCE))
            short = resource[1] if resource else short_name(cluster.stack, name)
            yield kind, name, short, observed


def _orphans(desired: DesiredSwarm, cluster: ObservedCluster, prune: bool) -> Iterable[Draft]:
    wanted = desired.engine_names
    for kind, name, short, observed in _owned(cluster):
        if (kind, name) in wanted:
            continue
        why = _orphan_message(kind, observed.labels, desired)
        draft = Draft(f"{kind}:{short}", "remove", kind, short, name, observed_id=observed.id)
        yield orphan_removal(draft, why, prune=prune)


def _link(stack: Stack, desired: DesiredSwarm, drafts: dict[str, Draft]) -> None:
    service_changes = [d for d in drafts.values() if d.kind == "service"]
    orphan_services = {
        d.id for d in service_changes if d.action == "remove" and d.name not in desired.services
    }
    for service in desired.services.values():
        draft = drafts[service.id]
        for needed in (*service.networks, *service.files):
            if needed in drafts:
                draft.depends_on.add(needed)
        container = stack.containers[service.name]
        for dependency in container.depends_on:
            target = f"service:{dependency.container}"
            if target in drafts:
                draft.depends_on.add(target)
                draft.waits.append(Wait(target, dependency.condition))
        if draft.action in ("create", "recreate", "update", "start"):
            draft.depends_on |= orphan_services
    for draft in drafts.values():
        if draft.kind in ("network", "config", "secret") and draft.action == "remove":
            draft.depends_on |= {d.id for d in service_changes if d.action != "noop"}


def swarm_desired_hash(desired: DesiredSwarm) -> str:
    """What a saved plan records of the desired state on a Swarm."""
    return config_hash(
        {
            "routing_mesh": desired.routing_mesh,
            "networks": {n: v.config_hash for n, v in desired.networks.items()},
            "files": sorted(f"{f.engine_name}={f.digest}" for f in desired.files.values()),
            "services": {
                n: [s.config_hash, s.image_ref, [[i.path, i.digest] for i in s.inputs]]
                for n, s in desired.services.items()
            },
        }
    )


def diff_swarm(
    stack: Stack,
    cluster: ObservedCluster,
    desired: DesiredSwarm,
    *,
    prune: bool = True,
    created_at: str | None = None,
) -> Plan:
    """The changes that make the Swarm, as observed in ``cluster``, match ``stack``
    (``desired`` is the stack worked out against that observation). Pure."""
    drafts: dict[str, Draft] = {}
    for draft in [*_networks(desired, cluster), *_files(desired, cluster)]:
        drafts[draft.id] = draft
    replaced = {d.id for d in drafts.values() if d.kind == "network" and d.action == "recreate"}
    for service in desired.services.values():
        observed = cluster.services.get(service.engine_name)
        drafts[service.id] = _service(service, observed, cluster, replaced)
    for draft in _orphans(desired, cluster, prune):
        drafts.setdefault(draft.id, draft)
    _link(stack, desired, drafts)
    return Plan(
        stack=stack.name,
        changes=finish(drafts),
        fingerprint=cluster.fingerprint(),
        created_at=created_at or now(),
        mode="apply",
        platform=cluster.platform,
        desired_hash=swarm_desired_hash(desired),
    )


def plan_destroy_swarm(
    stack: Stack | None, cluster: ObservedCluster, *, created_at: str | None = None
) -> Plan:
    """Remove every service, network, config and secret the stack owns: services dependents
    first, the rest once no service of the stack is left to use them. (Named volumes live
    on each node, made by Swarm; they are left there: see ``specs/scale-out.md``.)"""
    drafts: dict[str, Draft] = {}
    for kind, name, short, observed in _owned(cluster):
        drafts[f"{kind}:{short}"] = Draft(
            f"{kind}:{short}",
            "remove",
            kind,
            short,
            name,
            [reason("destroy", "destroy")],
            observed_id=observed.id,
        )
    services = {d.id for d in drafts.values() if d.kind == "service"}
    for draft in drafts.values():
        if draft.kind != "service":
            draft.depends_on |= services
    if stack is not None:
        for container in stack.containers.values():
            for dependency in container.depends_on:
                user, needed = f"service:{container.name}", f"service:{dependency.container}"
                if user in drafts and needed in drafts:
                    drafts[needed].depends_on.add(user)  # the user goes first
    return Plan(
        stack=cluster.stack,
        changes=finish(drafts),
        fingerprint=cluster.fingerprint(),
        created_at=created_at or now(),
        mode="destroy",
        platform=cluster.platform,
    )
