"""The desired state: the stack translated into Docker Engine API objects, in one place.

``desired_state(stack, ...)`` gives, for every image, volume, network and container replica,
its engine name, its canonical configuration and hash (``configs``), the labels it carries
(``identity``), and the exact create body to send:

* containers: ``POST /containers/create?name=<engine_name>`` with :meth:`DesiredContainer.
  create_body` (docker-py: ``client.api.create_container_from_config(body, name)``); then
  ``POST /networks/{id}/connect`` for each of :attr:`DesiredContainer.extra_networks` before
  starting it (engines before API 1.44 accept a single network at create);
* networks: ``POST /networks/create`` with :attr:`DesiredNetwork.body`;
* volumes: ``POST /volumes/create`` with :attr:`DesiredVolume.body`.

The diff uses the same values to know what *should* be, so what is planned is what is applied.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from declarun.frozen import FrozenDict, freeze, thaw
from declarun.plan.bodies import (
    add_network_options,
    definition_labels,
    healthcheck_body,
    tmpfs_options,
)
from declarun.plan.buildinputs import BuildInputs
from declarun.plan.configs import container_config, network_config, volume_config
from declarun.plan.identity import (
    LABEL_CONFIG,
    LABEL_CONFIG_HASH,
    LABEL_KEEP,
    LABEL_REPLICA,
    LABEL_RESOURCE,
    LABEL_STACK,
    built_image_tag,
    canonical_json,
    config_hash,
    container_name,
    network_name,
    ownership_labels,
    resource_label,
    volume_name,
)
from declarun.plan.inputs import DesiredInput, container_inputs
from declarun.plan.lock import Lock, image_platform
from declarun.plan.observed import ObservedBuild
from declarun.stack.model import Build, Container, Image, Mount, Network, Stack, Volume
from declarun.stack.naming import image_for_reference, replica_names

__all__ = [
    "DEFAULT_PLATFORM",
    "DesiredBuild",
    "DesiredContainer",
    "DesiredImage",
    "DesiredInput",
    "DesiredNetwork",
    "DesiredState",
    "DesiredVolume",
    "desired_state",
    "external_network",
    "network_engine_name",
    "volume_engine_name",
]

DEFAULT_PLATFORM = "linux/amd64"
_NO_PINS: FrozenDict[str, str] = FrozenDict()
_NS = 1_000_000_000


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredBuild:
    """How to build a built image, and what it is built from (recorded once it is built).

    ``args`` are as the stack gives them (the build needs the values; ``inputs`` masks the
    secret-looking ones). ``labels`` are the stack's plus declarun's ownership labels.
    ``bases`` are the references the Dockerfile pulls, ``stack_bases`` those of them that
    name images this stack builds (no registry has them), ``base_pins`` those a lock pins,
    to their ``repository@digest``. ``inputs`` is None when the context or the Dockerfile could
    not be read (``problem`` says why).
    """

    context: str  # absolute
    dockerfile: str  # as the stack writes it: relative to the context
    args: FrozenDict[str, str]
    target: str | None
    labels: FrozenDict[str, str]
    platform: str | None  # the image's platform: None builds for the engine's
    bases: tuple[str, ...] = ()
    stack_bases: tuple[str, ...] = ()  # the bases that are images this stack builds
    base_pins: FrozenDict[str, str] = _NO_PINS
    inputs: BuildInputs | None = None
    problem: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredImage:
    """An image the stack needs. ``ref`` is what to pull, inspect and run."""

    id: str  # graph node id, image:<name>
    name: str
    ref: str  # the stack's ref, the lock's pin (repo@digest), or the build tag
    written_ref: str  # as the stack writes it (the build tag when it has none)
    pull: str
    platform: str  # the stack's platform, else the engine's
    locked_digest: str | None = None
    build: DesiredBuild | None = None  # for built images


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredVolume:
    """A named volume to exist, with its create body (an ``external`` one is only used)."""

    id: str
    name: str
    engine_name: str
    keep: bool
    config: FrozenDict[str, Any]
    config_hash: str
    body: FrozenDict[str, Any]
    external: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredNetwork:
    """A network to exist, with its create body (an ``external`` one is only used); on a
    Swarm, an overlay network (``plan.swarm_desired``)."""

    id: str
    name: str
    engine_name: str
    config: FrozenDict[str, Any]
    config_hash: str
    body: FrozenDict[str, Any]
    external: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredContainer:
    """One container replica to exist, with everything needed to create it."""

    id: str  # graph node id, container:<replica>
    container: str  # the stack's container name
    replica: str  # web, or web-2
    index: int  # 1-based
    engine_name: str
    image: str  # key of DesiredState.images
    image_ref: str
    run: str  # service | once
    config_json: str  # canonical JSON of the configuration (plan.configs), as labelled
    config_hash: str
    inputs: tuple[DesiredInput, ...]
    body_json: str  # kept as text: thousands of containers freeze slowly, JSON is fast
    extra_networks: tuple[tuple[str, FrozenDict[str, Any]], ...]

    @property
    def config(self) -> dict[str, Any]:
        """The canonical configuration (a fresh copy)."""
        config: dict[str, Any] = json.loads(self.config_json)
        return config

    def create_body(self) -> dict[str, Any]:
        """The ``POST /containers/create`` body as plain data (a fresh copy each call)."""
        body: dict[str, Any] = json.loads(self.body_json)
        return body

    def connect_bodies(self) -> list[tuple[str, dict[str, Any]]]:
        """(network engine name, ``POST /networks/{id}/connect`` body) for each extra network."""
        return [
            (network, {"Container": self.engine_name, "EndpointConfig": thaw(endpoint)})
            for network, endpoint in self.extra_networks
        ]


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredState:
    """Everything the stack wants, by resource name within each kind."""

    stack: str
    platform: str
    images: FrozenDict[str, DesiredImage]
    volumes: FrozenDict[str, DesiredVolume]
    networks: FrozenDict[str, DesiredNetwork]
    containers: FrozenDict[str, DesiredContainer]  # by replica name

    @property
    def engine_names(self) -> frozenset[tuple[str, str]]:
        """(kind, engine name) of every object declarun would own."""
        return frozenset(
            [("volume", v.engine_name) for v in self.volumes.values()]
            + [("network", n.engine_name) for n in self.networks.values()]
            + [("container", c.engine_name) for c in self.containers.values()]
        )


def _build(
    stack: Stack,
    image: Image,
    build: Build,
    lock: Lock | None,
    platform: str,
    bases: Sequence[str],
    observed: ObservedBuild | None,
) -> DesiredBuild:
    built_here = []
    for base in bases:
        name = image_for_reference(stack, base)
        if name is not None and stack.images[name].build is not None:
            built_here.append(base)
    pins = {}
    if lock is not None:
        for base in bases:
            pinned = lock.pinned(base, platform)
            if pinned is not None and base not in built_here:
                pins[base] = pinned
    labels = {
        **build.labels,
        LABEL_STACK: stack.name,
        LABEL_RESOURCE: resource_label("image", image.name),
    }
    return DesiredBuild(
        context=str(build.context),
        dockerfile=build.dockerfile,
        args=build.args,
        target=build.target,
        labels=FrozenDict(sorted(labels.items())),
        platform=image.platform,
        bases=tuple(bases),
        stack_bases=tuple(built_here),
        base_pins=FrozenDict(sorted(pins.items())),
        inputs=None if observed is None else observed.inputs,
        problem="the build was not observed" if observed is None else observed.problem,
    )


def _image(
    stack: Stack,
    image: Image,
    lock: Lock | None,
    platform: str,
    bases: Mapping[str, Sequence[str]],
    builds: Mapping[str, ObservedBuild],
) -> DesiredImage:
    written = image.ref or built_image_tag(stack.name, image.name)
    wanted_platform = image_platform(image, platform)
    pinned = None
    if lock is not None and image.build is None and image.ref is not None:
        pinned = lock.pinned(image.ref, wanted_platform)
    build = None
    if image.build is not None:
        build = _build(
            stack,
            image,
            image.build,
            lock,
            wanted_platform,
            bases.get(image.name, ()),
            builds.get(image.name),
        )
    return DesiredImage(
        id=f"image:{image.name}",
        name=image.name,
        ref=pinned or written,
        written_ref=written,
        pull=image.pull,
        platform=wanted_platform,
        locked_digest=None if pinned is None else pinned.rpartition("@")[2],
        build=build,
    )


def volume_engine_name(stack: Stack, name: str) -> str:
    """The engine name of ``stack``'s volume ``name``: its ``engine_name``, an external one's
    own name, else ``<stack>-<name>``."""
    volume = stack.volumes.get(name)
    if volume is not None and volume.engine_name:
        return volume.engine_name
    if volume is not None and volume.external:
        return name
    return volume_name(stack.name, name)


def network_engine_name(stack: Stack, name: str) -> str:
    """The engine name of ``stack``'s network ``name`` (as :func:`volume_engine_name`)."""
    network = stack.networks.get(name)
    if network is not None and network.engine_name:
        return network.engine_name
    if network is not None and network.external:
        return name
    return network_name(stack.name, name)


