"""A ``POST /containers/create`` request as frozen, validated values, and their inspect shapes.

``parse_create_request(body, name=...)`` checks the whole body (``ContainerConfig`` fields at
the top level, ``HostConfig``, ``NetworkingConfig``) and raises
:class:`InvalidCreateRequest` with dockerd's wording on the first problem. The result still
holds the request as sent (Cmd/Entrypoint ``None`` when absent); merging with the image is
:func:`declarun.daemon.containers.config.imageconfig.merge_image_config`.
"""

from __future__ import annotations

import posixpath
import re
import signal
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.fields import (
    get_bool,
    get_int,
    get_object,
    get_str,
    get_str_list,
    get_str_map,
    get_strslice,
)
from declarun.daemon.containers.config.hostconfig import HostConfig, parse_host_config
from declarun.daemon.containers.config.network_fields import normalize_port
from declarun.frozen import FrozenDict, freeze, thaw

__all__ = [
    "ContainerConfig",
    "CreateRequest",
    "Healthcheck",
    "InvalidCreateRequest",
    "check_container_name",
    "parse_create_request",
    "parse_healthcheck",
    "parse_stop_signal",
]

MIN_DURATION = 1_000_000  # 1ms in ns: Docker's containertypes.MinimumDuration
_NAME = re.compile(r"/?[a-zA-Z0-9][a-zA-Z0-9_.-]+")


