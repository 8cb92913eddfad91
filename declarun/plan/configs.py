"""The canonical configuration of each resource, in the stack's own terms.

This is what a resource's ``dev.declarun.config`` label records and what its config hash is
computed over; the plan compares the desired one with the recorded one field by field, so a
reason reads ``resources.memory: 268435456 → 536870912`` or ``ports: ["8080:80/tcp"] →
["8081:80/tcp"]`` — the words of the stack file, not of the engine.

Only what shapes the created object is included: ``depends_on`` (start order), ``replicas``
(how many, not what each is) and ``profiles`` (whether, not what) are left out, so changing
them never recreates a container. Secret environment values appear only as salted hashes
(:func:`~declarun.plan.identity.mask_secret`); the labels never hold a secret in clear.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from declarun.plan.identity import is_secret_key, mask_secret
from declarun.stack.model import (
    Container,
    EnvValue,
    Healthcheck,
    Mount,
    Network,
    PortBinding,
    Volume,
)
from declarun.stack.units import format_duration

__all__ = [
    "NESTED_FIELDS",
    "container_config",
    "env_display",
    "mount_text",
    "network_config",
    "port_text",
    "volume_config",
]

#: Fields whose value is a mapping: a change is reported per key (``env.LOG_LEVEL``).
NESTED_FIELDS = frozenset(
    {"env", "labels", "resources", "healthcheck", "networks", "driver_opts", "engine_names"}
)


def env_display(key: str, value: EnvValue) -> str:
    """An environment value as plans and labels may show it: masked when secret."""
    if value.secret or is_secret_key(key):
        return mask_secret(key, value.value)
    return value.value


def port_text(port: PortBinding) -> str:
    """``[host_ip:][host_port:]container_port/protocol``, IPv6 host addresses in brackets."""
    host_ip = port.host_ip or ""
    if ":" in host_ip:
        host_ip = f"[{host_ip}]"
    host_port = "" if port.host_port is None else str(port.host_port)
    if host_ip:
        prefix = f"{host_ip}:{host_port}:"
    elif host_port:
        prefix = f"{host_port}:"
    else:
        prefix = ""
    return f"{prefix}{port.container_port}/{port.protocol}"


def mount_text(mount: Mount) -> str:
    """``type:source:target[:ro]`` with tmpfs options, readable in a one-line reason."""
    text = f"{mount.type}:{mount.source or ''}:{mount.target}"
    if mount.read_only:
        text += ":ro"
    options = []
    if mount.tmpfs_size is not None:
        options.append(f"size={mount.tmpfs_size}")
    if mount.tmpfs_mode is not None:
        options.append(f"mode={mount.tmpfs_mode:o}")
    if options:
        text += ":" + ",".join(options)
    return text


def _healthcheck(check: Healthcheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "test": list(check.test),
        "interval": format_duration(check.interval),
        "timeout": format_duration(check.timeout),
        "retries": check.retries,
        "start_period": format_duration(check.start_period),
    }


def container_config(
    container: Container, image_ref: str, engine_names: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The canonical configuration of one replica of ``container``, running ``image_ref``.

    ``image_ref`` is the reference as the stack writes it (never the lock's pin: a locked digest
    change shows up as an image change, not a configuration change). ``engine_names`` are the
    volumes and networks it uses under another name than ``<stack>-<name>`` (``volume:data``
    → ``team-data``): recorded only when there are some.
    """
    restart: str = container.restart.name
    if restart == "on-failure" and container.restart.max_retries:
        restart = f"on-failure:{container.restart.max_retries}"
    config = {
        "image": image_ref,
        "command": None if container.command is None else list(container.command),
        "entrypoint": None if container.entrypoint is None else list(container.entrypoint),
        "env": {key: env_display(key, value) for key, value in container.env.items()},
        "env_files": [str(env_file.path) for env_file in container.env_files],
        "working_dir": container.working_dir,
        "user": container.user,
        "hostname": container.hostname,
        "ports": [port_text(port) for port in container.ports],
        "mounts": [mount_text(mount) for mount in container.mounts],
        "networks": {
            attachment.network: {
                "aliases": list(attachment.aliases),
                "ipv4_address": attachment.ipv4_address,
            }
            for attachment in container.networks
        },
        "healthcheck": _healthcheck(container.healthcheck),
        "restart": restart,
        "resources": {
            "cpus": container.resources.cpus,
            "memory": container.resources.memory,
            "pids": container.resources.pids,
        },
        "labels": dict(container.labels),
        "stop_signal": container.stop_signal,
        "stop_grace_period": format_duration(container.stop_grace_period),
        "read_only": container.read_only,
        "cap_add": list(container.cap_add),
        "cap_drop": list(container.cap_drop),
        "run": container.run,
    }
    # Fields added after the first release are recorded only when set, so the configuration
    # (and hash) of a container that does not use them stays what it was: no replacement
    # of every container on upgrade.
    later = {
        "init": container.init,
        "extra_hosts": list(container.extra_hosts),
        "dns": list(container.dns),
        "engine_names": dict(engine_names or {}),
    }
    config.update((key, value) for key, value in later.items() if value not in (None, [], {}))
    return config


def network_config(network: Network) -> dict[str, Any]:
    """The canonical configuration of a network."""
    config: dict[str, Any] = {
        "driver": network.driver,
        "subnet": network.subnet,
        "gateway": network.gateway,
        "internal": network.internal,
        "labels": dict(network.labels),
    }
    if network.driver_opts:  # added later: recorded only when set, so older hashes hold
        config["driver_opts"] = dict(network.driver_opts)
    return config


def volume_config(volume: Volume) -> dict[str, Any]:
    """The canonical configuration of a volume (``keep`` is a policy, not configuration)."""
    return {
        "driver": volume.driver,
        "driver_opts": dict(volume.driver_opts),
        "labels": dict(volume.labels),
    }
