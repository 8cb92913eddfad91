"""The observed state of a Swarm for one stack, as an immutable, fingerprinted value.

The observer (``declarun.observe.swarm``) fills it from a manager: the services, overlay
networks, configs and secrets the stack owns (``dev.declarun.stack``) or whose names it wants,
each service's tasks (where they run, in which state, whether they run its present spec),
the nodes, and the host input digests. The diff (``plan.swarm_diff``) is a pure function of
it.

The **fingerprint** a saved plan records covers what the plan acts on — the objects, their
labels and each service's spec version — and the input digests, not the tasks: Swarm moves
tasks by itself (a node dies, a task is restarted), and a plan made a moment before stays
the right plan for a spec nobody changed.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from declarun.frozen import FrozenDict, thaw
from declarun.plan.identity import LABEL_STACK, canonical_json, sha256_text

__all__ = [
    "ObservedCluster",
    "ObservedNode",
    "ObservedService",
    "ObservedSwarmObject",
    "ObservedTask",
]

_EMPTY: FrozenDict[str, str] = FrozenDict()
_NONE: FrozenDict[str, Any] = FrozenDict()


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedTask:
    """One task of a service: ``node`` is the node's hostname (its id when unknown)."""

    id: str
    slot: int | None
    node: str
    state: str
    desired_state: str
    current: bool  # runs the service's present spec
    error: str = ""
    exit_code: int | None = None
    timestamp: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedService:
    """A service as the manager reports it."""

    id: str
    name: str
    version: int
    labels: FrozenDict[str, str] = _EMPTY
    image: str = ""  # the image its spec names
    replicas: int | None = None
    is_job: bool = False
    update_state: str = ""
    update_message: str = ""
    published: tuple[str, ...] = ()
    tasks: tuple[ObservedTask, ...] = ()

    def live(self) -> tuple[ObservedTask, ...]:
        """The tasks the orchestrator wants running now (not the history)."""
        return tuple(t for t in self.tasks if t.desired_state in ("running", "ready"))

    def running(self) -> int:
        """How many tasks run the present spec."""
        return sum(1 for t in self.live() if t.state == "running" and t.current)

    def completed(self) -> int:
        """How many tasks of a job completed (on the present spec)."""
        return sum(1 for t in self.tasks if t.state == "complete" and t.current)


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedSwarmObject:
    """An overlay network, a config or a secret."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedNode:
    """A node of the Swarm."""

    id: str
    hostname: str
    role: str
    state: str
    availability: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedCluster:
    """What a Swarm holds for one stack, at one moment (maps keyed by engine name)."""

    stack: str
    platform: str = "linux/amd64"
    routing_mesh: bool = False
    services: FrozenDict[str, ObservedService] = _NONE
    networks: FrozenDict[str, ObservedSwarmObject] = _NONE
    configs: FrozenDict[str, ObservedSwarmObject] = _NONE
    secrets: FrozenDict[str, ObservedSwarmObject] = _NONE
    nodes: tuple[ObservedNode, ...] = ()
    inputs: FrozenDict[str, str] = _EMPTY

    def owns(self, labels: FrozenDict[str, str]) -> bool:
        """True when an object with these labels belongs to this stack."""
        return labels.get(LABEL_STACK) == self.stack

    def down_nodes(self) -> tuple[str, ...]:
        """Hostnames of the nodes that are not ready."""
        return tuple(n.hostname for n in self.nodes if n.state != "ready")

    def to_data(self) -> dict[str, Any]:
        """The fingerprinted part as plain data (see the module docstring)."""

        def objects(mapping: FrozenDict[str, ObservedSwarmObject]) -> list[dict[str, Any]]:
            return [
                {"id": o.id, "name": o.name, "labels": thaw(o.labels)}
                for _, o in sorted(mapping.items())
            ]

        return {
            "stack": self.stack,
            "platform": self.platform,
            "routing_mesh": self.routing_mesh,
            "services": [
                {
                    f.name: thaw(getattr(s, f.name))
                    for f in fields(s)
                    if f.name in ("id", "name", "version", "labels", "image")
                }
                for _, s in sorted(self.services.items())
            ],
            "networks": objects(self.networks),
            "configs": objects(self.configs),
            "secrets": objects(self.secrets),
            "inputs": dict(sorted(self.inputs.items())),
        }

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of :meth:`to_data`'s canonical form."""
        return sha256_text(canonical_json(self.to_data()))
