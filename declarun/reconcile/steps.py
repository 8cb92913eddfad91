"""From a :class:`~declarun.plan.model.Plan` to executor steps: what each change does.

Each actionable change becomes one :class:`~declarun.reconcile.executor.Step` whose needs are
the change's ``depends_on``. Container steps first wait for their ``waits`` (the
``depends_on`` conditions of the stack), then act:

* ``create``: create, connect the extra networks, then start — a ``run: once`` job is run to
  completion, a service with a health check must turn healthy, other services must run;
* ``recreate``: the health-gated replace of :mod:`declarun.reconcile.replace` — unless it
  was planned only because the container's image is built again (``image_rebuilt``) and
  the build gave the image it already runs: then it is kept;
* ``build`` (images): :func:`declarun.reconcile.builds.build_image`;
* ``start`` / ``stop`` / ``remove``: as named.

Create bodies come from the desired state the plan was made against, so what runs is what
the plan showed.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from declarun.engine.port import Engine
from declarun.errdefs import ErrorKind, NotFound
from declarun.frozen import thaw
from declarun.plan.desired import DesiredContainer, DesiredState
from declarun.plan.model import Change, Plan, is_conditional_replace
from declarun.reconcile import actions
from declarun.reconcile.builds import BuildOptions, build_image
from declarun.reconcile.conditions import wait_for
from declarun.reconcile.executor import Step, StepContext, StepFailed, StepUnneeded
from declarun.reconcile.replace import replace_container, start_gated
from declarun.stack.model import Stack

__all__ = ["change_label", "plan_steps"]

_DEFAULT_GRACE = timedelta(seconds=10)
_VERBS = {
    "create": "create",
    "recreate": "recreate",
    "update": "update",
    "start": "start",
    "stop": "stop",
    "remove": "remove",
    "pull": "pull",
    "build": "build",
}


def change_label(change: Change) -> str:
    """How a change reads in progress lines: ``recreate container web``, ``pull busybox:1``."""
    verb = _VERBS.get(change.action, change.action)
    if change.kind == "image":
        return f"{verb} {change.engine_name}"
    return f"{verb} {change.kind} {change.name}"


class _Builder:
    def __init__(
        self,
        engine: Engine,
        plan: Plan,
        desired: DesiredState,
        stack: Stack,
        build_options: BuildOptions,
    ) -> None:
        self.engine = engine
        self.plan = plan
        self.desired = desired
        self.stack = stack
        self.build_options = build_options

    def grace(self, change: Change) -> timedelta:
        wanted = self.desired.containers.get(change.name)
        if wanted is None or wanted.container not in self.stack.containers:
            return _DEFAULT_GRACE
        return self.stack.containers[wanted.container].stop_grace_period

    def container(self, change: Change) -> DesiredContainer:
        wanted = self.desired.containers.get(change.name)
        if wanted is None:
            raise StepFailed(f"container {change.name} is not in the stack any more: re-run plan")
        return wanted

    def wait_first(self, change: Change, ctx: StepContext) -> None:
        for wait in change.waits:
            try:
                target = self.plan.change(wait.on).engine_name
            except KeyError:
                target = wait.on.partition(":")[2]
            condition = wait.condition
            if condition not in ("started", "healthy", "completed"):
                raise StepFailed(f"unknown condition {condition!r} on {wait.on}")
            try:
                wait_for(self.engine, target, condition, report=ctx.update)  # type: ignore[arg-type]
            except StepFailed as exc:
                raise StepFailed(
                    f"{change.name} waits for {wait.on.partition(':')[2]}: {exc}", exc.report
                ) from None

    def run_container(self, name: str, wanted: DesiredContainer, ctx: StepContext) -> None:
        if wanted.run == "once":
            actions.run_once(self.engine, name, ctx=ctx)
        else:
            start_gated(self.engine, name, ctx)

    def container_step(self, change: Change) -> Callable[[StepContext], None]:
        engine, name = self.engine, change.engine_name

        def run(ctx: StepContext) -> None:
            if change.action in ("create", "recreate", "start"):
                self.wait_first(change, ctx)
            if change.action == "create":
                wanted = self.container(change)
                actions.create_container(engine, name, wanted.create_body(), _extra(wanted))
                try:
                    self.run_container(name, wanted, ctx)
                except actions.StartRefused:
                    # It never ran: leave nothing half made behind (a later apply creates it).
                    actions.remove_container(engine, name)
                    raise
            elif change.action == "recreate":
                wanted = self.container(change)
                self.keep_if_same_image(change, wanted)
                replace_container(
                    engine,
                    name,
                    wanted.create_body(),
                    extra_networks=_extra(wanted),
                    grace=self.grace(change),
                    job=wanted.run == "once",
                    ctx=ctx,
                )
            elif change.action == "start":
                self.run_container(name, self.container(change), ctx)
            elif change.action == "stop":
                actions.stop_container(engine, name, self.grace(change))
            elif change.action == "remove":
                actions.remove_container(engine, name, self.grace(change))
            else:
                raise StepFailed(f"cannot {change.action} a container")

        return run

    def network_step(self, change: Change) -> Callable[[StepContext], None]:
        engine, name = self.engine, change.engine_name

        def run(_: StepContext) -> None:
            if change.action in ("remove", "recreate"):
                actions.remove_network(engine, name)
            if change.action in ("create", "recreate"):
                wanted = self.desired.networks.get(change.name)
                if wanted is None:
                    raise StepFailed(f"network {change.name} is not in the stack: re-run plan")
                actions.create_network(engine, _thaw(wanted.body))

        return run

    def volume_step(self, change: Change) -> Callable[[StepContext], None]:
        engine, name = self.engine, change.engine_name

        def run(_: StepContext) -> None:
            if change.action == "remove":
                actions.remove_volume(engine, name)
            elif change.action == "create":
                wanted = self.desired.volumes.get(change.name)
                if wanted is None:
                    raise StepFailed(f"volume {change.name} is not in the stack: re-run plan")
                actions.create_volume(engine, _thaw(wanted.body))
            else:
                raise StepFailed(f"declarun does not {change.action} volumes")

        return run

    def image_step(self, change: Change) -> Callable[[StepContext], None]:
        wanted = self.desired.images.get(change.name)
        platform = wanted.platform if wanted is not None else None

        def run(ctx: StepContext) -> None:
            if change.action == "pull":
                actions.pull_image(self.engine, change.engine_name, platform=platform, ctx=ctx)
            elif change.action == "build":
                if wanted is None:
                    raise StepFailed(f"image {change.name} is not in the stack: re-run plan")
                build_image(self.engine, wanted, options=self.build_options, ctx=ctx)
            elif change.action != "remove":
                raise StepFailed(f"cannot {change.action} an image")

        return run

    def keep_if_same_image(self, change: Change, wanted: DesiredContainer) -> None:
        """A container planned for replacement *if* its image's build gives a new image:
        raise :class:`StepUnneeded` when the build gave the image it already runs."""
        if not is_conditional_replace(change):
            return
        try:
            running = self.engine.inspect_container(change.engine_name).image_id
            built = self.engine.inspect_image(wanted.image_ref).id
        except NotFound:
            return  # gone meanwhile: replacing it creates it
        except ErrorKind as exc:
            raise StepFailed(f"inspect {change.engine_name}: {exc}") from None
        if running == built:
            raise StepUnneeded(f"kept: the build of {wanted.image_ref} gave the image it runs")

    def step(self, change: Change) -> Step:
        makers = {
            "container": self.container_step,
            "network": self.network_step,
            "volume": self.volume_step,
            "image": self.image_step,
        }
        return Step(
            key=change.id,
            label=change_label(change),
            run=makers[change.kind](change),
            needs=frozenset(change.depends_on),
        )


def _extra(wanted: DesiredContainer) -> list[tuple[str, dict[str, Any]]]:
    return [(network, body["EndpointConfig"]) for network, body in wanted.connect_bodies()]


def _thaw(body: Any) -> dict[str, Any]:
    plain: dict[str, Any] = thaw(body)
    return plain


def plan_steps(
    engine: Engine,
    plan: Plan,
    desired: DesiredState,
    stack: Stack,
    build_options: BuildOptions | None = None,
) -> list[Step]:
    """The executor steps of ``plan``'s actionable changes, in plan order; builds run with
    ``build_options``."""
    builder = _Builder(engine, plan, desired, stack, build_options or BuildOptions())
    return [builder.step(change) for change in plan.actionable]
