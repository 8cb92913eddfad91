"""Observation on a Swarm: one look at the manager and the host, as immutable values.

:func:`observe_swarm` reads, through the Swarm port, the services, overlay networks,
configs and secrets that belong to the stack (``dev.declarun.stack``) or hold a name it
wants, every task of those services and the nodes; and, on the host, the digests of the
stack's inputs and the contents of the files that become configs and secrets (env files,
read-only bind sources). It works out the desired state against them
(``plan.swarm_desired``) and returns both.

Whether the cluster has Swarm's routing mesh is read from this machine's kernel (IPVS
loaded: ``/sys/module/ip_vs``), the usual case of a client on a manager;
``DECLARUN_SWARM_ROUTING_MESH=1|0`` says so for a cluster elsewhere.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from declarun.engine.swarm_port import SwarmEngine
from declarun.engine.swarm_types import ServiceInfo, TaskInfo
from declarun.frozen import FrozenDict
from declarun.observe.digests import input_digests
from declarun.observe.reading import failures_as_engine_errors, owned_or_wanted
from declarun.plan.lock import Lock
from declarun.plan.swarm_desired import DesiredSwarm, HostFile, desired_swarm
from declarun.plan.swarm_observed import (
    ObservedCluster,
    ObservedNode,
    ObservedService,
    ObservedSwarmObject,
    ObservedTask,
)
from declarun.stack.model import Stack

__all__ = [
    "MAX_FILES",
    "MAX_FILE_BYTES",
    "SwarmObservation",
    "host_files",
    "observe_swarm",
    "read_cluster",
    "routing_mesh",
]

#: Swarm keeps a config or secret of at most 500 KiB (``docker config create`` says so).
MAX_FILE_BYTES = 500 * 1024
#: A read-only bind-mounted directory becomes one config per file: at most this many.
MAX_FILES = 100


@dataclass(frozen=True, slots=True)
class SwarmObservation:
    """One look at a Swarm for a stack, and what the stack wants given what was seen."""

    observed: ObservedCluster
    desired: DesiredSwarm


def routing_mesh(environ: Mapping[str, str] | None = None) -> bool:
    """Whether Swarm's routing mesh (IPVS) can be used (see the module docstring)."""
    env = os.environ if environ is None else environ
    said = env.get("DECLARUN_SWARM_ROUTING_MESH", "").strip().lower()
    if said in ("1", "true", "yes", "on"):
        return True
    if said in ("0", "false", "no", "off"):
        return False
    return Path("/sys/module/ip_vs").exists()


def _read(path: Path, relative: str) -> HostFile:
    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            return HostFile(
                relative=relative,
                data=None,
                problem=f"{path} has {size} bytes; a Swarm config holds at most {MAX_FILE_BYTES}",
            )
        return HostFile(relative=relative, data=path.read_bytes())
    except OSError as exc:
        return HostFile(relative=relative, data=None, problem=f"cannot read {path}: {exc.strerror}")


def _tree(root: Path) -> tuple[HostFile, ...]:
    found: list[HostFile] = []
    for directory, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames):
            path = Path(directory) / name
            found.append(_read(path, path.relative_to(root).as_posix()))
            if len(found) > MAX_FILES:
                problem = f"{root} has more than {MAX_FILES} files to turn into configs"
                return (HostFile(relative="", data=None, problem=problem),)
    return tuple(found)


def host_files(stack: Stack) -> dict[str, tuple[HostFile, ...]]:
    """The contents of every env file and read-only bind source of ``stack``, by path."""
    found: dict[str, tuple[HostFile, ...]] = {}
    for container in stack.containers.values():
        for env_file in container.env_files:
            found.setdefault(str(env_file.path), (_read(env_file.path, ""),))
        for mount in container.mounts:
            if mount.type != "bind" or not mount.read_only or mount.source is None:
                continue
            if mount.source in found:
                continue
            source = Path(mount.source)
            if source.is_dir():
                found[mount.source] = _tree(source)
            elif source.exists():
                found[mount.source] = (_read(source, ""),)
            else:
                problem = f"{source} does not exist"
                found[mount.source] = (HostFile(relative="", data=None, problem=problem),)
    return found


