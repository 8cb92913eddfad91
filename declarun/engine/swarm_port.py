"""The Swarm side of the engine port: what declarun asks of a Swarm manager.

:class:`SwarmEngine` is an :class:`~declarun.engine.port.Engine` (images, networks, events
work as on one engine) with services, tasks, nodes, configs and secrets besides. Requests go
in as the Docker Engine API's own JSON (``plan.services`` builds the specs); answers come
back typed (:mod:`declarun.engine.swarm_types`); every failure is an error kind
(:mod:`declarun.errdefs`), ``NotFound`` for what is not there.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Protocol

from declarun.engine.port import Engine
from declarun.engine.swarm_types import NodeInfo, ServiceInfo, SwarmInfo, SwarmObject, TaskInfo

__all__ = ["ConfigsAndSecrets", "Nodes", "Services", "SwarmEngine", "Tasks"]


class Nodes(Protocol):
    """The Swarm and its nodes."""

    def swarm_info(self) -> SwarmInfo:
        """Whether this engine is a node (and a manager) of an active Swarm."""
        ...

    def list_nodes(self) -> list[NodeInfo]:
        """Every node of the Swarm."""
        ...


class Services(Protocol):
    """Services: made, updated, removed, and their merged logs."""

    def list_services(self) -> list[ServiceInfo]:
        """Every service."""
        ...

    def inspect_service(self, name: str) -> ServiceInfo:
        """One service, by name or id."""
        ...

    def create_service(self, spec: Mapping[str, Any]) -> str:
        """Create a service from a ``POST /services/create`` body; returns its id."""
        ...

    def update_service(self, name: str, version: int, spec: Mapping[str, Any]) -> None:
        """Replace the spec of ``name`` (at ``version``; ``Conflict`` if it moved on) with
        ``spec``: Swarm rolls its tasks as the spec's ``UpdateConfig`` says."""
        ...

    def remove_service(self, name: str) -> None:
        """Remove ``name`` and its tasks."""
        ...

    def service_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False, follow: bool = False
    ) -> Iterator[bytes]:
        """The log of every task of ``name`` (from every node), in chunks as they come."""
        ...


class Tasks(Protocol):
    """Tasks: the replicas the orchestrator scheduled."""

    def list_tasks(self, service: str | None = None) -> list[TaskInfo]:
        """Every task (of ``service``, by name or id), old ones kept by the task history
        included."""
        ...

    def task_logs(self, task_id: str, *, tail: int | None = None) -> bytes:
        """The log of one task, wherever it ran."""
        ...


class ConfigsAndSecrets(Protocol):
    """Configs and secrets: immutable named files for services."""

    def list_configs(self) -> list[SwarmObject]:
        """Every config."""
        ...

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        """Create config ``name`` holding ``data``; returns its id."""
        ...

    def remove_config(self, name: str) -> None:
        """Remove config ``name``."""
        ...

    def list_secrets(self) -> list[SwarmObject]:
        """Every secret (without its data)."""
        ...

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        """Create secret ``name`` holding ``data``; returns its id."""
        ...

    def remove_secret(self, name: str) -> None:
        """Remove secret ``name``."""
        ...


class SwarmEngine(Engine, Nodes, Services, Tasks, ConfigsAndSecrets, Protocol):
    """A Swarm manager: everything of :class:`Engine`, and the Swarm's own objects."""