def _external_volume(stack: Stack, volume: Volume) -> DesiredVolume:
    config = {"external": True}
    return DesiredVolume(
        id=f"volume:{volume.name}",
        name=volume.name,
        engine_name=volume_engine_name(stack, volume.name),
        keep=True,
        config=freeze(config),
        config_hash=config_hash(config),
        body=FrozenDict(),
        external=True,
    )


def external_network(stack: Stack, network: Network) -> DesiredNetwork:
    """The desired value of an ``external`` network (on one engine or a Swarm alike): used
    as it is, never created, changed or removed."""
    config = {"external": True}
    return DesiredNetwork(
        id=f"network:{network.name}",
        name=network.name,
        engine_name=network_engine_name(stack, network.name),
        config=freeze(config),
        config_hash=config_hash(config),
        body=FrozenDict(),
        external=True,
    )


def _volume(stack: Stack, volume: Volume) -> DesiredVolume:
    if volume.external:
        return _external_volume(stack, volume)
    config = volume_config(volume)
    engine = volume_engine_name(stack, volume.name)
    labels = {**volume.labels, **ownership_labels(stack.name, "volume", volume.name, config)}
    labels[LABEL_KEEP] = "true" if volume.keep else "false"
    body = {
        "Name": engine,
        "Driver": volume.driver,
        "DriverOpts": dict(volume.driver_opts),
        "Labels": labels,
    }
    return DesiredVolume(
        id=f"volume:{volume.name}",
        name=volume.name,
        engine_name=engine,
        keep=volume.keep,
        config=freeze(config),
        config_hash=config_hash(config),
        body=freeze(body),
    )


