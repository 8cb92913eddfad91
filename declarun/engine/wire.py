"""The Docker Engine API's JSON read into typed values (:mod:`declarun.engine.types`).

Pure functions, shared by the two transports of the adapter: the small HTTP client of
:mod:`declarun.engine.apiclient` (what a plan reads) and docker-py (everything else), so both
read an answer the same way.
"""

from __future__ import annotations

from typing import Any

from declarun.engine.types import (
    BuildEvent,
    BuildFailed,
    ContainerDetails,
    ContainerState,
    ContainerSummary,
    EngineEvent,
    EngineVersion,
    Healthcheck,
    HealthResult,
    ImageDetails,
    NetworkSummary,
    PortBinding,
    PublishedPort,
    PullEvent,
    VolumeSummary,
)
from declarun.errdefs import SystemFailure
from declarun.frozen import FrozenDict

__all__ = [
    "container_details",
    "container_state",
    "container_summary",
    "engine_event",
    "engine_version",
    "healthcheck_of",
    "image_details",
    "labels_of",
    "network_summary",
    "pull_event",
    "read_build_message",
    "volume_summary",
]


def labels_of(raw: Any) -> FrozenDict[str, str]:
    """Labels (``null`` for none) as a sorted frozen mapping."""
    return FrozenDict(sorted((raw or {}).items()))


def container_summary(raw: dict[str, Any]) -> ContainerSummary:
    """One container of ``GET /containers/json``."""
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    volumes = [m.get("Name") for m in raw.get("Mounts") or () if m.get("Type") == "volume"]
    return ContainerSummary(
        id=raw["Id"],
        name=(raw.get("Names") or ["/"])[0].lstrip("/"),
        labels=labels_of(raw.get("Labels")),
        image=str(raw.get("Image") or ""),
        image_id=str(raw.get("ImageID") or ""),
        state=str(raw.get("State") or ""),
        status=str(raw.get("Status") or ""),
        networks=tuple(sorted(networks)),
        volumes=tuple(sorted(v for v in volumes if v)),
        ports=tuple(
            PublishedPort(
                ip=str(p.get("IP") or ""),
                private_port=int(p["PrivatePort"]),
                public_port=int(p["PublicPort"]) if p.get("PublicPort") else None,
                protocol=str(p.get("Type") or "tcp"),
            )
            for p in raw.get("Ports") or ()
        ),
    )


def container_state(raw: dict[str, Any]) -> ContainerState:
    """A container inspect's ``State``."""
    health = raw.get("Health")
    return ContainerState(
        status=str(raw.get("Status") or ""),
        running=bool(raw.get("Running")),
        restarting=bool(raw.get("Restarting")),
        exit_code=int(raw.get("ExitCode") or 0),
        error=str(raw.get("Error") or ""),
        oom_killed=bool(raw.get("OOMKilled")),
        health=None if health is None else str(health.get("Status") or ""),
        health_log=tuple(
            HealthResult(exit_code=entry.get("ExitCode"), output=str(entry.get("Output") or ""))
            for entry in (health or {}).get("Log") or ()
        ),
        started_at=str(raw.get("StartedAt") or ""),
        finished_at=str(raw.get("FinishedAt") or ""),
    )


def healthcheck_of(raw: dict[str, Any] | None) -> Healthcheck | None:
    """A container config's ``Healthcheck`` (None when it has none)."""
    if not raw:
        return None
    return Healthcheck(
        test=tuple(raw.get("Test") or ()),
        interval=int(raw.get("Interval") or 0),
        timeout=int(raw.get("Timeout") or 0),
        retries=int(raw.get("Retries") or 0),
        start_period=int(raw.get("StartPeriod") or 0),
    )


def container_details(raw: dict[str, Any]) -> ContainerDetails:
    """``GET /containers/{id}/json``'s answer."""
    config = raw.get("Config") or {}
    host_config = raw.get("HostConfig") or {}
    bindings = host_config.get("PortBindings") or {}
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    addresses = {
        name: str(address)
        for name, endpoint in networks.items()
        if (address := ((endpoint or {}).get("IPAMConfig") or {}).get("IPv4Address"))
    }
    return ContainerDetails(
        id=raw["Id"],
        name=str(raw.get("Name") or "").lstrip("/"),
        labels=labels_of(config.get("Labels")),
        image_id=str(raw.get("Image") or ""),
        state=container_state(raw.get("State") or {}),
        healthcheck=healthcheck_of(config.get("Healthcheck")),
        port_bindings=tuple(
            PortBinding(
                container_port=port,
                host_ip=str(binding.get("HostIp") or ""),
                host_port=str(binding.get("HostPort") or ""),
            )
            for port, found in sorted(bindings.items())
            for binding in found or ()
        ),
        ipv4_addresses=FrozenDict(sorted(addresses.items())),
        restart_count=int(raw.get("RestartCount") or 0),
        restart_policy=str((host_config.get("RestartPolicy") or {}).get("Name") or ""),
    )