def _task(task: TaskInfo, hostnames: Mapping[str, str]) -> ObservedTask:
    return ObservedTask(
        id=task.id,
        slot=task.slot,
        node=hostnames.get(task.node_id, task.node_id),
        state=task.state,
        desired_state=task.desired_state,
        current=task.current,
        error=task.error,
        exit_code=task.exit_code,
        timestamp=task.timestamp,
    )


def _service(
    service: ServiceInfo, tasks: list[TaskInfo], hostnames: Mapping[str, str]
) -> ObservedService:
    container = (service.spec.get("TaskTemplate") or {}).get("ContainerSpec") or {}
    mine = sorted(
        (t for t in tasks if t.service_id == service.id), key=lambda t: (t.slot or 0, t.timestamp)
    )
    return ObservedService(
        id=service.id,
        name=service.name,
        version=service.version,
        labels=service.labels,
        image=str(container.get("Image") or ""),
        replicas=service.replicas,
        is_job=service.is_job,
        update_state=service.update_state,
        update_message=service.update_message,
        published=service.published,
        tasks=tuple(_task(t, hostnames) for t in mine),
    )


def read_cluster(
    engine: SwarmEngine,
    stack: str,
    *,
    wanted: frozenset[tuple[str, str]] = frozenset(),
    platform: str = "linux/amd64",
    mesh: bool = False,
    inputs: FrozenDict[str, str] | None = None,
) -> ObservedCluster:
    """What the Swarm holds of ``stack`` (owned objects and the ``wanted`` names)."""

    keep = owned_or_wanted(stack, wanted)
    nodes = engine.list_nodes()
    hostnames = {n.id: n.hostname for n in nodes}
    services = [s for s in engine.list_services() if keep("service", s.name, s.labels)]
    tasks = engine.list_tasks() if services else []
    networks = [
        ObservedSwarmObject(id=n.id, name=n.name, labels=n.labels)
        for n in engine.list_networks()
        if keep("network", n.name, n.labels)
    ]
    configs = [
        ObservedSwarmObject(id=c.id, name=c.name, labels=c.labels)
        for c in engine.list_configs()
        if keep("config", c.name, c.labels)
    ]
    secrets = [
        ObservedSwarmObject(id=s.id, name=s.name, labels=s.labels)
        for s in engine.list_secrets()
        if keep("secret", s.name, s.labels)
    ]
    return ObservedCluster(
        stack=stack,
        platform=platform,
        routing_mesh=mesh,
        services=FrozenDict(sorted((s.name, _service(s, tasks, hostnames)) for s in services)),
        networks=FrozenDict(sorted((n.name, n) for n in networks)),
        configs=FrozenDict(sorted((c.name, c) for c in configs)),
        secrets=FrozenDict(sorted((s.name, s) for s in secrets)),
        nodes=tuple(
            ObservedNode(
                id=n.id,
                hostname=n.hostname,
                role=n.role,
                state=n.state,
                availability=n.availability,
            )
            for n in sorted(nodes, key=lambda n: n.hostname)
        ),
        inputs=inputs if inputs is not None else FrozenDict(),
    )


def observe_swarm(
    engine: SwarmEngine, stack: Stack, *, lock: Lock | None = None
) -> SwarmObservation:
    """Look at the Swarm and the host for ``stack`` (see the module docstring)."""
    mesh = routing_mesh()
    with failures_as_engine_errors("the swarm's state"):
        platform = engine.version().platform
        inputs = input_digests(stack)
        desired = desired_swarm(
            stack,
            routing_mesh=mesh,
            inputs=inputs,
            host_files=host_files(stack),
            lock=lock,
            platform=platform,
        )
        observed = read_cluster(
            engine,
            stack.name,
            wanted=desired.engine_names,
            platform=platform,
            mesh=mesh,
            inputs=inputs,
        )
    return SwarmObservation(observed, desired)
