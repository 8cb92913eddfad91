"""An image's run configuration and history entries, as dockerd stores them.

:class:`ImageConfig` is the ``config`` object of an image (Docker's ``container.Config``):
frozen, read from and written to Docker's JSON with dockerd 20.10's field order and its
``null``/omitted conventions, so a config evolved by :mod:`declarun.dockerfile.evaluate`
serialises byte for byte like one from dockerd's classic builder. :class:`HistoryEntry` is
one ``history`` item. :func:`image_document` assembles a whole image config JSON document.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["HealthConfig", "HistoryEntry", "ImageConfig", "image_document"]


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(str(v) for v in value)


def _keys(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(sorted(str(k) for k in value))


@dataclass(frozen=True)
class HealthConfig:
    """``Healthcheck``: ``test`` (``("NONE",)``, ``("CMD", ...)``, ``("CMD-SHELL", cmd)``)."""

    test: tuple[str, ...] = ()
    interval: int = 0
    timeout: int = 0
    start_period: int = 0
    start_interval: int = 0
    retries: int = 0

    @classmethod
    def from_docker(cls, doc: Mapping[str, Any]) -> HealthConfig:
        """From Docker's JSON object."""
        return cls(
            test=_strings(doc.get("Test")) or (),
            interval=int(doc.get("Interval") or 0),
            timeout=int(doc.get("Timeout") or 0),
            start_period=int(doc.get("StartPeriod") or 0),
            start_interval=int(doc.get("StartInterval") or 0),
            retries=int(doc.get("Retries") or 0),
        )

    def to_docker(self) -> dict[str, Any]:
        """Docker's JSON object (zero durations and retries omitted)."""
        doc: dict[str, Any] = {"Test": list(self.test)}
        for key, value in (
            ("Interval", self.interval),
            ("Timeout", self.timeout),
            ("StartPeriod", self.start_period),
            ("StartInterval", self.start_interval),
            ("Retries", self.retries),
        ):
            if value:
                doc[key] = value
        return doc


