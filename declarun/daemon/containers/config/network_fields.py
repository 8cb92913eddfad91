"""Network-facing fields of a create request: port keys, port bindings, DNS and extra hosts."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.fields import get_str
from declarun.frozen import FrozenDict

__all__ = [
    "PortBinding",
    "check_dns",
    "check_extra_hosts",
    "normalize_port",
    "parse_port_bindings",
]

_PORT_KEY = re.compile(r"(\d{1,5})(?:-(\d{1,5}))?(?:/(tcp|udp|sctp))?")
_HOST_PORT = re.compile(r"\d{1,5}(?:-\d{1,5})?")


@dataclass(frozen=True)
class PortBinding:
    """Where a container port is published on the host (empty strings: any / ephemeral)."""

    host_ip: str = ""
    host_port: str = ""


def parse_port_bindings(raw: Mapping[str, Any]) -> FrozenDict[str, tuple[PortBinding, ...]]:
    result: dict[str, tuple[PortBinding, ...]] = {}
    for key, items in raw.items():
        port = normalize_port(key)
        bindings: list[PortBinding] = []
        for item in items or []:
            if not isinstance(item, Mapping):
                raise InvalidCreateRequest("invalid value for PortBindings: expected objects")
            host_ip = get_str(item, "HostIp", field="PortBindings.HostIp")
            host_port = get_str(item, "HostPort", field="PortBindings.HostPort")
            if host_ip:
                _check_ip(host_ip, "invalid host IP address")
            if host_port and not _HOST_PORT.fullmatch(host_port):
                raise InvalidCreateRequest(f"invalid hostPort: {host_port}")
            bindings.append(PortBinding(host_ip, host_port))
        result[port] = tuple(bindings)
    return FrozenDict(result)


def normalize_port(key: str) -> str:
    """``80`` → ``80/tcp``; Docker's ``invalid port specification`` when malformed."""
    match = _PORT_KEY.fullmatch(key)
    if not match or not 0 < int(match.group(1)) <= 65535:
        raise InvalidCreateRequest(f'invalid port specification: "{key}"')
    proto = match.group(3) or "tcp"
    ports = match.group(1) + (f"-{match.group(2)}" if match.group(2) else "")
    return f"{ports}/{proto}"


def _check_ip(value: str, what: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise InvalidCreateRequest(f'{what}: "{value}"') from None


def check_extra_hosts(hosts: tuple[str, ...]) -> tuple[str, ...]:
    for entry in hosts:
        sep = "=" if "=" in entry else ":"
        name, _, address = entry.partition(sep)
        if not name or not address:
            raise InvalidCreateRequest(f"bad format for add-host: {entry!r}")
        if address != "host-gateway":
            _check_ip(address.strip("[]"), "invalid IP address in add-host")
    return hosts


def check_dns(servers: tuple[str, ...]) -> tuple[str, ...]:
    for server in servers:
        _check_ip(server, "invalid IP address in Dns")
    return servers
