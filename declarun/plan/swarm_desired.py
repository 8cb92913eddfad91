"""The desired state on a Docker Swarm: the stack as services, overlay networks, configs and
secrets, in one place (the Swarm counterpart of ``plan.desired``).

Each container of the stack becomes one **service** ``<stack>-<container>`` with its
``replicas`` (a ``run: once`` container a *replicated job*), each network an **overlay
network** (attachable, ``internal`` kept), each env file and read-only bind-mounted file a
**config** — a **secret** for an env file marked ``secret: true`` — named by its content
(``<stack>-<file>-<sha256:12>``), so a changed file is a new name in the service's spec and
Swarm rolls the service. Named volumes are made by Swarm on each node a task lands on, from
the mount's volume options. What Swarm cannot express as written is said as an ``adapted``
note of the service (a port's host address, a fixed IPv4 address, a writable bind mount),
never dropped silently; ``specs/scale-out.md`` has the whole mapping.

Pure: the host files' contents and digests arrive from the observer (``observe.swarm``).
The canonical configuration a service records (``dev.declarun.config``) is the container's
(``plan.configs``) plus ``replicas`` and ``placement``, which on a cluster are part of what
a service is; a plan's reasons compare it field by field as on one engine.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, Literal

from declarun.frozen import FrozenDict, freeze
from declarun.plan.bodies import (
    add_network_options,
    definition_labels,
    healthcheck_body,
    tmpfs_options,
)
from declarun.plan.configs import container_config, network_config
from declarun.plan.desired import (
    DesiredNetwork,
    external_network,
    network_engine_name,
    volume_engine_name,
)
from declarun.plan.identity import (
    LABEL_CONFIG,
    LABEL_CONFIG_HASH,
    LABEL_KEEP,
    LABEL_STACK,
    canonical_json,
    config_hash,
    ownership_labels,
)
from declarun.plan.inputs import DesiredInput, container_inputs
from declarun.plan.lock import Lock, image_platform
from declarun.stack.model import Container, Mount, Network, Placement, Stack
from declarun.stack.naming import image_reference

__all__ = [
    "SWARM_NAME_MAX",
    "DesiredService",
    "DesiredSwarm",
    "DesiredSwarmFile",
    "DesiredSwarmNetwork",
    "HostFile",
    "ServiceInput",
    "desired_swarm",
    "placement_config",
]

SWARM_NAME_MAX = 64
_NS = 1_000_000_000
_MIN_MONITOR = timedelta(seconds=5)
_MAX_MONITOR = timedelta(minutes=2)
_ENV_DIR = "/run/declarun/env"
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_.-]+")


@dataclass(frozen=True, slots=True, kw_only=True)
class HostFile:
    """One host file a service receives as a config or secret: ``relative`` is its path
    under the bind mount's source ("" when the source is the file itself); ``data`` is None
    when it could not be read (``problem`` says why)."""

    relative: str
    data: bytes | None
    problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredSwarmFile:
    """A config or secret to exist: content-addressed, so never updated, only replaced by a
    new name."""

    id: str  # config:<short> or secret:<short>
    kind: Literal["config", "secret"]
    name: str  # <file>-<sha12>
    engine_name: str
    source: str  # the host path it holds
    digest: str  # sha256:<hex> of the data
    data: bytes
    labels: FrozenDict[str, str]


# An input file of a service, by digest: the same value as a container's, recorded in a label
# as on one engine.
ServiceInput = DesiredInput

# An overlay network to exist, with its create body (an ``external`` one is only used: never
# created, changed or removed): the same value as a network on one engine.
DesiredSwarmNetwork = DesiredNetwork


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredService:
    """One service to exist, with its spec.

    ``spec_json`` is the ``POST /services/create`` body; its config and secret references
    name their objects (``ConfigName``/``SecretName``) and the reconciler adds the ids the
    API also wants. ``notes`` are what Swarm cannot take as the stack writes it.
    """

    id: str  # service:<container>
    name: str
    engine_name: str
    image_ref: str
    run: str  # service | once
    replicas: int
    healthcheck: bool  # the stack gives a health check (tasks then run only once healthy)
    config_json: str
    config_hash: str
    inputs: tuple[ServiceInput, ...]
    files: tuple[str, ...]  # ids of the configs and secrets it mounts
    networks: tuple[str, ...]  # ids of the networks it joins
    notes: tuple[str, ...]
    problems: tuple[str, ...]  # what makes it impossible (an unreadable file, a build)
    spec_json: str

    @property
    def config(self) -> dict[str, Any]:
        """The canonical configuration (a fresh copy)."""
        config: dict[str, Any] = json.loads(self.config_json)
        return config

    def spec(self) -> dict[str, Any]:
        """The service spec as plain data (a fresh copy each call)."""
        spec: dict[str, Any] = json.loads(self.spec_json)
        return spec


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredSwarm:
    """Everything the stack wants on a Swarm."""

    stack: str
    routing_mesh: bool
    networks: FrozenDict[str, DesiredSwarmNetwork]
    files: FrozenDict[str, DesiredSwarmFile]  # by id
    services: FrozenDict[str, DesiredService]  # by container name

    @property
    def engine_names(self) -> frozenset[tuple[str, str]]:
        """(kind, engine name) of every object declarun would own."""
        return frozenset(
            [("network", n.engine_name) for n in self.networks.values()]
            + [(f.kind, f.engine_name) for f in self.files.values()]
            + [("service", s.engine_name) for s in self.services.values()]
        )


def _ns(delta: timedelta) -> int:
    return round(delta.total_seconds() * _NS)


def placement_config(placement: Placement | None) -> dict[str, Any] | None:
    """``placement`` as the canonical configuration records it."""
    if placement is None:
        return None
    return {
        "constraints": list(placement.constraints),
        "spread": list(placement.spread),
        "max_replicas_per_node": placement.max_replicas_per_node,
    }


def _network(stack: Stack, network: Network) -> DesiredSwarmNetwork:
    if network.external:
        return external_network(stack, network)
    engine = network_engine_name(stack, network.name)
    config = {**network_config(network), "driver": "overlay"}
    labels = {**network.labels, **ownership_labels(stack.name, "network", network.name, config)}
    body: dict[str, Any] = {
        "Name": engine,
        "Driver": "overlay",
        "Internal": network.internal,
        # Attachable: `docker run --network` and one-off containers can join it too.
        "Attachable": True,
        "Labels": labels,
    }
    add_network_options(body, network)
    return DesiredSwarmNetwork(
        id=f"network:{network.name}",
        name=network.name,
        engine_name=engine,
        config=freeze(config),
        config_hash=config_hash(config),
        body=freeze(body),
    )


def _file_name(stack: str, path: str, digest: str) -> tuple[str, str]:
    """(short name, engine name) of a content-addressed config or secret."""
    base = _NAME_CHARS.sub("_", posixpath.basename(path)).strip("._-") or "file"
    suffix = digest.removeprefix("sha256:")[:12]
    room = SWARM_NAME_MAX - len(stack) - len(suffix) - 2
    short = f"{base[: max(1, room)]}-{suffix}"
    return short, f"{stack}-{short}"


def _swarm_file(
    stack: Stack, kind: Literal["config", "secret"], source: str, data: bytes
) -> DesiredSwarmFile:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    short, engine = _file_name(stack.name, source, digest)
    labels = ownership_labels(stack.name, kind, short, {"source": source, "sha256": digest})
    return DesiredSwarmFile(
        id=f"{kind}:{short}",
        kind=kind,
        name=short,
        engine_name=engine,
        source=source,
        digest=digest,
        data=data,
        labels=FrozenDict(sorted(labels.items())),
    )


class _ServiceBuilder:
    """Works out one service: its spec, its files, its notes (mutable while it works)."""

    def __init__(
        self,
        stack: Stack,
        container: Container,
        host_files: Mapping[str, tuple[HostFile, ...]],
        routing_mesh: bool,
    ) -> None:
        self.stack = stack
        self.container = container
        self.host_files = host_files
        self.routing_mesh = routing_mesh
        self.files: list[DesiredSwarmFile] = []
        self.notes: list[str] = []
        self.problems: list[str] = []
        self.config_refs: list[dict[str, Any]] = []
        self.secret_refs: list[dict[str, Any]] = []

    def mounts(self) -> list[dict[str, Any]]:
        mounts = []
        for mount in self.container.mounts:
            if mount.type == "bind" and mount.read_only and mount.source is not None:
                self.bind_as_configs(mount)
                continue
            mounts.append(self.mount(mount))
        return mounts

    def mount(self, mount: Mount) -> dict[str, Any]:
        body: dict[str, Any] = {
            "Type": mount.type,
            "Target": mount.target,
            "ReadOnly": mount.read_only,
        }
        if mount.type == "volume" and mount.source is not None:
            volume = self.stack.volumes.get(mount.source)
            body["Source"] = volume_engine_name(self.stack, mount.source)
            if volume is not None and volume.external:
                self.notes.append(
                    f"external volume {body['Source']}: each node's own volume of that name is "
                    "used; Swarm makes an empty one on a node that has none"
                )
            elif volume is not None:
                labels = {
                    **volume.labels,
                    LABEL_STACK: self.stack.name,
                    "dev.declarun.resource": f"volume:{volume.name}",
                    LABEL_KEEP: "true" if volume.keep else "false",
                }
                body["VolumeOptions"] = {
                    "Labels": labels,
                    "DriverConfig": {"Name": volume.driver, "Options": dict(volume.driver_opts)},
                }
        elif mount.type == "bind":
            body["Source"] = mount.source
            self.notes.append(
                f"writable bind mount {mount.source}:{mount.target}: the path is each node's "
                "own; it must exist on every node a task may land on"
            )
        elif mount.type == "tmpfs":
            options = tmpfs_options(mount)
            if options:
                body["TmpfsOptions"] = options
        return body

    def bind_as_configs(self, mount: Mount) -> None:
        assert mount.source is not None
        found = self.host_files.get(mount.source)
        if not found:
            self.problems.append(f"read-only bind mount {mount.source}: nothing to read there")
            return
        for entry in found:
            if entry.data is None:
                self.problems.append(f"read-only bind mount {mount.source}: {entry.problem}")
                continue
            path = posixpath.join(mount.source, entry.relative) if entry.relative else mount.source
            made = _swarm_file(self.stack, "config", path, entry.data)
            target = (
                posixpath.join(mount.target, entry.relative) if entry.relative else mount.target
            )
            self.files.append(made)
            self.config_refs.append(
                {
                    "File": {"Name": target, "UID": "0", "GID": "0", "Mode": 0o444},
                    "ConfigName": made.engine_name,
                }
            )

    def env_files(self) -> None:
        used: set[str] = set()
        for index, env_file in enumerate(self.container.env_files, start=1):
            path = str(env_file.path)
            found = self.host_files.get(path)
            entry = found[0] if found else None
            if entry is None or entry.data is None:
                why = entry.problem if entry is not None else "not read"
                self.problems.append(f"env file {path}: {why}")
                continue
            base = posixpath.basename(path)
            if base in used:
                base = f"{index}-{base}"
            used.add(base)
            kind: Literal["config", "secret"] = "secret" if env_file.secret else "config"
            made = _swarm_file(self.stack, kind, path, entry.data)
            self.files.append(made)
            if kind == "secret":
                # Secrets live under /run/secrets (Swarm's own place, in memory).
                self.secret_refs.append(
                    {
                        "File": {"Name": base, "UID": "0", "GID": "0", "Mode": 0o400},
                        "SecretName": made.engine_name,
                    }
                )
            else:
                self.config_refs.append(
                    {
                        "File": {
                            "Name": f"{_ENV_DIR}/{base}",
                            "UID": "0",
                            "GID": "0",
                            "Mode": 0o444,
                        },
                        "ConfigName": made.engine_name,
                    }
                )

    def endpoint(self) -> tuple[dict[str, Any], bool]:
        """The endpoint spec, and whether two tasks on one node could both bind its ports."""
        ports = []
        fixed_host_ports = False
        for port in self.container.ports:
            entry: dict[str, Any] = {
                "Protocol": port.protocol,
                "TargetPort": port.container_port,
                "PublishMode": "ingress" if self.routing_mesh else "host",
            }
            if port.host_port is not None:
                entry["PublishedPort"] = port.host_port
                fixed_host_ports = fixed_host_ports or not self.routing_mesh
            if port.host_ip is not None:
                self.notes.append(
                    f"port {port.host_ip}:{port.host_port or ''}:{port.container_port}: Swarm "
                    "publishes on every address of a node; the host address is not kept"
                )
            ports.append(entry)
        if ports and not self.routing_mesh:
            self.notes.append(
                "ports are published on the node each task runs on (mode: host): this "
                "cluster's kernel has no IPVS for Swarm's routing mesh"
            )
        # Without IPVS there are no virtual IPs either: names resolve to the tasks themselves.
        mode = "vip" if self.routing_mesh else "dnsrr"
        return {"Mode": mode, "Ports": ports}, fixed_host_ports

    def networks(self) -> list[dict[str, Any]]:
        attached = []
        for attachment in self.container.networks:
            if attachment.ipv4_address is not None:
                self.notes.append(
                    f"networks.{attachment.network}.ipv4_address {attachment.ipv4_address}: "
                    "Swarm assigns task addresses itself; not kept"
                )
            names = list(dict.fromkeys([self.container.name, *attachment.aliases]))
            attached.append(
                {
                    "Target": network_engine_name(self.stack, attachment.network),
                    "Aliases": names,
                }
            )
        return attached


def _monitor(container: Container) -> timedelta:
    """How long Swarm watches an updated task before it counts the update as good: long
    enough for the health check to fail its retries."""
    check = container.healthcheck
    if check is None or check.disabled:
        return _MIN_MONITOR
    wanted = check.start_period + (check.interval + check.timeout) * check.retries
    return max(_MIN_MONITOR, min(_MAX_MONITOR, wanted))


def _restart(container: Container) -> dict[str, Any]:
    policy = container.restart
    if policy.name == "no":
        return {"Condition": "none"}
    if policy.name == "on-failure":
        return {"Condition": "on-failure", "MaxAttempts": policy.max_retries}
    return {"Condition": "any"}  # always, unless-stopped


def _container_spec(
    stack: Stack, container: Container, image_ref: str, labels: Mapping[str, str]
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "Image": image_ref,
        "Env": [f"{key}={value.value}" for key, value in container.env.items()],
        "Labels": dict(labels),
        "StopGracePeriod": _ns(container.stop_grace_period),
        "ReadOnly": container.read_only,
    }
    optional = {
        "Command": None if container.entrypoint is None else list(container.entrypoint),
        "Args": None if container.command is None else list(container.command),
        "Dir": container.working_dir,
        "User": container.user,
        "Hostname": container.hostname,
        "StopSignal": container.stop_signal,
        "CapabilityAdd": list(container.cap_add) or None,
        "CapabilityDrop": list(container.cap_drop) or None,
        "Init": container.init,
        # Swarm's hosts lines are /etc/hosts' own order: "IP name".
        "Hosts": [
            f"{address} {host}"
            for host, _, address in (entry.partition(":") for entry in container.extra_hosts)
        ]
        or None,
        "DNSConfig": {"Nameservers": list(container.dns)} if container.dns else None,
    }
    spec.update({key: value for key, value in optional.items() if value is not None})
    check = container.healthcheck
    if check is not None:
        spec["Healthcheck"] = healthcheck_body(check)
    return spec


def _resources(container: Container) -> dict[str, Any]:
    limits: dict[str, int] = {}
    resources = container.resources
    if resources.cpus is not None:
        limits["NanoCPUs"] = round(resources.cpus * _NS)
    if resources.memory is not None:
        limits["MemoryBytes"] = resources.memory
    if resources.pids is not None:
        limits["Pids"] = resources.pids
    return {"Limits": limits} if limits else {}


def _placement(placement: Placement | None) -> dict[str, Any]:
    if placement is None:
        return {}
    body: dict[str, Any] = {}
    if placement.constraints:
        body["Constraints"] = list(placement.constraints)
    if placement.spread:
        body["Preferences"] = [{"Spread": {"SpreadDescriptor": s}} for s in placement.spread]
    if placement.max_replicas_per_node is not None:
        body["MaxReplicas"] = placement.max_replicas_per_node
    return body


def _service(
    stack: Stack,
    container: Container,
    image_ref: str,
    written_ref: str,
    digests: Mapping[str, str],
    host_files: Mapping[str, tuple[HostFile, ...]],
    routing_mesh: bool,
) -> tuple[DesiredService, list[DesiredSwarmFile]]:
    config = {
        **container_config(container, written_ref),
        "replicas": container.replicas,
        "placement": placement_config(container.placement),
    }
    inputs = container_inputs(container, digests)
    labels = definition_labels(stack.name, "service", container, config, inputs)
    builder = _ServiceBuilder(stack, container, host_files, routing_mesh)
    mounts = builder.mounts()
    builder.env_files()
    endpoint, fixed_host_ports = builder.endpoint()
    # The containers carry the stack's labels and the ownership mark (events are filtered by
    # it), not the configuration, which is the service's.
    container_labels = {
        **container.labels,
        LABEL_STACK: stack.name,
        "dev.declarun.resource": f"service:{container.name}",
    }
    container_spec = _container_spec(stack, container, image_ref, container_labels)
    if mounts:
        container_spec["Mounts"] = mounts
    if builder.config_refs:
        container_spec["Configs"] = builder.config_refs
    if builder.secret_refs:
        container_spec["Secrets"] = builder.secret_refs
    task: dict[str, Any] = {
        "ContainerSpec": container_spec,
        "RestartPolicy": _restart(container),
        "Networks": builder.networks(),
    }
    resources = _resources(container)
    if resources:
        task["Resources"] = resources
    placement = _placement(container.placement)
    if placement:
        task["Placement"] = placement
    spec: dict[str, Any] = {
        "Name": f"{stack.name}-{container.name}",
        "Labels": labels,
        "TaskTemplate": task,
        "EndpointSpec": endpoint,
    }
    if container.run == "once":
        count = container.replicas
        spec["Mode"] = {"ReplicatedJob": {"MaxConcurrent": count, "TotalCompletions": count}}
    else:
        monitor = _ns(_monitor(container))
        # Start the new task before stopping the old one, unless both would want one
        # fixed port on the same node, or a per-node maximum may leave no node to start
        # it on.
        capped = container.placement is not None and (
            container.placement.max_replicas_per_node is not None
        )
        order = "stop-first" if fixed_host_ports or capped else "start-first"
        spec["Mode"] = {"Replicated": {"Replicas": container.replicas}}
        spec["UpdateConfig"] = {
            "Parallelism": 1,
            "FailureAction": "rollback",
            "Monitor": monitor,
            "MaxFailureRatio": 0,
            "Order": order,
        }
        spec["RollbackConfig"] = {
            "Parallelism": 1,
            "FailureAction": "pause",
            "Monitor": monitor,
            "MaxFailureRatio": 0,
            "Order": order,
        }
    image = stack.images.get(container.image)
    if image is not None and image.build is not None and image.ref is None:
        builder.problems.append(
            f"image {container.image} is built from a Dockerfile and has no ref: a Swarm's "
            "nodes pull their images, so give it a ref in a registry and push it there "
            "(declarun build --push)"
        )
    elif image is not None and image.build is not None:
        # As docker stack deploy, which ignores build: the nodes pull the ref; declarun
        # build --push (one engine, any engine) is what puts the image there.
        builder.notes.append(
            f"image {container.image} is built from a Dockerfile: the nodes pull {image.ref}, "
            "which `declarun build --push` sends to its registry"
        )
    files = list({f.id: f for f in builder.files}.values())
    service = DesiredService(
        id=f"service:{container.name}",
        name=container.name,
        engine_name=spec["Name"],
        image_ref=image_ref,
        run=container.run,
        replicas=container.replicas,
        healthcheck=container.healthcheck is not None and not container.healthcheck.disabled,
        config_json=labels[LABEL_CONFIG],
        config_hash=labels[LABEL_CONFIG_HASH],
        inputs=inputs,
        files=tuple(f.id for f in files),
        networks=tuple(f"network:{a.network}" for a in container.networks),
        notes=tuple(dict.fromkeys(builder.notes)),
        problems=tuple(builder.problems),
        spec_json=canonical_json(spec),
    )
    return service, files


def desired_swarm(
    stack: Stack,
    *,
    routing_mesh: bool,
    inputs: Mapping[str, str] | None = None,
    host_files: Mapping[str, tuple[HostFile, ...]] | None = None,
    lock: Lock | None = None,
    platform: str = "linux/amd64",
) -> DesiredSwarm:
    """Translate ``stack`` into Swarm objects.

    ``routing_mesh`` says whether the cluster's kernel has IPVS (ports through the routing
    mesh and virtual IPs) or not (ports on the task's node, DNS round robin); ``inputs`` are
    the host input digests, ``host_files`` the contents of env files and read-only bind
    sources (by path), as the observer read them; ``lock`` pins image references.
    """
    digests = inputs or {}
    contents = host_files or {}
    networks = {n: _network(stack, network) for n, network in stack.networks.items()}
    files: dict[str, DesiredSwarmFile] = {}
    services: dict[str, DesiredService] = {}
    for container in stack.containers.values():
        image = stack.images[container.image]
        written = image_reference(stack, image) or container.image
        pinned = None
        if lock is not None and image.build is None and image.ref is not None:
            pinned = lock.pinned(image.ref, image_platform(image, platform))
        service, made = _service(
            stack, container, pinned or written, written, digests, contents, routing_mesh
        )
        services[container.name] = service
        for item in made:
            files.setdefault(item.id, item)
    return DesiredSwarm(
        stack=stack.name,
        routing_mesh=routing_mesh,
        networks=FrozenDict(networks),
        files=FrozenDict(sorted(files.items())),
        services=FrozenDict(services),
    )
