"""What an engine answers, as typed values: the fields the observer and the reconciler read.

The Docker Engine API answers in JSON whose shape differs by version and by engine (absent
keys, ``null`` for empty lists); the adapter reads it once into these frozen values, so the
rest of declarun never walks a raw dict or guesses a default. Only the fields declarun uses
are kept; the names are Docker's, in snake case.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from declarun.errdefs import SystemFailure
from declarun.frozen import FrozenDict

__all__ = [
    "BuildEvent",
    "BuildFailed",
    "BuildRequest",
    "ContainerDetails",
    "ContainerState",
    "ContainerSummary",
    "EngineEvent",
    "EngineVersion",
    "HealthResult",
    "Healthcheck",
    "ImageDetails",
    "NetworkSummary",
    "PortBinding",
    "PublishedPort",
    "PullEvent",
    "VolumeSummary",
    "engine_time",
]

_EMPTY: FrozenDict[str, str] = FrozenDict()
# RFC 3339 as Go writes it: up to nine fraction digits, "Z" or an offset.
_TIME = re.compile(r"^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$")


def engine_time(text: str) -> float | None:
    """Seconds since the epoch of an engine's timestamp (``2024-05-01T10:00:00.123456789Z``);
    None for an empty text or Go's zero time (``0001-01-01T00:00:00Z``: never happened)."""
    match = _TIME.match(text.strip())
    if match is None or text.startswith("0001-"):
        return None
    whole, fraction, zone = match.groups()
    stamp = datetime.fromisoformat(whole + ("+00:00" if zone == "Z" else zone))
    return stamp.timestamp() + (float(f"0.{fraction}") if fraction else 0.0)


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineVersion:
    """``GET /version``: the engine's release, API version and platform."""

    version: str
    api_version: str
    os: str
    arch: str

    @property
    def platform(self) -> str:
        """``os/arch``, the platform images are pulled for when a stack names none."""
        return f"{self.os}/{self.arch}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PublishedPort:
    """One entry of a container's ``Ports`` in a list: ``public_port`` None when unpublished."""

    ip: str
    private_port: int
    public_port: int | None
    protocol: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerSummary:
    """A container as ``GET /containers/json?all=1`` lists it.

    ``state`` is Docker's (created, running, paused, restarting, removing, exited, dead);
    ``status`` the human text (``Up 2 minutes (healthy)``), the only place a list shows health.
    """

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    image: str = ""
    image_id: str = ""
    state: str = ""
    status: str = ""
    networks: tuple[str, ...] = ()  # names of the networks it is attached to
    volumes: tuple[str, ...] = ()  # names of the named volumes it mounts
    ports: tuple[PublishedPort, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthResult:
    """One health check run, from ``State.Health.Log``."""

    exit_code: int | None
    output: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerState:
    """``State`` of an inspected container. ``health`` is None when it has no health check."""

    status: str
    running: bool = False
    restarting: bool = False
    exit_code: int = 0
    error: str = ""
    oom_killed: bool = False
    health: str | None = None  # starting, healthy, unhealthy
    health_log: tuple[HealthResult, ...] = ()
    started_at: str = ""  # RFC 3339 with nanoseconds, as the engine writes it; "" never
    finished_at: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Healthcheck:
    """``Config.Healthcheck``: durations in nanoseconds, 0 meaning the engine's default."""

    test: tuple[str, ...]
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0


@dataclass(frozen=True, slots=True, kw_only=True)
class PortBinding:
    """One ``HostConfig.PortBindings`` entry: ``80/tcp`` published on ``host_ip:host_port``."""

    container_port: str
    host_ip: str = ""
    host_port: str = ""  # empty: the engine picks one


@dataclass(frozen=True, slots=True, kw_only=True)
class ContainerDetails:
    """A container as ``GET /containers/{name}/json`` shows it."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    image_id: str = ""  # the id of the image it was created from
    state: ContainerState
    healthcheck: Healthcheck | None = None  # its own or its image's; None when there is none
    port_bindings: tuple[PortBinding, ...] = ()
    ipv4_addresses: FrozenDict[str, str] = _EMPTY  # network -> the address it asked for
    restart_count: int = 0  # restarts by the engine's restart policy since the last start
    restart_policy: str = ""  # no, on-failure, always, unless-stopped ("" when unset)


@dataclass(frozen=True, slots=True, kw_only=True)
class ImageDetails:
    """A local image as ``GET /images/{name}/json`` shows it."""

    id: str
    repo_digests: tuple[str, ...] = ()
    repo_tags: tuple[str, ...] = ()
    labels: FrozenDict[str, str] = _EMPTY
    has_healthcheck: bool = False  # its config runs a health check (not absent, not NONE)


@dataclass(frozen=True, slots=True, kw_only=True)
class NetworkSummary:
    """A network as ``GET /networks`` lists it."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    driver: str = ""
    internal: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class VolumeSummary:
    """A volume as ``GET /volumes`` lists it."""

    name: str
    labels: FrozenDict[str, str] = _EMPTY
    driver: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class PullEvent:
    """One progress message of a pull: ``layer`` is the layer's short id, when it is about one;
    ``current``/``total`` the bytes of its download, when known."""

    layer: str | None
    status: str
    current: int | None = None
    total: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class EngineEvent:
    """One message of ``GET /events``: ``type`` container, network, ...; ``action`` die, ..."""

    type: str
    action: str
    actor_id: str = ""
    attributes: FrozenDict[str, str] = _EMPTY


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildRequest:
    """A build to run: ``POST /build`` with the context made from the directory ``context``.

    ``dockerfile`` is relative to ``context`` (it may lie outside it); ``tags`` are given to
    the result; ``pull`` pulls base images even when present; ``nocache`` uses no cached
    step; ``platform`` (``os/arch[/variant]``) None builds for the engine's.
    """

    context: Path
    dockerfile: str = "Dockerfile"
    tags: tuple[str, ...] = ()
    args: FrozenDict[str, str] = _EMPTY
    target: str | None = None
    labels: FrozenDict[str, str] = _EMPTY
    pull: bool = False
    nocache: bool = False
    platform: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildEvent:
    """One message of a build's progress.

    ``output`` is text the build printed, line by line as it comes (``Step 2/5 : RUN make``,
    `` ---> Using cache``, a ``RUN``'s own output); ``status`` a base image pull's progress
    line; ``image_id`` the built image's id (sent once the image is committed).
    """

    output: str = ""
    status: str = ""
    image_id: str | None = None


class BuildFailed(SystemFailure):
    """A build failed on the engine's side: a ``RUN`` exited non-zero, a base image could not
    be pulled, a ``COPY`` source is missing... The message is the engine's; ``code`` the
    failing ``RUN``'s exit code, when the engine gives one."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code