@dataclass(frozen=True)
class Healthcheck:
    """``HealthConfig``: durations in nanoseconds, 0 meaning "inherit / default"."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    retries: int = 0
    start_period: int = 0
    start_interval: int = 0

    @property
    def disabled(self) -> bool:
        """``Test: ["NONE"]`` turns off a health check inherited from the image."""
        return self.test[:1] == ("NONE",)

    def to_api(self) -> dict[str, Any]:
        """Docker's JSON shape (zero durations omitted, as Go's ``omitempty`` does)."""
        out: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (("Interval", self.interval), ("Timeout", self.timeout),
                           ("StartPeriod", self.start_period),
                           ("StartInterval", self.start_interval), ("Retries", self.retries)):  # fmt: skip
            if value:
                out[key] = value
        return out


@dataclass(frozen=True)
class ContainerConfig:
    """The portable part of a container's configuration (Docker's ``Config``)."""

    image: str
    hostname: str = ""
    domainname: str = ""
    user: str = ""
    env: tuple[str, ...] = ()
    cmd: tuple[str, ...] | None = None
    entrypoint: tuple[str, ...] | None = None
    working_dir: str = ""
    labels: FrozenDict[str, str] = field(default_factory=FrozenDict)
    exposed_ports: tuple[str, ...] = ()
    volumes: tuple[str, ...] = ()
    healthcheck: Healthcheck | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    network_disabled: bool = False
    mac_address: str = ""

    def with_hostname(self, hostname: str) -> ContainerConfig:
        """A copy with ``hostname`` set (Docker defaults it to the short container ID)."""
        return replace(self, hostname=hostname)

    def to_inspect(self) -> dict[str, Any]:
        """The ``Config`` object of ``GET /containers/{id}/json``."""
        out: dict[str, Any] = {
            "Hostname": self.hostname,
            "Domainname": self.domainname,
            "User": self.user,
            "AttachStdin": self.attach_stdin,
            "AttachStdout": self.attach_stdout,
            "AttachStderr": self.attach_stderr,
        }
        if self.exposed_ports:
            out["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        out.update(
            {
                "Tty": self.tty,
                "OpenStdin": self.open_stdin,
                "StdinOnce": self.stdin_once,
                "Env": list(self.env) or None,
                "Cmd": None if self.cmd is None else list(self.cmd),
            }
        )
        if self.healthcheck is not None:
            out["Healthcheck"] = self.healthcheck.to_api()
        out.update(
            {
                "Image": self.image,
                "Volumes": {v: {} for v in self.volumes} or None,
                "WorkingDir": self.working_dir,
                "Entrypoint": None if self.entrypoint is None else list(self.entrypoint),
                "OnBuild": None,
                "Labels": dict(self.labels),
            }
        )
        if self.mac_address:
            out["MacAddress"] = self.mac_address
        if self.stop_signal:
            out["StopSignal"] = self.stop_signal
        if self.stop_timeout is not None:
            out["StopTimeout"] = self.stop_timeout
        return out


@dataclass(frozen=True)
class CreateRequest:
    """A whole, validated create request."""

    name: str
    config: ContainerConfig
    host_config: HostConfig
    #: ``NetworkingConfig.EndpointsConfig`` as sent (frozen): network name → settings.
    endpoints: FrozenDict[str, Any] = field(default_factory=FrozenDict)

    def to_inspect(self) -> dict[str, Any]:
        """``{"Config": ..., "HostConfig": ...}`` for the inspect document."""
        return {"Config": self.config.to_inspect(), "HostConfig": self.host_config.to_inspect()}

    def endpoints_json(self) -> dict[str, Any]:
        """``EndpointsConfig`` back as plain JSON data."""
        result: dict[str, Any] = thaw(self.endpoints)
        return result


def check_container_name(name: str) -> str:
    """A valid container name without its leading slash ("" when none was given)."""
    if name and not _NAME.fullmatch(name):
        raise InvalidCreateRequest(
            f"Invalid container name ({name}), only [a-zA-Z0-9][a-zA-Z0-9_.-] are allowed"
        )
    return name.removeprefix("/")


def parse_healthcheck(body: Mapping[str, Any], where: str = "Healthcheck") -> Healthcheck | None:
    """``body["Healthcheck"]`` validated like dockerd's ``validateHealthCheck``."""
    raw = body.get("Healthcheck")
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise InvalidCreateRequest(f"invalid value for {where}: expected an object")
    check = Healthcheck(
        test=get_str_list(raw, "Test", f"{where}.Test"),
        interval=get_int(raw, "Interval", field=f"{where}.Interval"),
        timeout=get_int(raw, "Timeout", field=f"{where}.Timeout"),
        retries=get_int(raw, "Retries", field=f"{where}.Retries"),
        start_period=get_int(raw, "StartPeriod", field=f"{where}.StartPeriod"),
        start_interval=get_int(raw, "StartInterval", field=f"{where}.StartInterval"),
    )
    for name, value in (("Interval", check.interval), ("Timeout", check.timeout),
                        ("StartPeriod", check.start_period),
                        ("StartInterval", check.start_interval)):  # fmt: skip
        if value != 0 and value < MIN_DURATION:
            raise InvalidCreateRequest(f"{name} in Healthcheck cannot be less than 1ms")
    if check.retries < 0:
        raise InvalidCreateRequest("Retries in Healthcheck cannot be negative")
    if check.test and check.test[0] not in ("NONE", "CMD", "CMD-SHELL"):
        raise InvalidCreateRequest(f'unknown Healthcheck type "{check.test[0]}"')
    return check


def parse_stop_signal(value: str) -> int:
    """Signal number of ``SIGTERM``/``TERM``/``15``/``SIGRTMIN+3``; ``invalid signal: X``."""
    text = value.strip().upper().removeprefix("SIG")
    number: int | None = None
    if text.isdigit():
        number = int(text)
    elif text.startswith(("RTMIN", "RTMAX")):
        base = signal.SIGRTMIN if text.startswith("RTMIN") else signal.SIGRTMAX
        offset = text[5:]
        try:
            number = base + (int(offset) if offset else 0)
        except ValueError:
            number = None
    elif f"SIG{text}" in signal.Signals.__members__:
        number = int(signal.Signals[f"SIG{text}"])
    if number is None or not 0 < number <= int(signal.SIGRTMAX):
        raise InvalidCreateRequest(f"invalid signal: {value}")
    return number


