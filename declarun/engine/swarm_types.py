"""What a Swarm manager answers, as typed values: services, tasks, nodes, configs, secrets.

As :mod:`declarun.engine.types` does for one engine, the adapter reads the Docker Engine
API's Swarm JSON once into these frozen values. A service keeps its whole ``Spec`` (frozen
plain data): the reconciler sends a spec back with each update, and reads its replica count,
endpoint and task template from it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from declarun.frozen import FrozenDict

__all__ = [
    "NodeInfo",
    "ServiceInfo",
    "SwarmInfo",
    "SwarmObject",
    "TaskInfo",
]

_EMPTY: FrozenDict[str, str] = FrozenDict()
_NO_SPEC: FrozenDict[str, Any] = FrozenDict()


@dataclass(frozen=True, slots=True, kw_only=True)
class SwarmInfo:
    """``GET /info``'s ``Swarm``: whether this engine is a node of an active Swarm, and a
    manager (only a manager can create services)."""

    node_id: str
    state: str  # inactive, pending, active, error, locked
    is_manager: bool
    nodes: int = 0
    managers: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class NodeInfo:
    """A node as ``GET /nodes`` lists it."""

    id: str
    hostname: str
    role: str  # manager | worker
    state: str  # ready, down, unknown, disconnected
    availability: str  # active, pause, drain
    address: str = ""
    labels: FrozenDict[str, str] = _EMPTY  # the node's own labels (Spec.Labels)


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceInfo:
    """A service as ``GET /services`` shows it.

    ``version`` is the index an update must name; ``update_state`` the rolling update's
    (``updating``, ``paused``, ``completed``, ``rollback_started``, ``rollback_paused``,
    ``rollback_completed``; empty when none ran), ``update_message`` its text.
    """

    id: str
    name: str
    version: int
    labels: FrozenDict[str, str] = _EMPTY
    spec: FrozenDict[str, Any] = _NO_SPEC
    update_state: str = ""
    update_message: str = ""
    published: tuple[str, ...] = ()  # "8080->80/tcp (host)" as the endpoint reports them

    @property
    def replicas(self) -> int | None:
        """The wanted replica count (jobs: total completions); None for global services."""
        mode = self.spec.get("Mode") or {}
        if "Replicated" in mode:
            return int((mode["Replicated"] or {}).get("Replicas", 1))
        if "ReplicatedJob" in mode:
            job = mode["ReplicatedJob"] or {}
            return int(job.get("TotalCompletions") or job.get("MaxConcurrent") or 1)
        return None

    @property
    def is_job(self) -> bool:
        """True for a replicated or global job (runs to completion)."""
        mode = self.spec.get("Mode") or {}
        return "ReplicatedJob" in mode or "GlobalJob" in mode


@dataclass(frozen=True, slots=True, kw_only=True)
class TaskInfo:
    """A task (one scheduled replica) as ``GET /tasks`` shows it.

    ``state`` is the task's actual state (new, pending, assigned, accepted, preparing,
    starting, running, complete, failed, shutdown, rejected, orphaned, remove);
    ``desired_state`` what the orchestrator wants of it; ``error`` the reason it failed,
    ``exit_code`` its container's, when it has one. ``current`` says whether it runs the
    service's present task template (an update has reached it).
    """

    id: str
    service_id: str
    slot: int | None
    node_id: str
    state: str
    desired_state: str
    message: str = ""
    error: str = ""
    exit_code: int | None = None
    container_id: str = ""
    timestamp: str = ""  # of its latest state change, RFC 3339
    current: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class SwarmObject:
    """A config or a secret, as listed: the data of a secret is never given back."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
