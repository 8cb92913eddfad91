"""Observation: one look at the engine and the host, as immutable values for the pure planner.

:func:`observe_stack` is the I/O that planning needs, done once per plan: it asks the engine
for its platform, digests the stack's host inputs, reads its Dockerfiles' base images and what
each built image would be built from now and was built from (``observe.builds``), works
out the desired state against those (the engine names the stack wants, the image references it
uses, pinned by the lock), and reads, through the engine port, the containers, networks and
volumes that belong to the stack (by the ``dev.declarun.stack`` label) or hold a name it wants
(foreign objects in the way), and the images it refers to. It returns both the
:class:`~declarun.plan.observed.ObservedState` and that desired state, so neither the diff nor
the steps that carry the plan out compute it again.

Engine failures are raised as :class:`~declarun.errors.EngineError`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass

from declarun.engine.port import Engine
from declarun.engine.types import ContainerState, ContainerSummary, PublishedPort, engine_time
from declarun.errdefs import NotFound
from declarun.frozen import FrozenDict
from declarun.observe.builds import observe_builds
from declarun.observe.digests import input_digests
from declarun.observe.dockerfiles import base_images
from declarun.observe.reading import failures_as_engine_errors, owned_or_wanted
from declarun.plan.crashes import CRASH_WINDOW
from declarun.plan.desired import DesiredState, desired_state
from declarun.plan.lock import Lock
from declarun.plan.observed import (
    ObservedBuild,
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
)
from declarun.stack.model import Stack

__all__ = ["Observation", "observe", "observe_stack"]

_NO_INPUTS: FrozenDict[str, str] = FrozenDict()
_NO_BASES: FrozenDict[str, tuple[str, ...]] = FrozenDict()
_NO_BUILDS: FrozenDict[str, ObservedBuild] = FrozenDict()
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_UP = re.compile(r"^Up (Less than a second|1 second|(\d+) seconds)\b")


@dataclass(frozen=True, slots=True)
class Observation:
    """One look at the world for a stack: what is there, and what the stack wants given what
    was seen (the engine's platform, the host's input digests, the lock)."""

    observed: ObservedState
    desired: DesiredState


def _ports(ports: Iterable[PublishedPort]) -> tuple[str, ...]:
    published = {
        f"{p.ip}:{p.public_port}->{p.private_port}/{p.protocol}" for p in ports if p.public_port
    }
    return tuple(sorted(published))


def _health(status: str) -> str | None:
    match = _HEALTH.search(status or "")
    if match is None:
        return None
    return "starting" if match.group(1) == "health: starting" else match.group(1)


def _ran_for(state: ContainerState) -> float | None:
    started, finished = engine_time(state.started_at), engine_time(state.finished_at)
    if started is None or finished is None:
        return None
    # A process that dies at once can exit before the engine has noted its start.
    return round(max(0.0, finished - started), 1)  # tenths: enough to tell a crash at start


def _just_started(summary: ContainerSummary) -> bool:
    """True when the list says it has been up for less than the crash window."""
    if summary.state != "running":
        return False
    match = _UP.match(summary.status or "")
    if match is None:
        return False
    return match.group(2) is None or int(match.group(2)) < CRASH_WINDOW


def _container(engine: Engine, summary: ContainerSummary) -> ObservedContainer:
    exit_code: int | None = None
    health = _health(summary.status)
    restart_count = 0
    ran_for: float | None = None
    if summary.state in ("exited", "dead", "restarting") or _just_started(summary):
        # The exit code, the restarts and how long it ran only appear in inspect (the list
        # has a human status text). A container running for a while needs none of them; one
        # that started moments ago may be a crash loop caught between two deaths.
        details = engine.inspect_container(summary.id)
        health = details.state.health or health
        restart_count = details.restart_count
        if summary.state != "running":  # a running one has no exit code of its own yet
            exit_code = details.state.exit_code
            ran_for = _ran_for(details.state)
    return ObservedContainer(
        id=summary.id,
        name=summary.name,
        labels=summary.labels,
        image=summary.image,
        image_id=summary.image_id,
        state=summary.state,
        exit_code=exit_code,
        health=health,
        networks=summary.networks,
        volumes=summary.volumes,
        ports=_ports(summary.ports),
        restart_count=restart_count,
        ran_for=ran_for,
    )


def _image(engine: Engine, ref: str) -> ObservedImage | None:
    try:
        found = engine.inspect_image(ref)
    except NotFound:
        return None
    return ObservedImage(
        ref=ref,
        id=found.id,
        repo_digests=found.repo_digests,
        repo_tags=found.repo_tags,
        labels=found.labels,
        has_healthcheck=found.has_healthcheck,
    )


def _read_engine(
    engine: Engine,
    stack: str,
    platform: str,
    *,
    wanted: Collection[tuple[str, str]] = frozenset(),
    refs: Iterable[str] = (),
    inputs: FrozenDict[str, str] = _NO_INPUTS,
    bases: FrozenDict[str, tuple[str, ...]] = _NO_BASES,
    builds: FrozenDict[str, ObservedBuild] = _NO_BUILDS,
) -> ObservedState:
    """What the engine holds of ``stack`` (owned objects, the ``wanted`` (kind, name)s and the
    images ``refs`` names), with the host's ``inputs`` and ``bases`` beside it."""

    keep = owned_or_wanted(stack, wanted)
    containers = [
        _container(engine, c)
        for c in engine.list_containers()
        if c.name and keep("container", c.name, c.labels)
    ]
    networks = [
        ObservedNetwork(id=n.id, name=n.name, labels=n.labels, driver=n.driver, internal=n.internal)
        for n in engine.list_networks()
        if keep("network", n.name, n.labels)
    ]
    volumes = [
        ObservedVolume(name=v.name, labels=v.labels, driver=v.driver)
        for v in engine.list_volumes()
        if keep("volume", v.name, v.labels)
    ]
    images = [found for ref in sorted(set(refs)) if (found := _image(engine, ref)) is not None]
    return ObservedState(
        stack=stack,
        platform=platform,
        containers=FrozenDict(sorted((c.name, c) for c in containers)),
        networks=FrozenDict(sorted((n.name, n) for n in networks)),
        volumes=FrozenDict(sorted((v.name, v) for v in volumes)),
        images=FrozenDict(sorted((i.ref, i) for i in images)),
        inputs=inputs,
        base_images=bases,
        builds=builds,
    )


def observe_stack(engine: Engine, stack: Stack, *, lock: Lock | None = None) -> Observation:
    """Look at the engine and the host for ``stack`` (see the module docstring)."""
    with failures_as_engine_errors("the engine's state"):
        platform = engine.version().platform
        inputs = input_digests(stack)
        bases = base_images(stack, platform)
        builds = observe_builds(engine, stack, platform=platform, lock=lock)
        desired = desired_state(
            stack, inputs=inputs, lock=lock, platform=platform, bases=bases, builds=builds
        )
        observed = _read_engine(
            engine,
            stack.name,
            platform,
            wanted=desired.engine_names,
            refs=(image.ref for image in desired.images.values()),
            inputs=inputs,
            bases=bases,
            builds=builds,
        )
    return Observation(observed, desired)


def observe(engine: Engine, stack: Stack | str, *, lock: Lock | None = None) -> ObservedState:
    """The engine's state for ``stack``: given a :class:`Stack`, all that
    :func:`observe_stack` sees; given only a stack name, what the stack owns."""
    if isinstance(stack, Stack):
        return observe_stack(engine, stack, lock=lock).observed
    with failures_as_engine_errors("the engine's state"):
        return _read_engine(engine, stack, engine.version().platform)
