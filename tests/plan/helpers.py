"""Helpers for plan tests: stacks from YAML text, and snapshots of a world that matches them.

``matching_snapshot(stack)`` builds the snapshot an engine would report right after a perfect
apply of ``stack``: every object exists with exactly the labels declarun would have given it,
containers running (jobs exited 0), images present. Tests then change one thing and check the
plan names exactly that.
"""

from __future__ import annotations

import textwrap
from dataclasses import replace
from pathlib import Path
from typing import Any

from declarun.frozen import FrozenDict
from declarun.observe.builds import observe_build
from declarun.observe.digests import input_digests
from declarun.observe.dockerfiles import base_images
from declarun.plan.desired import DEFAULT_PLATFORM, desired_state
from declarun.plan.lock import Lock
from declarun.plan.observed import (
    ObservedContainer,
    ObservedImage,
    ObservedNetwork,
    ObservedState,
    ObservedVolume,
)
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack

__all__ = ["IMAGE_ID", "load", "matching_snapshot", "with_container", "without"]

IMAGE_ID = "sha256:" + "1" * 64


def load(tmp_path: Path, text: str, *, profiles: frozenset[str] = frozenset()) -> Stack:
    """Write ``text`` (dedented) as ``tmp_path/stack.yaml`` and load it."""
    path = tmp_path / "stack.yaml"
    path.write_text(textwrap.dedent(text))
    return load_stack(path, LoadOptions(environ={}, profiles=profiles))


def matching_snapshot(
    stack: Stack, *, lock: Lock | None = None, image_id: str = IMAGE_ID
) -> ObservedState:
    """The snapshot of an engine on which ``stack`` was applied perfectly."""
    inputs = input_digests(stack)
    builds = {}
    for name, image in stack.images.items():
        if image.build is not None:
            seen = observe_build(stack, image, platform=DEFAULT_PLATFORM, lock=lock)
            builds[name] = replace(seen, recorded=seen.inputs)  # built from what it is now
    bases = base_images(stack)
    desired = desired_state(stack, inputs=inputs, lock=lock, bases=bases, builds=builds)
    containers = {}
    for c in desired.containers.values():
        body = c.create_body()
        containers[c.engine_name] = ObservedContainer(
            id=f"id-{c.engine_name}",
            name=c.engine_name,
            labels=FrozenDict(body["Labels"]),
            image=c.image_ref,
            image_id=image_id,
            state="exited" if c.run == "once" else "running",
            exit_code=0 if c.run == "once" else None,
            networks=tuple(
                sorted(
                    [
                        *body["NetworkingConfig"]["EndpointsConfig"],
                        *(n for n, _ in c.extra_networks),
                    ]
                )
            ),
            volumes=tuple(
                sorted(
                    m["Source"]
                    for m in body["HostConfig"]["Mounts"]
                    if m["Type"] == "volume" and "Source" in m
                )
            ),
        )
    networks = {
        n.engine_name: ObservedNetwork(
            id=f"net-{n.engine_name}",
            name=n.engine_name,
            labels=FrozenDict(n.body.get("Labels", {})),  # external ones carry none
        )
        for n in desired.networks.values()
    }
    volumes = {
        v.engine_name: ObservedVolume(
            name=v.engine_name, labels=FrozenDict(v.body.get("Labels", {}))
        )
        for v in desired.volumes.values()
    }
    images = {
        i.ref: ObservedImage(
            ref=i.ref, id=image_id, repo_digests=(f"{i.ref.split(':')[0]}@sha256:{'2' * 64}",)
        )
        for i in desired.images.values()
    }
    return ObservedState(
        stack=stack.name,
        containers=FrozenDict(sorted(containers.items())),
        networks=FrozenDict(sorted(networks.items())),
        volumes=FrozenDict(sorted(volumes.items())),
        images=FrozenDict(sorted(images.items())),
        inputs=inputs,
        base_images=bases,
        builds=FrozenDict(sorted(builds.items())),
    )


def with_container(snapshot: ObservedState, name: str, **changes: Any) -> ObservedState:
    """``snapshot`` with container ``name`` changed (or added, given every field)."""
    existing = snapshot.containers.get(name)
    container = (
        replace(existing, **changes) if existing else ObservedContainer(name=name, **changes)
    )
    return replace(snapshot, containers=FrozenDict({**snapshot.containers, name: container}))


def without(snapshot: ObservedState, kind: str, name: str) -> ObservedState:
    """``snapshot`` without the object ``name`` of ``kind`` (containers, networks, volumes, images)."""
    current = getattr(snapshot, kind)
    return replace(snapshot, **{kind: FrozenDict({k: v for k, v in current.items() if k != name})})
