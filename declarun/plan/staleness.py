"""Why a saved plan is stale, in the resources' names: what moved in the world, what moved in
the stack.

A saved plan records, beside the fingerprint of the observed state it was made from, a
digest per observed object (:func:`observed_objects`); when the fingerprint no longer
matches, comparing those with the objects seen now names each one that appeared, went, or
changed (with its state, for containers). When the stack moved instead, comparing the saved
changes' desired hashes with the desired state worked out now names the resources whose
configuration is not what the plan was made for. Pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from declarun.frozen import thaw
from declarun.plan.desired import DesiredState
from declarun.plan.identity import canonical_json, sha256_text
from declarun.plan.model import Plan
from declarun.plan.observed import ObservedState

__all__ = ["desired_differences", "observed_objects", "world_differences"]

_KINDS = (("container", "containers"), ("network", "networks"), ("volume", "volumes"))


def _digest(value: Any) -> str:
    return sha256_text(canonical_json(thaw(value)))[:23]  # sha256: + 16 hex


def observed_objects(observed: ObservedState) -> dict[str, dict[str, str]]:
    """``{"container:NAME": {"digest": ..., "state": ...}, "volume:NAME": {...}, ...}``: one
    entry per object the snapshot holds (images by reference, host inputs by key)."""
    data = observed.to_data()
    found: dict[str, dict[str, str]] = {}
    for kind, key in _KINDS:
        for item in data[key]:
            entry = {"digest": _digest(item)}
            if kind == "container":
                entry["state"] = str(item.get("state") or "")
            found[f"{kind}:{item['name']}"] = entry
    for item in data["images"]:
        found[f"image:{item['ref']}"] = {"digest": _digest(item)}
    for name, digest in data["inputs"].items():
        found[f"input:{name}"] = {"digest": _digest(digest)}
    return found


def _what(key: str) -> str:
    kind, _, name = key.partition(":")
    if kind == "input":
        source, _, path = name.partition(":")
        return f"{'build context' if source == 'context' else 'file'} {path}"
    return f"{kind} {name}"


def world_differences(
    recorded: Mapping[str, Mapping[str, str]], observed: ObservedState
) -> list[str]:
    """What changed between the objects a saved plan recorded and ``observed``, one phrase
    each: ``container shop-web changed (running → exited)``, ``volume shop-data appeared``."""
    now = observed_objects(observed)
    changes: list[str] = []
    for key in sorted(set(recorded) | set(now)):
        before, after = recorded.get(key), now.get(key)
        if before is None:
            changes.append(f"{_what(key)} appeared")
        elif after is None:
            changes.append(f"{_what(key)} is gone")
        elif before.get("digest") != after.get("digest"):
            states = (before.get("state"), after.get("state"))
            moved = f" ({states[0]} → {states[1]})" if states[0] != states[1] else ""
            changes.append(f"{_what(key)} changed{moved}")
    return changes


def desired_differences(saved: Plan, desired: DesiredState) -> list[str]:
    """The resources whose desired configuration (or image reference, or input content) is
    no longer what ``saved`` was made for, one phrase each."""
    now: dict[str, str | None] = {}
    for image in desired.images.values():
        inputs = image.build.inputs if image.build is not None else None
        now[image.id] = _digest([image.ref, None if inputs is None else inputs.to_data()])
    for volume in desired.volumes.values():
        now[volume.id] = volume.config_hash
    for network in desired.networks.values():
        now[network.id] = network.config_hash
    for container in desired.containers.values():
        now[container.id] = container.config_hash
    planned = {c.id: c for c in saved.changes if c.action != "remove" or c.id in now}
    changes: list[str] = []
    for key in sorted(set(planned) | set(now)):
        change = planned.get(key)
        if change is None:
            changes.append(f"{key.replace(':', ' ', 1)} is new in the stack")
        elif key not in now:
            changes.append(f"{key.replace(':', ' ', 1)} left the stack")
        elif change.kind == "image":
            if change.engine_name not in (
                desired.images[change.name].ref,
                desired.images[change.name].written_ref,
            ):
                changes.append(f"image {change.name} now names {desired.images[change.name].ref}")
        elif change.desired_hash is not None and change.desired_hash != now[key]:
            changes.append(f"{key.replace(':', ' ', 1)} has another configuration")
    return changes
