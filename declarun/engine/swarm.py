"""The docker-py adapter of the Swarm port: a Docker engine that manages a Swarm.

:class:`DockerSwarmEngine` is the one-engine adapter (:class:`~declarun.engine.dockerpy.
DockerEngine`) plus services, tasks, nodes, configs and secrets. Service specs are sent as
they are given (``POST /services/create``, ``POST /services/{id}/update?version=N``), not
through docker-py's keyword helpers, which know only part of the spec (no jobs, no
capabilities); errors become kinds exactly as for one engine.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from declarun.engine.dockerpy import DockerEngine, _call, _closing, _stream
from declarun.engine.swarm_types import NodeInfo, ServiceInfo, SwarmInfo, SwarmObject, TaskInfo
from declarun.frozen import FrozenDict, freeze

__all__ = ["DockerSwarmEngine", "task_is_current"]

# Keys Swarm fills in on the service's template but not on its tasks' copy of it.
_TEMPLATE_ONLY = frozenset({"Runtime"})


def _labels(raw: Any) -> FrozenDict[str, str]:
    return FrozenDict(sorted((raw or {}).items()))


def _published(raw: dict[str, Any]) -> tuple[str, ...]:
    ports = (raw.get("Endpoint") or {}).get("Ports") or ()
    shown = []
    for port in ports:
        published = port.get("PublishedPort")
        target = port.get("TargetPort")
        protocol = port.get("Protocol") or "tcp"
        mode = port.get("PublishMode") or "ingress"
        shown.append(f"{published or '*'}->{target}/{protocol} ({mode})")
    return tuple(shown)


def _service(raw: dict[str, Any]) -> ServiceInfo:
    spec = raw.get("Spec") or {}
    status = raw.get("UpdateStatus") or {}
    return ServiceInfo(
        id=str(raw["ID"]),
        name=str(spec.get("Name") or ""),
        version=int((raw.get("Version") or {}).get("Index") or 0),
        labels=_labels(spec.get("Labels")),
        spec=freeze(spec),
        update_state=str(status.get("State") or ""),
        update_message=str(status.get("Message") or ""),
        published=_published(raw),
    )


def _without(template: Any) -> Any:
    if not isinstance(template, dict):
        return template
    return {k: v for k, v in template.items() if k not in _TEMPLATE_ONLY and v not in (None, {})}


def task_is_current(task: Mapping[str, Any], service_spec: Mapping[str, Any]) -> bool:
    """True when a task (raw ``GET /tasks`` JSON) runs the service's present task template."""
    return bool(_without(task.get("Spec")) == _without(service_spec.get("TaskTemplate")))


def _task(raw: dict[str, Any], specs: Mapping[str, Mapping[str, Any]]) -> TaskInfo:
    status = raw.get("Status") or {}
    container = status.get("ContainerStatus") or {}
    code = container.get("ExitCode")
    service_id = str(raw.get("ServiceID") or "")
    spec = specs.get(service_id)
    return TaskInfo(
        id=str(raw["ID"]),
        service_id=service_id,
        slot=int(raw["Slot"]) if raw.get("Slot") is not None else None,
        node_id=str(raw.get("NodeID") or ""),
        state=str(status.get("State") or ""),
        desired_state=str(raw.get("DesiredState") or ""),
        message=str(status.get("Message") or ""),
        error=str(status.get("Err") or ""),
        exit_code=int(code) if code is not None else None,
        container_id=str(container.get("ContainerID") or ""),
        timestamp=str(status.get("Timestamp") or ""),
        current=True if spec is None else task_is_current(raw, spec),
    )


def _node(raw: dict[str, Any]) -> NodeInfo:
    spec = raw.get("Spec") or {}
    status = raw.get("Status") or {}
    return NodeInfo(
        id=str(raw["ID"]),
        hostname=str((raw.get("Description") or {}).get("Hostname") or ""),
        role=str(spec.get("Role") or ""),
        state=str(status.get("State") or ""),
        availability=str(spec.get("Availability") or ""),
        address=str(status.get("Addr") or ""),
        labels=_labels(spec.get("Labels")),
    )


