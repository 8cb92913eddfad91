"""The typed stack model: immutable, fully normalised, located.

``normalize()`` (in ``declarun.stack.normalize``) builds these from templated, schema-valid data;
every later stage reads only these objects. Each object has every default filled in and every
short form expanded, and knows where it was written (``location``, the position of its key or
list item). Locations take no part in equality or hashing, so two stacks that mean the same
thing compare equal even if they were written differently. ``stack_to_data`` renders a stack
as plain JSON-able data in the model's own terms (``declarun.stack.render`` writes it back as a
stack file, for ``declarun render``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from datetime import timedelta
from pathlib import Path
from typing import Any, Literal

from declarun.errors import SourceLocation
from declarun.frozen import FrozenDict, thaw
from declarun.stack.units import format_duration

__all__ = [
    "NOWHERE",
    "Build",
    "Container",
    "Dependency",
    "EnvFile",
    "EnvValue",
    "FrozenDict",
    "Healthcheck",
    "Image",
    "Mount",
    "Network",
    "NetworkAttachment",
    "Placement",
    "PortBinding",
    "Resources",
    "RestartPolicy",
    "Stack",
    "Volume",
    "stack_to_data",
]

PullPolicy = Literal["missing", "always", "never"]
Protocol = Literal["tcp", "udp", "sctp"]
MountType = Literal["volume", "bind", "tmpfs"]
Condition = Literal["started", "healthy", "completed"]
RestartName = Literal["no", "on-failure", "always", "unless-stopped"]
RunMode = Literal["service", "once"]


#: The location of objects made without one (in tests, or synthesised from nothing).
NOWHERE = SourceLocation("<unknown>", 0, 0)
_EMPTY: FrozenDict[Any, Any] = FrozenDict()


@dataclass(frozen=True, slots=True, kw_only=True)
class Build:
    """How to build an image from a Dockerfile. ``context`` is absolute.

    ``labels`` are set on the built image. The ``*_location`` fields say where the context,
    the Dockerfile and the target were written (the build's own location when not written),
    so problems with the files they name point at the stack field.
    """

    context: Path
    dockerfile: str = "Dockerfile"  # relative to context, as Docker reads it
    args: FrozenDict[str, str] = _EMPTY
    target: str | None = None
    labels: FrozenDict[str, str] = _EMPTY
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)
    context_location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)
    dockerfile_location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)
    target_location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)
    short_form: bool = field(default=False, compare=False, repr=False)  # written as a string

    @property
    def dockerfile_path(self) -> Path:
        """The Dockerfile's absolute path (lexically normalised)."""
        return Path(os.path.normpath(self.context / self.dockerfile))


@dataclass(frozen=True, slots=True, kw_only=True)
class Image:
    """An image the stack uses.

    ``implicit`` images are synthesised for each literal reference a container names directly
    (``image: busybox:1.36``); they are keyed and named by that reference string.
    """

    name: str
    ref: str | None  # None only when the image is built and not tagged
    pull: PullPolicy = "missing"
    platform: str | None = None  # os/arch[/variant]
    build: Build | None = None
    implicit: bool = False
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Volume:
    """A named volume. ``keep`` volumes survive ``declarun destroy``; ``external`` ones are
    only used, never created or removed."""

    name: str
    driver: str = "local"
    driver_opts: FrozenDict[str, str] = _EMPTY
    labels: FrozenDict[str, str] = _EMPTY
    keep: bool = False
    external: bool = False  # an existing volume declarun uses but does not own
    engine_name: str | None = None  # None: <stack>-<name> (the name itself when external)
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Network:
    """A user network. ``subnet`` is canonical CIDR text; None lets the engine pick.

    ``implicit`` marks the ``default`` network synthesised for containers that list no network.
    """

    name: str
    driver: str = "bridge"
    driver_opts: FrozenDict[str, str] = _EMPTY
    subnet: str | None = None
    gateway: str | None = None
    internal: bool = False
    labels: FrozenDict[str, str] = _EMPTY
    implicit: bool = False
    external: bool = False  # an existing network declarun uses but does not own
    engine_name: str | None = None  # None: <stack>-<name> (the name itself when external)
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvValue:
    """One environment value. Secret values are masked in ``repr`` and in rendered output."""

    value: str
    secret: bool = False
    location: SourceLocation = field(
        default=NOWHERE, compare=False, repr=False
    )  # env_file entries point into the env file

    def __repr__(self) -> str:
        shown = "'***'" if self.secret else repr(self.value)
        return f"EnvValue(value={shown}, secret={self.secret})"


@dataclass(frozen=True, slots=True, kw_only=True)
class EnvFile:
    """An env file a container read; ``sha256`` of its bytes lets later runs detect edits."""

    path: Path  # absolute
    sha256: str
    secret: bool = False  # every value from this file is secret
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class PortBinding:
    """One published port. ``host_port`` None = an ephemeral port the engine picks;
    ``host_ip`` None = all interfaces (it clashes with any other binding of the same port)."""

    container_port: int
    host_port: int | None = None
    host_ip: str | None = None
    protocol: Protocol = "tcp"
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Mount:
    """A filesystem mount. ``source`` is a volume name (None = anonymous volume), an absolute
    host path for ``bind``, and always None for ``tmpfs``."""

    type: MountType
    target: str
    source: str | None = None
    read_only: bool = False
    tmpfs_size: int | None = None  # bytes
    tmpfs_mode: int | None = None  # permission bits, e.g. 0o1777
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkAttachment:
    """A container's membership in a network (by network name)."""

    network: str
    aliases: tuple[str, ...] = ()
    ipv4_address: str | None = None
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Dependency:
    """Start this container only once ``container`` reached ``condition``."""

    container: str
    condition: Condition = "started"
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck:
    """A healthcheck in Docker's form.

    ``test`` is ``("CMD", ...)``, ``("CMD-SHELL", "...")``, ``("NONE",)`` when disabled (which
    turns off a healthcheck the image declares), or ``()`` to keep the image's own test while
    overriding the timings. ``Container.healthcheck`` None means: whatever the image says.
    """

    test: tuple[str, ...] = ()
    interval: timedelta = timedelta(seconds=30)
    timeout: timedelta = timedelta(seconds=30)
    retries: int = 3
    start_period: timedelta = timedelta(0)
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)

    @property
    def disabled(self) -> bool:
        """True when this healthcheck switches the image's healthcheck off."""
        return self.test == ("NONE",)