def pull_event(raw: dict[str, Any]) -> PullEvent:
    """One message of a pull's (or push's) stream; an error in it raises SystemFailure."""
    if raw.get("error"):
        # An error in the stream carries no status: the pull failed on the engine's side.
        raise SystemFailure(str(raw["error"]))
    detail = raw.get("progressDetail") or {}
    return PullEvent(
        layer=str(raw["id"]) if raw.get("id") else None,
        status=str(raw.get("status") or ""),
        current=int(detail["current"]) if detail.get("current") is not None else None,
        total=int(detail["total"]) if detail.get("total") else None,
    )


def read_build_message(raw: dict[str, Any]) -> BuildEvent:
    """One decoded message of ``POST /build``'s stream as a :class:`BuildEvent`; an error
    message (``errorDetail``: a ``RUN`` that failed, with its exit code as ``code``) raises
    :class:`BuildFailed` with the engine's message."""
    if raw.get("errorDetail") or raw.get("error"):
        detail = raw.get("errorDetail") or {}
        message = str(detail.get("message") or raw.get("error") or "the build failed")
        code = detail.get("code")
        raise BuildFailed(message.strip(), int(code) if isinstance(code, int) else None)
    aux = raw.get("aux")
    if isinstance(aux, dict) and aux.get("ID"):
        return BuildEvent(image_id=str(aux["ID"]))
    if raw.get("status"):
        parts = [str(raw["id"]) + ":" if raw.get("id") else "", str(raw["status"])]
        if raw.get("progress"):
            parts.append(str(raw["progress"]))
        return BuildEvent(status=" ".join(p for p in parts if p))
    return BuildEvent(output=str(raw.get("stream") or ""))


def engine_event(raw: dict[str, Any]) -> EngineEvent:
    """One message of ``GET /events``."""
    actor = raw.get("Actor") or {}
    return EngineEvent(
        type=str(raw.get("Type") or ""),
        action=str(raw.get("Action") or raw.get("status") or ""),
        actor_id=str(actor.get("ID") or raw.get("id") or ""),
        attributes=labels_of(actor.get("Attributes")),
    )


def engine_version(raw: dict[str, Any]) -> EngineVersion:
    """``GET /version``'s answer."""
    return EngineVersion(
        version=str(raw.get("Version") or "?"),
        api_version=str(raw.get("ApiVersion") or ""),
        os=str(raw.get("Os") or "linux"),
        arch=str(raw.get("Arch") or "amd64"),
    )


def image_details(raw: dict[str, Any]) -> ImageDetails:
    """``GET /images/{name}/json``'s answer."""
    config = raw.get("Config") or {}
    test = (config.get("Healthcheck") or {}).get("Test") or []
    return ImageDetails(
        id=raw["Id"],
        repo_digests=tuple(sorted(raw.get("RepoDigests") or ())),
        repo_tags=tuple(sorted(raw.get("RepoTags") or ())),
        labels=labels_of(config.get("Labels")),
        has_healthcheck=bool(test) and test[0] != "NONE",
    )


def network_summary(raw: dict[str, Any]) -> NetworkSummary:
    """One network of ``GET /networks``."""
    return NetworkSummary(
        id=raw["Id"],
        name=raw["Name"],
        labels=labels_of(raw.get("Labels")),
        driver=str(raw.get("Driver") or ""),
        internal=bool(raw.get("Internal")),
    )


def volume_summary(raw: dict[str, Any], name: str = "") -> VolumeSummary:
    """One volume of ``GET /volumes`` (or a create's answer: ``name`` when it has none)."""
    return VolumeSummary(
        name=str(raw.get("Name") or name),
        labels=labels_of(raw.get("Labels")),
        driver=str(raw.get("Driver") or ""),
    )