def _network(stack: Stack, network: Network) -> DesiredNetwork:
    if network.external:
        return external_network(stack, network)
    config = network_config(network)
    engine = network_engine_name(stack, network.name)
    labels = {**network.labels, **ownership_labels(stack.name, "network", network.name, config)}
    body: dict[str, Any] = {
        "Name": engine,
        "Driver": network.driver,
        "Internal": network.internal,
        "Labels": labels,
        "CheckDuplicate": True,
    }
    add_network_options(body, network)
    if network.subnet is not None and ":" in network.subnet:
        body["EnableIPv6"] = True
    return DesiredNetwork(
        id=f"network:{network.name}",
        name=network.name,
        engine_name=engine,
        config=freeze(config),
        config_hash=config_hash(config),
        body=freeze(body),
    )


def _mount_body(stack: Stack, mount: Mount) -> dict[str, Any]:
    body: dict[str, Any] = {"Type": mount.type, "Target": mount.target, "ReadOnly": mount.read_only}
    if mount.type == "volume" and mount.source is not None:
        body["Source"] = volume_engine_name(stack, mount.source)
    elif mount.type == "bind":
        body["Source"] = mount.source
    elif mount.type == "tmpfs":
        options = tmpfs_options(mount)
        if options:
            body["TmpfsOptions"] = options
    return body


def _host_config(stack: Stack, container: Container, primary: str) -> dict[str, Any]:
    bindings: dict[str, list[dict[str, str]]] = {}
    for port in container.ports:
        bindings.setdefault(f"{port.container_port}/{port.protocol}", []).append(
            {
                "HostIp": port.host_ip or "",
                "HostPort": "" if port.host_port is None else str(port.host_port),
            }
        )
    restart: dict[str, Any] = {"Name": container.restart.name}
    if container.restart.name == "on-failure":
        restart["MaximumRetryCount"] = container.restart.max_retries
    host: dict[str, Any] = {
        "Mounts": [_mount_body(stack, mount) for mount in container.mounts],
        "PortBindings": bindings,
        "RestartPolicy": restart,
        "ReadonlyRootfs": container.read_only,
        "CapAdd": list(container.cap_add),
        "CapDrop": list(container.cap_drop),
        "NetworkMode": primary,
    }
    if container.init is not None:
        host["Init"] = container.init
    if container.extra_hosts:
        host["ExtraHosts"] = list(container.extra_hosts)
    if container.dns:
        host["Dns"] = list(container.dns)
    resources = container.resources
    if resources.cpus is not None:
        host["NanoCpus"] = round(resources.cpus * _NS)
    if resources.memory is not None:
        host["Memory"] = resources.memory
    if resources.pids is not None:
        host["PidsLimit"] = resources.pids
    return host


def _endpoint(
    container: Container, replica: str, aliases: tuple[str, ...], ipv4: str | None
) -> dict[str, Any]:
    # Containers find each other by their stack names (db, web-1), not their engine names.
    names = list(dict.fromkeys([replica, container.name, *aliases]))
    endpoint: dict[str, Any] = {"Aliases": names}
    if ipv4 is not None:
        endpoint["IPAMConfig"] = {"IPv4Address": ipv4}
    return endpoint