@dataclass(frozen=True, slots=True, kw_only=True)
class RestartPolicy:
    """Docker restart policy; ``max_retries`` applies to ``on-failure`` only (0 = unlimited)."""

    name: RestartName = "no"
    max_retries: int = 0
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Resources:
    """Resource limits; None = unlimited."""

    cpus: float | None = None
    memory: int | None = None  # bytes
    pids: int | None = None
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Placement:
    """Where replicas may run on a cluster engine (Swarm, Kubernetes); one engine ignores it.

    ``constraints`` are Swarm's (``node.labels.zone==a``, ``node.role!=manager``), spaces
    removed; ``spread`` the node labels to spread replicas over (``node.labels.zone``).
    """

    constraints: tuple[str, ...] = ()
    spread: tuple[str, ...] = ()
    max_replicas_per_node: int | None = None
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Container:
    """A container (or ``replicas`` identical ones). ``image`` names a key of ``Stack.images``."""

    name: str
    image: str
    command: tuple[str, ...] | None = None  # None = the image's CMD
    entrypoint: tuple[str, ...] | None = None  # None = the image's ENTRYPOINT
    env: FrozenDict[str, EnvValue] = _EMPTY  # env files first, then env:, later wins
    env_files: tuple[EnvFile, ...] = ()
    working_dir: str | None = None
    user: str | None = None
    hostname: str | None = None
    ports: tuple[PortBinding, ...] = ()  # ranges expanded: one binding per port
    mounts: tuple[Mount, ...] = ()  # volumes: first, then mounts:
    networks: tuple[NetworkAttachment, ...] = ()  # never empty after normalize
    depends_on: tuple[Dependency, ...] = ()
    healthcheck: Healthcheck | None = None
    restart: RestartPolicy = RestartPolicy()
    resources: Resources = Resources()
    labels: FrozenDict[str, str] = _EMPTY
    stop_signal: str | None = None  # "SIGTERM" style or a number; None = the image's
    stop_grace_period: timedelta = timedelta(seconds=10)
    read_only: bool = False
    cap_add: tuple[str, ...] = ()  # upper case, without the CAP_ prefix
    cap_drop: tuple[str, ...] = ()
    init: bool | None = None  # an init process as PID 1; None = the engine's setting
    extra_hosts: tuple[str, ...] = ()  # "host:ip" lines for /etc/hosts, in order
    dns: tuple[str, ...] = ()  # DNS server addresses; empty = the engine's
    replicas: int = 1
    placement: Placement | None = None  # cluster engines only; not part of the configuration
    run: RunMode = "service"
    profiles: tuple[str, ...] = ()  # empty = always active
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class Stack:
    """A whole stack file, normalised. Name maps keep file order; implicit images come last."""

    name: str
    vars: FrozenDict[str, Any] = _EMPTY
    images: FrozenDict[str, Image] = _EMPTY
    volumes: FrozenDict[str, Volume] = _EMPTY
    networks: FrozenDict[str, Network] = _EMPTY
    containers: FrozenDict[str, Container] = _EMPTY
    location: SourceLocation = field(default=NOWHERE, compare=False, repr=False)
    source_file: Path = Path("stack.yaml")


_REDACTED = "***"


def _render_fields(value: Any, reveal_secrets: bool) -> dict[str, Any]:
    return {
        f.name: _render(getattr(value, f.name), reveal_secrets)
        for f in fields(value)
        if f.name not in ("location", "short_form") and not f.name.endswith("_location")
    }


def _render(value: Any, reveal_secrets: bool) -> Any:
    if isinstance(value, EnvValue):
        if not value.secret:
            return value.value
        return {"value": value.value if reveal_secrets else _REDACTED, "secret": True}
    if isinstance(value, Mount):
        data = _render_fields(value, reveal_secrets)
        if value.tmpfs_mode is not None:  # permission bits read best in octal, as written
            data["tmpfs_mode"] = f"{value.tmpfs_mode:o}"
        return data
    if hasattr(value, "__dataclass_fields__"):
        return _render_fields(value, reveal_secrets)
    if isinstance(value, timedelta):
        return format_duration(value)
    if isinstance(value, Path):
        return str(value)
    if isinstance(value, FrozenDict | dict):
        return {str(k): _render(v, reveal_secrets) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_render(v, reveal_secrets) for v in value]
    return thaw(value)


def stack_to_data(stack: Stack, *, reveal_secrets: bool = False) -> dict[str, Any]:
    """Render a stack as plain JSON-able data in a stable order, without locations.

    Durations become strings (``"1m30s"``), sizes stay integers of bytes, paths become strings,
    tmpfs modes octal strings (``"1777"``).
    Secret environment values render as ``{"value": "***", "secret": true}`` unless
    ``reveal_secrets``. Field order is the model's declaration order; maps keep file order.
    """
    data = _render(stack, reveal_secrets)
    assert isinstance(data, dict)
    return data
