"""The stacks ``apply.py`` measures: one generator, written out both as a declarun stack and
as the equivalent Docker Compose v1 file, and a snapshot that matches a stack exactly.

Shape of an ``n``-container stack (``bench``): one network ``net`` that every container joins,
two named volumes mounted by every tenth container, busybox ``sleep 3600`` everywhere;
the first ``n // 10`` containers (``db*``) have a 1 s health check, the next ``n // 10``
(``api*``) depend on one of them being *healthy*, every other one (``app*``) on one ``api``
having *started*. So a cold apply has three waves, and it waits for health once.
"""

from __future__ import annotations

import hashlib
from typing import Any

from declarun.plan.desired import DesiredState
from declarun.plan.observed import ObservedState

__all__ = ["STACK", "compose_file", "matching_snapshot", "stack_file"]

STACK = "bench"
_COMMAND = ["sleep", "3600"]
_HEALTH = {"test": ["CMD", "true"], "interval": "1s", "timeout": "2s", "retries": 3}


def _roles(count: int) -> list[tuple[str, str | None, str | None]]:
    """(name, dependency, condition) of each container, in order."""
    tier = max(1, count // 10)
    roles: list[tuple[str, str | None, str | None]] = []
    for i in range(count):
        if i < tier:
            roles.append((f"db{i}", None, None))
        elif i < 2 * tier:
            roles.append((f"api{i - tier}", f"db{(i - tier) % tier}", "healthy"))
        else:
            roles.append((f"app{i - 2 * tier}", f"api{i % tier}", "started"))
    return roles


def stack_file(count: int, image: str, stack_name: str = STACK) -> dict[str, Any]:
    """The declarun stack (plain data, to dump as YAML)."""
    containers: dict[str, Any] = {}
    for i, (name, needs, condition) in enumerate(_roles(count)):
        spec: dict[str, Any] = {"image": image, "command": list(_COMMAND), "networks": ["net"]}
        if name.startswith("db"):
            spec["healthcheck"] = dict(_HEALTH)
        if needs is not None:
            spec["depends_on"] = {needs: {"condition": condition}}
        if i % 10 == 0:
            spec["volumes"] = [f"data{(i // 10) % 2}:/data"]
        containers[name] = spec
    return {
        "stack": stack_name,
        "volumes": {"data0": {}, "data1": {}},
        "networks": {"net": {}},
        "containers": containers,
    }


def compose_file(count: int, image: str) -> dict[str, Any]:
    """The same stack for ``docker-compose`` v1 (file format 2.4: depends_on conditions)."""
    compose_conditions = {"healthy": "service_healthy", "started": "service_started"}
    services: dict[str, Any] = {}
    for i, (name, needs, condition) in enumerate(_roles(count)):
        spec: dict[str, Any] = {"image": image, "command": list(_COMMAND), "networks": ["net"]}
        if name.startswith("db"):
            spec["healthcheck"] = dict(_HEALTH)
        if needs is not None and condition is not None:
            spec["depends_on"] = {needs: {"condition": compose_conditions[condition]}}
        if i % 10 == 0:
            spec["volumes"] = [f"data{(i // 10) % 2}:/data"]
        services[name] = spec
    return {
        "version": "2.4",
        "services": services,
        "volumes": {"data0": {}, "data1": {}},
        "networks": {"net": {}},
    }


def _fake_id(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def matching_snapshot(desired: DesiredState) -> ObservedState:
    """The snapshot of an engine that already runs exactly ``desired``: every object present,
    owned, carrying the labels apply would have given it, containers running (and healthy
    where they have a health check), images present with the ids the containers run."""
    images = []
    image_ids: dict[str, str] = {}
    for image in desired.images.values():
        image_ids[image.name] = f"sha256:{_fake_id('image ' + image.ref)}"
        images.append({"ref": image.ref, "id": image_ids[image.name]})
    containers = []
    for container in desired.containers.values():
        body = container.create_body()
        host = body["HostConfig"]
        ports = sorted(
            f"{b['HostIp'] or '0.0.0.0'}:{b['HostPort']}->{port.split('/')[0]}/{port.split('/')[1]}"
            for port, bindings in host["PortBindings"].items()
            for b in bindings
            if b["HostPort"]
        )
        networks = [host["NetworkMode"], *(name for name, _ in container.extra_networks)]
        containers.append(
            {
                "id": _fake_id("container " + container.engine_name),
                "name": container.engine_name,
                "labels": body["Labels"],
                "image": container.image_ref,
                "image_id": image_ids[container.image],
                "state": "running",
                "health": "healthy" if "Healthcheck" in body else None,
                "networks": sorted(networks),
                "volumes": sorted(m["Source"] for m in host["Mounts"] if m["Type"] == "volume"),
                "ports": ports,
            }
        )
    networks = [
        {
            "id": _fake_id("network " + n.engine_name),
            "name": n.engine_name,
            "labels": dict(n.body["Labels"]),
        }
        for n in desired.networks.values()
    ]
    volumes = [
        {"name": v.engine_name, "labels": dict(v.body["Labels"])} for v in desired.volumes.values()
    ]
    return ObservedState.from_data(
        {
            "stack": desired.stack,
            "platform": desired.platform,
            "containers": containers,
            "networks": networks,
            "volumes": volumes,
            "images": images,
        }
    )