def _container_body(
    stack: Stack, container: Container, replica: str, image_ref: str, labels: dict[str, str]
) -> tuple[dict[str, Any], tuple[tuple[str, FrozenDict[str, Any]], ...]]:
    endpoints = [
        (
            network_engine_name(stack, a.network),
            _endpoint(container, replica, a.aliases, a.ipv4_address),
        )
        for a in container.networks
    ]
    primary = endpoints[0][0] if endpoints else "none"
    body: dict[str, Any] = {
        "Image": image_ref,
        "Env": [f"{key}={value.value}" for key, value in container.env.items()],
        "Labels": labels,
        "StopTimeout": math.ceil(container.stop_grace_period.total_seconds()),
        "HostConfig": _host_config(stack, container, primary),
        "NetworkingConfig": {"EndpointsConfig": dict(endpoints[:1])},
    }
    optional = {
        "Cmd": None if container.command is None else list(container.command),
        "Entrypoint": None if container.entrypoint is None else list(container.entrypoint),
        "WorkingDir": container.working_dir,
        "User": container.user,
        "Hostname": container.hostname,
        "StopSignal": container.stop_signal,
    }
    body.update({key: value for key, value in optional.items() if value is not None})
    if container.ports:
        body["ExposedPorts"] = {f"{p.container_port}/{p.protocol}": {} for p in container.ports}
    check = container.healthcheck
    if check is not None:
        body["Healthcheck"] = healthcheck_body(check)
    extra = tuple((name, freeze(endpoint)) for name, endpoint in endpoints[1:])
    return body, extra


def _given_names(stack: Stack, container: Container) -> dict[str, str]:
    """The engine names of the volumes and networks ``container`` uses that are not the usual
    ``<stack>-<name>`` (external ones, renamed ones): another name is another object."""
    given = {}
    for mount in container.mounts:
        if mount.type == "volume" and mount.source is not None:
            engine = volume_engine_name(stack, mount.source)
            if engine != volume_name(stack.name, mount.source):
                given[f"volume:{mount.source}"] = engine
    for attachment in container.networks:
        engine = network_engine_name(stack, attachment.network)
        if engine != network_name(stack.name, attachment.network):
            given[f"network:{attachment.network}"] = engine
    return given


def _containers(
    stack: Stack, container: Container, image: DesiredImage, inputs: Mapping[str, str]
) -> list[DesiredContainer]:
    config = container_config(container, image.written_ref, _given_names(stack, container))
    found = container_inputs(container, inputs)
    shared = definition_labels(stack.name, "container", container, config, found)
    result = []
    for index, replica in enumerate(replica_names(container), start=1):
        labels = {**shared, LABEL_REPLICA: str(index)}
        body, extra = _container_body(stack, container, replica, image.ref, labels)
        result.append(
            DesiredContainer(
                id=f"container:{replica}",
                container=container.name,
                replica=replica,
                index=index,
                engine_name=container_name(stack.name, replica),
                image=image.name,
                image_ref=image.ref,
                run=container.run,
                config_json=shared[LABEL_CONFIG],
                config_hash=shared[LABEL_CONFIG_HASH],
                inputs=found,
                body_json=canonical_json(body),
                extra_networks=extra,
            )
        )
    return result


def desired_state(
    stack: Stack,
    *,
    inputs: Mapping[str, str] | None = None,
    lock: Lock | None = None,
    platform: str = DEFAULT_PLATFORM,
    bases: Mapping[str, Sequence[str]] | None = None,
    builds: Mapping[str, ObservedBuild] | None = None,
) -> DesiredState:
    """Translate ``stack`` into engine objects.

    ``inputs`` are the host input digests (``ObservedState.inputs``), ``lock`` pins image references
    (and the base images of builds) to digests, ``platform`` is the engine's (``os/arch``) for
    images that name none; ``bases`` and ``builds`` are what the observer read of the builds
    (``ObservedState.base_images`` and ``.builds``).
    """
    known = inputs or {}
    images = {
        name: _image(stack, image, lock, platform, bases or {}, builds or {})
        for name, image in stack.images.items()
    }
    containers: dict[str, DesiredContainer] = {}
    for container in stack.containers.values():
        for replica in _containers(stack, container, images[container.image], known):
            containers[replica.replica] = replica
    return DesiredState(
        stack=stack.name,
        platform=platform,
        images=FrozenDict(images),
        volumes=FrozenDict({name: _volume(stack, v) for name, v in stack.volumes.items()}),
        networks=FrozenDict({name: _network(stack, n) for name, n in stack.networks.items()}),
        containers=FrozenDict(containers),
    )
