"""Expand a container's ``ports:`` into one ``PortBinding`` per published port.

Short forms: ``80``, ``"8080:80"``, ``"127.0.0.1:8080:80/udp"``, ``"[::1]:8080:80"``,
``"127.0.0.1::80"`` (ephemeral host port), ``"8080-8081:80-81"`` and ``"80-81"`` (ranges).
Long form: ``{target, published, host_ip, protocol}``.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any, cast

from declarun.stack.model import PortBinding, Protocol
from declarun.stack.normalize_common import FieldPath, Normalizer, scalar_text

__all__ = ["normalize_ports"]

_PROTOCOLS = ("tcp", "udp", "sctp")
_SHORT_HELP = "expected [HOST_IP:][HOST_PORT:]CONTAINER_PORT[/PROTOCOL], e.g. 127.0.0.1:8080:80/tcp"


class _PortError(ValueError):
    """A port entry is wrong; the message is for the user."""


def _port_range(text: str, what: str) -> range:
    start_text, sep, end_text = text.strip().partition("-")
    try:
        start = int(start_text)
        end = int(end_text) if sep else start
    except ValueError:
        raise _PortError(
            f"{what} {text!r} is not a port number or a range like 8080-8081"
        ) from None
    for port in (start, end):
        if not 1 <= port <= 65535:
            raise _PortError(f"{what} {port} is out of range (1-65535)")
    if end < start:
        raise _PortError(f"{what} range {text!r} ends before it starts")
    return range(start, end + 1)


def _host_ip(text: str | None) -> str | None:
    if text is None or text == "":
        return None
    try:
        return str(ipaddress.ip_address(text.strip("[]")))
    except ValueError:
        raise _PortError(f"host IP {text!r} is not an IP address") from None


def _protocol(text: str) -> Protocol:
    protocol = text.strip().lower()
    if protocol not in _PROTOCOLS:
        raise _PortError(f"protocol {text!r} is not one of tcp, udp, sctp")
    return cast(Protocol, protocol)


def _expand(host_ip: str | None, host: str | None, container: str, protocol: str) -> list[Any]:
    """One (ip, host port, container port, protocol) per port; ranges must have equal length."""
    container_ports = _port_range(container, "container port")
    ip = _host_ip(host_ip)
    proto = _protocol(protocol)
    if host is None or host == "":
        return [(ip, None, port, proto) for port in container_ports]
    host_ports = _port_range(host, "host port")
    if len(host_ports) != len(container_ports):
        raise _PortError(
            f"host range {host!r} has {len(host_ports)} ports but container range "
            f"{container!r} has {len(container_ports)}; they must be the same length"
        )
    return [(ip, h, c, proto) for h, c in zip(host_ports, container_ports, strict=True)]


def _split_short(text: str) -> tuple[str | None, str | None, str, str]:
    spec, protocol = text.strip(), "tcp"
    if "/" in spec:
        spec, _, protocol = spec.rpartition("/")
    if spec.startswith("["):  # bracketed IPv6 host address
        end = spec.find("]")
        rest = spec[end + 1 :] if end > 0 else ""
        parts = rest[1:].split(":") if rest.startswith(":") else []
        if len(parts) != 2:
            raise _PortError(f"{text!r}: {_SHORT_HELP}")
        return spec[1:end], parts[0], parts[1], protocol
    parts = spec.split(":")
    if len(parts) == 1:
        return None, None, parts[0], protocol
    if len(parts) == 2:
        return None, parts[0], parts[1], protocol
    if len(parts) == 3:
        return parts[0], parts[1], parts[2], protocol
    raise _PortError(f"{text!r}: {_SHORT_HELP} (write IPv6 host addresses in brackets: [::1])")


def _long_form(entry: Mapping[str, Any]) -> list[Any]:
    target = entry.get("target")
    published = entry.get("published")
    host = None if published is None else scalar_text(published)
    return _expand(
        entry.get("host_ip"), host, scalar_text(target), str(entry.get("protocol") or "tcp")
    )


def normalize_ports(ctx: Normalizer, value: Any, path: FieldPath) -> tuple[PortBinding, ...]:
    """All bindings of a ``ports:`` list, in order; each invalid entry becomes a problem."""
    if not isinstance(value, list):
        return ()
    bindings: list[PortBinding] = []
    for index, entry in enumerate(value):
        item_path = (*path, index)
        try:
            if isinstance(entry, Mapping):
                expanded = _long_form(entry)
            elif isinstance(entry, int) and not isinstance(entry, bool):
                expanded = _expand(None, None, str(entry), "tcp")
            else:
                expanded = _expand(*_split_short(scalar_text(entry)))
        except _PortError as exc:
            ctx.problem(item_path, str(exc))
            continue
        location = ctx.locate(item_path)
        for ip, host_port, container_port, protocol in expanded:
            bindings.append(
                PortBinding(
                    container_port=container_port,
                    host_port=host_port,
                    host_ip=ip,
                    protocol=protocol,
                    location=location,
                )
            )
    return tuple(bindings)
