"""What a person asks for by name, beside the plan: ``start``, ``stop``, ``restart`` and
``pull`` of some (or all) of a stack's containers, and preparing a ``run`` one-off.

These act on what exists; they never create or replace (that is ``apply``'s job), so a
container that does not exist yet is a failure that says to apply first. Each action is an
executor step, so the same progress lines and failure reports as ``apply`` come out: a
``start`` waits, as apply does, until the container is healthy (with a health check) or
running, or until a ``run: once`` job completed. Starts go dependencies first, stops
dependents first.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Literal

from declarun.engine.port import Engine
from declarun.errdefs import NotFound
from declarun.errors import DeclarunError
from declarun.observe.state import observe_stack
from declarun.plan.desired import DesiredContainer, DesiredState
from declarun.plan.oneoff import OneOff, one_off
from declarun.reconcile import actions
from declarun.reconcile.executor import Step, StepContext, StepFailed
from declarun.reconcile.replace import start_gated
from declarun.stack.model import Stack

__all__ = [
    "ContainerAction",
    "RunRefused",
    "container_steps",
    "prepare_one_off",
    "pull_steps",
]

ContainerAction = Literal["start", "stop", "restart"]


class RunRefused(DeclarunError):
    """A one-off cannot be made: the stack is not applied (a network or volume is missing)."""


def _exists(engine: Engine, name: str) -> None:
    try:
        engine.inspect_container(name)
    except NotFound:
        raise StepFailed(f"{name} does not exist: create it with 'declarun apply' first") from None


def _starter(engine: Engine, wanted: DesiredContainer) -> Callable[[StepContext], None]:
    def run(ctx: StepContext) -> None:
        _exists(engine, wanted.engine_name)
        if wanted.run == "once":
            actions.run_once(engine, wanted.engine_name, ctx=ctx)
        else:
            start_gated(engine, wanted.engine_name, ctx)

    return run


def _stopper(
    engine: Engine, stack: Stack, wanted: DesiredContainer, then_start: bool
) -> Callable[[StepContext], None]:
    grace = stack.containers[wanted.container].stop_grace_period
    start = _starter(engine, wanted)

    def run(ctx: StepContext) -> None:
        _exists(engine, wanted.engine_name)
        actions.stop_container(engine, wanted.engine_name, grace)
        if then_start:
            start(ctx)

    return run


def container_steps(
    engine: Engine,
    stack: Stack,
    desired: DesiredState,
    replicas: Sequence[str],
    action: ContainerAction,
) -> list[Step]:
    """One step per replica (by replica name) doing ``action``, in dependency order."""
    chosen = [desired.containers[name] for name in replicas]
    by_container: dict[str, list[str]] = {}
    for wanted in chosen:
        by_container.setdefault(wanted.container, []).append(wanted.id)
    steps = []
    for wanted in chosen:
        depends = [d.container for d in stack.containers[wanted.container].depends_on]
        needs = {key for name in depends for key in by_container.get(name, [])}
        if action == "stop":  # dependents first: whoever depends on this one needs it gone
            needs = {
                other.id
                for other in chosen
                if any(
                    d.container == wanted.container
                    for d in stack.containers[other.container].depends_on
                )
            }
        run = (
            _starter(engine, wanted)
            if action == "start"
            else _stopper(engine, stack, wanted, then_start=action == "restart")
        )
        steps.append(
            Step(
                key=wanted.id,
                label=f"{action} container {wanted.replica}",
                run=run,
                needs=frozenset(needs),
            )
        )
    return steps


def pull_steps(engine: Engine, desired: DesiredState, images: Sequence[str]) -> list[Step]:
    """One step per image (by the stack's image name) pulling it, whatever its pull policy;
    images the stack builds are not pulled."""
    steps = []
    for name in images:
        image = desired.images[name]
        if image.build is not None:
            continue

        def run(ctx: StepContext, ref: str = image.ref, platform: str = image.platform) -> None:
            actions.pull_image(engine, ref, platform=platform, ctx=ctx)

        steps.append(Step(key=image.id, label=f"pull {image.ref}", run=run))
    return steps


def prepare_one_off(
    engine: Engine,
    stack: Stack,
    container: str,
    *,
    suffix: str,
    command: Sequence[str] = (),
    env: Sequence[str] = (),
    user: str | None = None,
    workdir: str | None = None,
    service_ports: bool = False,
    tty: bool = False,
    stdin: bool = True,
    on_pull: Callable[[str], None] | None = None,
) -> OneOff:
    """The one-off copy of ``container``, after checking that what it needs exists (its
    networks and volumes: the stack must be applied) and pulling its image when absent."""
    seen = observe_stack(engine, stack)
    replicas = [c for c in seen.desired.containers.values() if c.container == container]
    if not replicas:
        raise RunRefused(f"no container {container} in the stack")
    wanted = replicas[0]
    body = wanted.create_body()
    missing = [
        f"network {name}"
        for name in [
            *(body.get("NetworkingConfig") or {}).get("EndpointsConfig", {}),
            *(n for n, _ in wanted.extra_networks),
        ]
        if name not in seen.observed.networks
    ] + [
        f"volume {mount['Source']}"
        for mount in (body.get("HostConfig") or {}).get("Mounts") or ()
        if mount.get("Type") == "volume"
        and mount.get("Source")
        and mount["Source"] not in seen.observed.volumes
    ]
    if missing:
        raise RunRefused(
            f"{', '.join(missing)} of stack '{stack.name}' does not exist: "
            "run 'declarun apply' first"
        )
    if wanted.image_ref not in seen.observed.images:
        if on_pull is not None:
            on_pull(wanted.image_ref)
        image = seen.desired.images[wanted.image]
        try:
            actions.pull_image(engine, wanted.image_ref, platform=image.platform)
        except StepFailed as exc:
            raise RunRefused(str(exc)) from None
    return one_off(
        stack.name,
        wanted,
        suffix=suffix,
        command=command,
        env=env,
        user=user,
        workdir=workdir,
        service_ports=service_ports,
        tty=tty,
        stdin=stdin,
    )