def _object(raw: dict[str, Any]) -> SwarmObject:
    spec = raw.get("Spec") or {}
    return SwarmObject(
        id=str(raw["ID"]), name=str(spec.get("Name") or ""), labels=_labels(spec.get("Labels"))
    )


class DockerSwarmEngine(DockerEngine):
    """A :class:`~declarun.engine.swarm_port.SwarmEngine` over a ``docker.DockerClient``."""

    # -- the swarm and its nodes ---------------------------------------------------------------

    def swarm_info(self) -> SwarmInfo:
        raw = _call(self.client.api.info).get("Swarm") or {}
        return SwarmInfo(
            node_id=str(raw.get("NodeID") or ""),
            state=str(raw.get("LocalNodeState") or "inactive"),
            is_manager=bool(raw.get("ControlAvailable")),
            nodes=int(raw.get("Nodes") or 0),
            managers=int(raw.get("Managers") or 0),
        )

    def list_nodes(self) -> list[NodeInfo]:
        return [_node(raw) for raw in _call(self.client.api.nodes)]

    # -- services ------------------------------------------------------------------------------

    def list_services(self) -> list[ServiceInfo]:
        return [_service(raw) for raw in _call(self.client.api.services)]

    def inspect_service(self, name: str) -> ServiceInfo:
        return _service(_call(self.client.api.inspect_service, name))

    def create_service(self, spec: Mapping[str, Any]) -> str:
        api = self.client.api
        response = _call(api._post_json, api._url("/services/create"), data=dict(spec))
        created = _call(api._result, response, True)
        return str(created["ID"])

    def update_service(self, name: str, version: int, spec: Mapping[str, Any]) -> None:
        api = self.client.api
        response = _call(
            api._post_json,
            api._url("/services/{0}/update", name),
            data=dict(spec),
            params={"version": version},
        )
        _call(api._raise_for_status, response)

    def remove_service(self, name: str) -> None:
        _call(self.client.api.remove_service, name)

    def service_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False, follow: bool = False
    ) -> Iterator[bytes]:
        chunks = _call(
            self.client.api.service_logs,
            name,
            follow=follow,
            stdout=True,
            stderr=True,
            timestamps=timestamps,
            tail="all" if tail is None else tail,
            is_tty=False,
        )
        if follow:
            return _closing(chunks)
        return _stream(chunks)

    # -- tasks ---------------------------------------------------------------------------------

    def list_tasks(self, service: str | None = None) -> list[TaskInfo]:
        if service is not None:
            found = _call(self.client.api.inspect_service, service)
            specs = {str(found["ID"]): found.get("Spec") or {}}
            raw_tasks = _call(self.client.api.tasks, filters={"service": str(found["ID"])})
        else:
            specs = {str(s["ID"]): s.get("Spec") or {} for s in _call(self.client.api.services)}
            raw_tasks = _call(self.client.api.tasks)
        return [_task(raw, specs) for raw in raw_tasks]

    def task_logs(self, task_id: str, *, tail: int | None = None) -> bytes:
        api = self.client.api
        response = _call(
            api._get,
            api._url("/tasks/{0}/logs", task_id),
            params={"stdout": 1, "stderr": 1, "tail": "all" if tail is None else tail},
            stream=False,
        )
        data = _call(api._get_result_tty, False, response, False)
        return data if isinstance(data, bytes) else str(data).encode()

    # -- configs and secrets -------------------------------------------------------------------

    def list_configs(self) -> list[SwarmObject]:
        return [_object(raw) for raw in _call(self.client.api.configs)]

    def create_config(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        created = _call(self.client.api.create_config, name, data, labels=dict(labels))
        return str(created["ID"])

    def remove_config(self, name: str) -> None:
        _call(self.client.api.remove_config, name)

    def list_secrets(self) -> list[SwarmObject]:
        return [_object(raw) for raw in _call(self.client.api.secrets)]

    def create_secret(self, name: str, data: bytes, labels: Mapping[str, str]) -> str:
        created = _call(self.client.api.create_secret, name, data, labels=dict(labels))
        return str(created["ID"])

    def remove_secret(self, name: str) -> None:
        _call(self.client.api.remove_secret, name)