@dataclass(frozen=True)
class ImageConfig:
    """An image's ``config``. ``None`` for a list or map field means Docker's ``null``.

    ``exposed_ports`` and ``volumes`` are the sorted keys of Docker's sets; ``labels`` the
    sorted ``(key, value)`` pairs; ``image`` the parent image ID dockerd records.
    """

    hostname: str = ""
    domainname: str = ""
    user: str = ""
    attach_stdin: bool = False
    attach_stdout: bool = False
    attach_stderr: bool = False
    exposed_ports: tuple[str, ...] | None = None
    tty: bool = False
    open_stdin: bool = False
    stdin_once: bool = False
    env: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    healthcheck: HealthConfig | None = None
    args_escaped: bool = False
    image: str = ""
    volumes: tuple[str, ...] | None = None
    working_dir: str = ""
    entrypoint: tuple[str, ...] | None = None
    network_disabled: bool = False
    mac_address: str = ""
    on_build: tuple[str, ...] | None = None
    labels: tuple[tuple[str, str], ...] | None = None
    stop_signal: str = ""
    stop_timeout: int | None = None
    shell: tuple[str, ...] | None = None

    @classmethod
    def from_docker(cls, doc: Mapping[str, Any] | None) -> ImageConfig:
        """From an image's ``config`` JSON object (None or ``{}`` for none, as scratch)."""
        doc = doc or {}
        health = doc.get("Healthcheck")
        labels = doc.get("Labels")
        return cls(
            hostname=str(doc.get("Hostname") or ""),
            domainname=str(doc.get("Domainname") or ""),
            user=str(doc.get("User") or ""),
            attach_stdin=bool(doc.get("AttachStdin")),
            attach_stdout=bool(doc.get("AttachStdout")),
            attach_stderr=bool(doc.get("AttachStderr")),
            exposed_ports=_keys(doc.get("ExposedPorts")),
            tty=bool(doc.get("Tty")),
            open_stdin=bool(doc.get("OpenStdin")),
            stdin_once=bool(doc.get("StdinOnce")),
            env=_strings(doc.get("Env")),
            cmd=_strings(doc.get("Cmd")),
            healthcheck=HealthConfig.from_docker(health) if health else None,
            args_escaped=bool(doc.get("ArgsEscaped")),
            image=str(doc.get("Image") or ""),
            volumes=_keys(doc.get("Volumes")),
            working_dir=str(doc.get("WorkingDir") or ""),
            entrypoint=_strings(doc.get("Entrypoint")),
            network_disabled=bool(doc.get("NetworkDisabled")),
            mac_address=str(doc.get("MacAddress") or ""),
            on_build=_strings(doc.get("OnBuild")),
            labels=None if labels is None else tuple(sorted(labels.items())),
            stop_signal=str(doc.get("StopSignal") or ""),
            stop_timeout=doc.get("StopTimeout"),
            shell=_strings(doc.get("Shell")),
        )

    def to_docker(self) -> dict[str, Any]:
        """Docker's JSON object, in dockerd's field order with its omitempty rules."""
        doc: dict[str, Any] = {
            "Hostname": self.hostname,
            "Domainname": self.domainname,
            "User": self.user,
            "AttachStdin": self.attach_stdin,
            "AttachStdout": self.attach_stdout,
            "AttachStderr": self.attach_stderr,
        }
        if self.exposed_ports:
            doc["ExposedPorts"] = {port: {} for port in self.exposed_ports}
        doc.update(
            {
                "Tty": self.tty,
                "OpenStdin": self.open_stdin,
                "StdinOnce": self.stdin_once,
                "Env": None if self.env is None else list(self.env),
                "Cmd": None if self.cmd is None else list(self.cmd),
            }
        )
        if self.healthcheck is not None:
            doc["Healthcheck"] = self.healthcheck.to_docker()
        if self.args_escaped:
            doc["ArgsEscaped"] = True
        doc.update(
            {
                "Image": self.image,
                "Volumes": None if self.volumes is None else {v: {} for v in self.volumes},
                "WorkingDir": self.working_dir,
                "Entrypoint": None if self.entrypoint is None else list(self.entrypoint),
            }
        )
        if self.network_disabled:
            doc["NetworkDisabled"] = True
        if self.mac_address:
            doc["MacAddress"] = self.mac_address
        doc["OnBuild"] = None if self.on_build is None else list(self.on_build)
        doc["Labels"] = None if self.labels is None else dict(self.labels)
        if self.stop_signal:
            doc["StopSignal"] = self.stop_signal
        if self.stop_timeout is not None:
            doc["StopTimeout"] = self.stop_timeout
        if self.shell:
            doc["Shell"] = list(self.shell)
        return doc

    def env_value(self, key: str) -> str | None:
        """The value of environment variable ``key``, or None."""
        for item in self.env or ():
            name, _, value = item.partition("=")
            if name == key:
                return value
        return None

    def env_mapping(self) -> dict[str, str]:
        """The environment as a mapping (a later duplicate wins, as Docker reads it)."""
        result: dict[str, str] = {}
        for item in self.env or ():
            name, _, value = item.partition("=")
            result[name] = value
        return result


@dataclass(frozen=True)
class HistoryEntry:
    """One ``history`` item; ``created`` (RFC 3339) is the executor's to fill in."""

    created_by: str
    empty_layer: bool = False
    author: str = ""
    comment: str = ""
    created: str | None = None

    def to_docker(self) -> dict[str, Any]:
        """Docker's JSON object (empty fields omitted, as dockerd writes it)."""
        doc: dict[str, Any] = {}
        if self.created is not None:
            doc["created"] = self.created
        if self.author:
            doc["author"] = self.author
        doc["created_by"] = self.created_by
        if self.comment:
            doc["comment"] = self.comment
        if self.empty_layer:
            doc["empty_layer"] = True
        return doc


def image_document(
    *,
    config: ImageConfig,
    history: Sequence[HistoryEntry],
    diff_ids: Sequence[str],
    created: str,
    architecture: str,
    os: str = "linux",
    variant: str = "",
    author: str = "",
    container_config: ImageConfig | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """A complete image config JSON document (what is hashed into the image ID).

    ``history`` must hold one non-empty entry per ``diff_ids`` item, in order (the base
    image's entries first). ``container_config`` is the classic builder's record of the last
    step's run config; ``extra`` adds fields such as ``docker_version``.
    """
    layers = sum(1 for entry in history if not entry.empty_layer)
    if layers != len(diff_ids):
        raise ValueError(
            f"history has {layers} entries with a layer but there are {len(diff_ids)} layers"
        )
    doc: dict[str, Any] = {"architecture": architecture}
    if author:
        doc["author"] = author
    doc["config"] = config.to_docker()
    if container_config is not None:
        doc["container_config"] = container_config.to_docker()
    doc["created"] = created
    doc.update(extra or {})
    doc["history"] = [entry.to_docker() for entry in history]
    doc["os"] = os
    if variant:
        doc["variant"] = variant
    doc["rootfs"] = {"type": "layers", "diff_ids": list(diff_ids)}
    return doc
