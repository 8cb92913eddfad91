"""From a Swarm :class:`~declarun.plan.model.Plan` to executor steps.

* networks: created (overlay, attachable); a replaced one first loses the services the plan
  replaces with it, then is removed and made again; removal is retried while tasks of a
  removed service still hold it (Swarm takes them down in the background);
* configs and secrets: created from the observed file contents, removed when orphaned;
* services: ``create`` makes the service and waits until it is ready (every replica
  running, healthy where it has a check; a job completed); ``update`` sends the new spec at
  the version observed and waits for Swarm's health-gated rolling update — a rolled-back
  update fails the step with the failing task's report; ``recreate`` removes and creates;
  ``start`` forces an update (new tasks, or a job run again); ``remove`` removes. Each
  first waits for its ``waits``: the ``depends_on`` conditions on other services.

Specs come from the desired state the plan was made against; the ids of the configs and
secrets they name are looked up when the step runs (the API wants both name and id).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from declarun.engine.swarm_port import SwarmEngine
from declarun.errdefs import Conflict, ErrorKind, NotFound
from declarun.frozen import thaw
from declarun.plan.model import Change, Plan
from declarun.plan.swarm_desired import DesiredService, DesiredSwarm
from declarun.reconcile.executor import Step, StepContext, StepFailed
from declarun.reconcile.steps import change_label
from declarun.reconcile.swarm_rollout import wait_condition, wait_ready, wait_rolled_out

__all__ = ["swarm_steps"]

_REMOVE_TIMEOUT = 60.0


def _retry_removal(remove: Callable[[], None], what: str) -> None:
    deadline = time.monotonic() + _REMOVE_TIMEOUT
    while True:
        try:
            remove()
            return
        except NotFound:
            return
        except ErrorKind as exc:
            if time.monotonic() > deadline:
                raise StepFailed(f"remove {what}: {exc}") from None
            time.sleep(0.5)


class _Steps:
    def __init__(self, engine: SwarmEngine, plan: Plan, desired: DesiredSwarm) -> None:
        self.engine = engine
        self.plan = plan
        self.desired = desired

    def service(self, change: Change) -> DesiredService:
        wanted = self.desired.services.get(change.name)
        if wanted is None:
            raise StepFailed(f"service {change.name} is not in the stack any more: re-run plan")
        return wanted

    def resolved_spec(self, wanted: DesiredService) -> dict[str, Any]:
        """The spec with the ids of the configs and secrets it names."""
        spec = wanted.spec()
        container = spec["TaskTemplate"]["ContainerSpec"]
        if not container.get("Configs") and not container.get("Secrets"):
            return spec
        try:
            configs = {c.name: c.id for c in self.engine.list_configs()}
            secrets = {s.name: s.id for s in self.engine.list_secrets()}
        except ErrorKind as exc:
            raise StepFailed(f"list configs and secrets: {exc}") from None
        for ref in container.get("Configs") or ():
            if ref["ConfigName"] not in configs:
                raise StepFailed(f"config {ref['ConfigName']} does not exist: re-run plan")
            ref["ConfigID"] = configs[ref["ConfigName"]]
        for ref in container.get("Secrets") or ():
            if ref["SecretName"] not in secrets:
                raise StepFailed(f"secret {ref['SecretName']} does not exist: re-run plan")
            ref["SecretID"] = secrets[ref["SecretName"]]
        return spec

    def wait_first(self, change: Change, ctx: StepContext) -> None:
        for wait in change.waits:
            try:
                target = self.plan.change(wait.on).engine_name
            except KeyError:
                target = f"{self.desired.stack}-{wait.on.partition(':')[2]}"
            if wait.condition not in ("started", "healthy", "completed"):
                raise StepFailed(f"unknown condition {wait.condition!r} on {wait.on}")
            try:
                wait_condition(self.engine, target, wait.condition, report=ctx.update)  # type: ignore[arg-type]
            except StepFailed as exc:
                raise StepFailed(
                    f"{change.name} waits for {wait.on.partition(':')[2]}: {exc}", exc.report
                ) from None

    def create(self, change: Change, ctx: StepContext) -> None:
        wanted = self.service(change)
        try:
            self.engine.create_service(self.resolved_spec(wanted))
        except ErrorKind as exc:
            raise StepFailed(f"create service {change.engine_name}: {exc}") from None
        wait_ready(self.engine, change.engine_name, report=ctx.update)

    def update(self, change: Change, ctx: StepContext, *, force: bool = False) -> None:
        wanted = self.service(change)
        try:
            current = self.engine.inspect_service(change.engine_name)
        except ErrorKind as exc:
            raise StepFailed(f"inspect service {change.engine_name}: {exc}") from None
        spec = self.resolved_spec(wanted)
        template = spec["TaskTemplate"]
        forced = int((current.spec.get("TaskTemplate") or {}).get("ForceUpdate") or 0)
        template["ForceUpdate"] = forced + 1 if force else forced
        try:
            self.engine.update_service(change.engine_name, current.version, spec)
        except ErrorKind as exc:
            raise StepFailed(f"update service {change.engine_name}: {exc}") from None
        wait_rolled_out(self.engine, change.engine_name, after=current.version, report=ctx.update)

    def remove(self, name: str) -> None:
        try:
            self.engine.remove_service(name)
        except NotFound:
            return
        except ErrorKind as exc:
            raise StepFailed(f"remove service {name}: {exc}") from None

    def service_step(self, change: Change) -> Callable[[StepContext], None]:
        def run(ctx: StepContext) -> None:
            if change.action in ("create", "recreate", "update", "start"):
                self.wait_first(change, ctx)
            if change.action == "create":
                self.create(change, ctx)
            elif change.action == "update":
                self.update(change, ctx)
            elif change.action == "start":
                self.update(change, ctx, force=True)
            elif change.action == "recreate":
                self.remove(change.engine_name)
                self.create(change, ctx)
            elif change.action == "remove":
                self.remove(change.engine_name)
            else:
                raise StepFailed(f"cannot {change.action} a service")

        return run

    def replaced_with(self, network: Change) -> list[str]:
        """Engine names of the services the plan replaces because ``network`` is."""
        return [
            c.engine_name
            for c in self.plan.changes
            if c.kind == "service"
            and c.action == "recreate"
            and any(r.kind == "dependency_replaced" and r.before == network.id for r in c.reasons)
        ]

    def remove_network(self, change: Change) -> None:
        """Remove a Swarm network by id (by name a node may answer for its own copy of
        it) and wait until the manager lists it no more."""
        target = change.observed_id or change.engine_name

        def gone() -> None:
            self.engine.remove_network(target)
            if any(n.name == change.engine_name for n in self.engine.list_networks()):
                raise Conflict(f"network {change.engine_name} is still there")

        _retry_removal(gone, f"network {change.engine_name}")

    def network_step(self, change: Change) -> Callable[[StepContext], None]:
        def run(_: StepContext) -> None:
            if change.action == "recreate":
                for service in self.replaced_with(change):
                    self.remove(service)
            if change.action in ("remove", "recreate"):
                self.remove_network(change)
            if change.action in ("create", "recreate"):
                wanted = self.desired.networks.get(change.name)
                if wanted is None:
                    raise StepFailed(f"network {change.name} is not in the stack: re-run plan")
                try:
                    self.engine.create_network(thaw(wanted.body))
                except ErrorKind as exc:
                    raise StepFailed(f"create network {change.engine_name}: {exc}") from None

        return run

    def file_step(self, change: Change) -> Callable[[StepContext], None]:
        def run(_: StepContext) -> None:
            config = change.kind == "config"
            if change.action == "remove":
                remove = self.engine.remove_config if config else self.engine.remove_secret
                _retry_removal(lambda: remove(change.engine_name), change.engine_name)
                return
            if change.action != "create":
                raise StepFailed(f"cannot {change.action} a {change.kind}")
            wanted = self.desired.files.get(change.id)
            if wanted is None:
                raise StepFailed(f"{change.kind} {change.name} is not wanted any more: re-plan")
            create = self.engine.create_config if config else self.engine.create_secret
            try:
                create(wanted.engine_name, wanted.data, wanted.labels)
            except ErrorKind as exc:
                raise StepFailed(f"create {change.kind} {wanted.engine_name}: {exc}") from None

        return run

    def step(self, change: Change) -> Step:
        makers = {
            "service": self.service_step,
            "network": self.network_step,
            "config": self.file_step,
            "secret": self.file_step,
        }
        maker = makers.get(change.kind)
        if maker is None:
            raise StepFailed(f"a Swarm plan has no {change.kind} changes")
        return Step(
            key=change.id,
            label=change_label(change),
            run=maker(change),
            needs=frozenset(change.depends_on),
        )


def swarm_steps(engine: SwarmEngine, plan: Plan, desired: DesiredSwarm) -> list[Step]:
    """The executor steps of a Swarm plan's actionable changes, in plan order."""
    builder = _Steps(engine, plan, desired)
    return [builder.step(change) for change in plan.actionable]
