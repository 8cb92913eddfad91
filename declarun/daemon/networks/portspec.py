"""The ports a container publishes, from ``PortBindings`` and ``PublishAllPorts`` (pure).

``-p 8080:80`` is ``{"80/tcp": [{"HostPort": "8080"}]}``; ``-p 80`` has an empty host port
(a random one); ``-p 8000-8001:80-81`` maps a range pairwise; a single container port with a
host range takes the first free port of the range. ``PublishAllPorts`` (``-P``) publishes
every exposed port that has no binding on a random host port.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from declarun.daemon.containers.config.network_fields import PortBinding
from declarun.daemon.networks.errors import NetworkError
from declarun.daemon.networks.ports import PublishedPort

__all__ = ["published_ports", "split_port_key"]


def split_port_key(key: str) -> tuple[int, int, str]:
    """``"80-81/tcp"`` → ``(80, 81, "tcp")``."""
    ports, _, proto = key.partition("/")
    start, _, end = ports.partition("-")
    return int(start), int(end or start), proto or "tcp"


def _host_range(text: str) -> tuple[int, int]:
    if not text:
        return 0, 0
    start, _, end = text.partition("-")
    return int(start), int(end or start)


def published_ports(
    bindings: Mapping[str, Sequence[PortBinding]],
    exposed: Iterable[str] = (),
    publish_all: bool = False,
) -> list[PublishedPort]:
    """Every port to bind, in a stable order."""
    wanted: list[PublishedPort] = []
    for key in sorted(bindings, key=split_port_key):
        start, end, proto = split_port_key(key)
        if proto not in ("tcp", "udp"):
            raise NetworkError(f"publishing {proto} ports is not supported by declarund")
        for binding in bindings[key] or (PortBinding(),):
            host_start, host_end = _host_range(binding.host_port)
            count = end - start + 1
            for offset in range(count):
                port = start + offset
                if host_start == 0:
                    wanted.append(PublishedPort(port, proto, binding.host_ip))
                elif count > 1:
                    if host_end - host_start + 1 != count:
                        raise NetworkError(
                            f"invalid ranges specified for container and host ports: {key} "
                            f"and {binding.host_port}"
                        )
                    wanted.append(PublishedPort(port, proto, binding.host_ip, host_start + offset))
                elif host_end != host_start:
                    wanted.append(PublishedPort(port, proto, binding.host_ip, host_start, host_end))
                else:
                    wanted.append(PublishedPort(port, proto, binding.host_ip, host_start))
    if publish_all:
        covered: set[tuple[int, str]] = set()
        for key in bindings:
            start, end, proto = split_port_key(key)
            covered.update((p, proto) for p in range(start, end + 1))
        for key in sorted(exposed, key=split_port_key):
            start, end, proto = split_port_key(key)
            if proto not in ("tcp", "udp"):
                continue
            for port in range(start, end + 1):
                if (port, proto) not in covered:
                    wanted.append(PublishedPort(port, proto))
    return wanted