def _env(values: tuple[str, ...]) -> tuple[str, ...]:
    for entry in values:
        if entry.partition("=")[0] == "" or "\x00" in entry:
            raise InvalidCreateRequest(f"invalid environment variable: {entry}")
    return values


def _working_dir(value: str) -> str:
    if not value:
        return ""
    if not posixpath.isabs(value):
        raise InvalidCreateRequest(
            f"the working directory '{value}' is invalid, it needs to be an absolute path"
        )
    return posixpath.normpath(value)


def _ports(body: Mapping[str, Any]) -> tuple[str, ...]:
    ports = get_object(body, "ExposedPorts")
    return tuple(dict.fromkeys(normalize_port(p) for p in ports))


def parse_container_config(body: Mapping[str, Any]) -> ContainerConfig:
    """The ``ContainerConfig`` part (top-level fields) of a create body."""
    image = get_str(body, "Image")
    if not image:
        raise InvalidCreateRequest("Config cannot be empty in order to create a container")
    hostname = get_str(body, "Hostname")
    if len(hostname) > 253 or any(c.isspace() or c in "/\x00" for c in hostname):
        raise InvalidCreateRequest(f"invalid hostname format: {hostname}")
    stop_signal = get_str(body, "StopSignal")
    if stop_signal:
        parse_stop_signal(stop_signal)
    stop_timeout = body.get("StopTimeout")
    volumes = get_object(body, "Volumes")
    for path in volumes:
        if not posixpath.isabs(path):
            raise InvalidCreateRequest(
                f"invalid mount config for type \"volume\": invalid mount path: '{path}' "
                "mount path must be absolute"
            )
    return ContainerConfig(
        image=image,
        hostname=hostname,
        domainname=get_str(body, "Domainname"),
        user=get_str(body, "User"),
        env=_env(get_str_list(body, "Env")),
        cmd=get_strslice(body, "Cmd"),
        entrypoint=get_strslice(body, "Entrypoint"),
        working_dir=_working_dir(get_str(body, "WorkingDir")),
        labels=get_str_map(body, "Labels"),
        exposed_ports=_ports(body),
        volumes=tuple(posixpath.normpath(v) for v in volumes),
        healthcheck=parse_healthcheck(body),
        stop_signal=stop_signal,
        stop_timeout=None if stop_timeout is None else get_int(body, "StopTimeout"),
        tty=get_bool(body, "Tty"),
        open_stdin=get_bool(body, "OpenStdin"),
        stdin_once=get_bool(body, "StdinOnce"),
        attach_stdin=get_bool(body, "AttachStdin"),
        attach_stdout=get_bool(body, "AttachStdout"),
        attach_stderr=get_bool(body, "AttachStderr"),
        network_disabled=get_bool(body, "NetworkDisabled"),
        mac_address=get_str(body, "MacAddress"),
    )


def parse_create_request(
    body: Any,
    *,
    name: str = "",
    path_exists: Callable[[str], bool] | None = None,
    cpu_count: int | None = None,
) -> CreateRequest:
    """Validate a whole create body (and the ``name`` query parameter).

    ``path_exists`` checks bind sources (default: the host file system); ``cpu_count`` bounds
    NanoCpus (default: this machine's).
    """
    if not isinstance(body, Mapping):
        raise InvalidCreateRequest("Config cannot be empty in order to create a container")
    config = parse_container_config(body)
    host_body = get_object(body, "HostConfig")
    kwargs: dict[str, Any] = {"cpu_count": cpu_count}
    if path_exists is not None:
        kwargs["path_exists"] = path_exists
    host = parse_host_config(host_body, **kwargs)
    networking = get_object(body, "NetworkingConfig")
    endpoints = get_object(networking, "EndpointsConfig", "NetworkingConfig.EndpointsConfig")
    return CreateRequest(
        name=check_container_name(name),
        config=config,
        host_config=host,
        endpoints=freeze(dict(endpoints)),
    )
