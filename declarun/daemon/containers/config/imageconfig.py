"""The part of an image config a container starts from, and Docker's create-time merge.

``ImageConfig.from_json`` reads an OCI/Docker image config document (the whole document
with its ``config`` object, or that object alone). ``merge_image_config`` applies dockerd's
``merge(userConf, imageConf)`` rules; ``process_args``/``process_env`` give the process the
runtime starts (Docker's ``getEntrypointAndArgs`` and ``CreateDaemonEnvironment``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from declarun.daemon.containers.config.defaults import DEFAULT_PATH
from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.fields import (
    get_object,
    get_str,
    get_str_list,
    get_str_map,
    get_strslice,
)
from declarun.daemon.containers.config.request import (
    ContainerConfig,
    Healthcheck,
    parse_healthcheck,
)
from declarun.frozen import FrozenDict

__all__ = [
    "ImageConfig",
    "merge_env",
    "merge_image_config",
    "process_args",
    "process_env",
]


@dataclass(frozen=True)
class ImageConfig:
    """What an image says about the containers made from it."""

    user: str = ""
    env: tuple[str, ...] = ()
    entrypoint: tuple[str, ...] | None = None
    cmd: tuple[str, ...] | None = None
    working_dir: str = ""
    exposed_ports: tuple[str, ...] = ()
    stop_signal: str = ""
    healthcheck: Healthcheck | None = None
    labels: FrozenDict[str, str] = field(default_factory=FrozenDict)
    volumes: tuple[str, ...] = ()

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ImageConfig:
        """Parse an image config document; a malformed one is an :class:`InvalidCreateRequest`.

        The keys are Docker's (``Env``, ``Cmd``, ...); OCI image configs use the same.
        """
        inner = get_object(doc, "config", "image config") if "config" in doc else doc
        where = "image config"
        return cls(
            user=get_str(inner, "User", field=f"{where} User"),
            env=get_str_list(inner, "Env", f"{where} Env"),
            entrypoint=get_strslice(inner, "Entrypoint", f"{where} Entrypoint"),
            cmd=get_strslice(inner, "Cmd", f"{where} Cmd"),
            working_dir=get_str(inner, "WorkingDir", field=f"{where} WorkingDir"),
            exposed_ports=tuple(get_object(inner, "ExposedPorts", f"{where} ExposedPorts")),
            stop_signal=get_str(inner, "StopSignal", field=f"{where} StopSignal"),
            healthcheck=parse_healthcheck(inner, f"{where} Healthcheck"),
            labels=get_str_map(inner, "Labels", f"{where} Labels"),
            volumes=tuple(get_object(inner, "Volumes", f"{where} Volumes")),
        )


def _env_key(entry: str) -> str:
    return entry.partition("=")[0]


def merge_env(first: tuple[str, ...], then: tuple[str, ...]) -> tuple[str, ...]:
    """``first`` plus the entries of ``then`` whose key ``first`` does not set."""
    keys = {_env_key(e) for e in first}
    return first + tuple(e for e in then if _env_key(e) not in keys)


def _merge_healthcheck(user: Healthcheck | None, image: Healthcheck | None) -> Healthcheck | None:
    if image is None or user is None:
        return user if user is not None else image
    return Healthcheck(
        test=user.test or image.test,
        interval=user.interval or image.interval,
        timeout=user.timeout or image.timeout,
        retries=user.retries or image.retries,
        start_period=user.start_period or image.start_period,
        start_interval=user.start_interval or image.start_interval,
    )


def merge_image_config(user: ContainerConfig, image: ImageConfig) -> ContainerConfig:
    """The container's effective ``Config``: the request completed from the image.

    * Env: the request's entries, then the image's whose key the request does not set.
    * Entrypoint: the request's if given (even empty, which clears the image's); then Cmd
      is only the request's: an image's Cmd belongs to the image's Entrypoint. Otherwise the
      image's Entrypoint, and the request's Cmd if non-empty, else the image's.
    * User, WorkingDir, StopSignal: the request's when set. Labels, ExposedPorts and Volumes:
      union (request wins). Healthcheck: field-wise, request first.

    Raises :class:`InvalidCreateRequest` (``No command specified``) when nothing is left to run.
    """
    cmd, entrypoint = user.cmd, user.entrypoint
    if not entrypoint:
        if not cmd:
            cmd = image.cmd
        if entrypoint is None:
            entrypoint = image.entrypoint
    labels = dict(image.labels)
    labels.update(user.labels)
    merged = replace(
        user,
        user=user.user or image.user,
        env=merge_env(user.env, image.env),
        cmd=cmd,
        entrypoint=entrypoint,
        working_dir=user.working_dir or image.working_dir,
        labels=FrozenDict(labels),
        exposed_ports=tuple(dict.fromkeys(user.exposed_ports + image.exposed_ports)),
        volumes=tuple(dict.fromkeys(user.volumes + image.volumes)),
        healthcheck=_merge_healthcheck(user.healthcheck, image.healthcheck),
        stop_signal=user.stop_signal or image.stop_signal,
    )
    if not process_args(merged):
        raise InvalidCreateRequest("No command specified")
    return merged


def process_args(config: ContainerConfig) -> tuple[str, ...]:
    """Entrypoint + Cmd. An Entrypoint of ``[""]`` (``--entrypoint ""``) counts as none."""
    entrypoint = config.entrypoint or ()
    if entrypoint == ("",):
        entrypoint = ()
    return tuple(entrypoint) + tuple(config.cmd or ())


def process_env(config: ContainerConfig, *, hostname: str | None = None) -> tuple[str, ...]:
    """The process environment, built the way dockerd builds it.

    ``PATH`` (Docker's default), ``HOSTNAME`` and, with a TTY, ``TERM=xterm`` come first;
    the container's Env then replaces those keys in place or is appended.
    """
    base = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname or config.hostname}"]
    if config.tty:
        base.append("TERM=xterm")
    env = {_env_key(e): e for e in base}
    for entry in config.env:
        # A bare "KEY" unsets KEY, as in dockerd's ReplaceOrAppendEnvValues.
        if "=" in entry:
            env[_env_key(entry)] = entry
        else:
            env.pop(entry, None)
    return tuple(env.values())
