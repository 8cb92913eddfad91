"""Which networks a container is configured for: its ``NetworkMode`` and the
``EndpointsConfig`` of its create request (and of later ``network connect``s), read against
the networks that exist.

Used by the container wiring (what to attach at start, what ``connect`` may add) and by
the views (``NetworkSettings`` lists the configured networks, attached or not).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.networks.store import NetworkRecord

__all__ = [
    "NetworkLookup",
    "Wanted",
    "endpoint_links",
    "endpoint_settings",
    "endpoints_config",
    "wanted_networks",
]


@dataclass(frozen=True)
class Wanted:
    """One network a container is configured for, with its endpoint settings."""

    network: NetworkRecord
    aliases: tuple[str, ...] = ()
    ip: str = ""
    #: ``Links`` of the endpoint (``name:alias``): names only this container resolves.
    links: tuple[str, ...] = ()
    #: ``IPAMConfig`` as sent (shown back by inspect), and the ``MacAddress`` asked for.
    ipam_config: Mapping[str, Any] | None = None
    mac: str = ""


class NetworkLookup(Protocol):
    """Finding a network by id, name or id prefix (the network service)."""

    def find(self, ref: str) -> NetworkRecord | None:
        """The network ``ref`` names, ``None`` when nothing matches."""
        ...


def endpoints_config(rec: ContainerRecord) -> dict[str, Any]:
    """The ``NetworkingConfig.EndpointsConfig`` of the container's stored request."""
    networking = rec.request.get("NetworkingConfig")
    if not isinstance(networking, dict):
        return {}
    endpoints = networking.get("EndpointsConfig")
    return endpoints if isinstance(endpoints, dict) else {}


def endpoint_settings(raw: Any) -> tuple[tuple[str, ...], str]:
    """The aliases and the requested IPv4 address of one ``EndpointSettings`` value."""
    if not isinstance(raw, Mapping):
        return (), ""
    aliases = tuple(a for a in raw.get("Aliases") or () if isinstance(a, str) and a)
    ipam = raw.get("IPAMConfig")
    ip = str(ipam.get("IPv4Address") or "") if isinstance(ipam, Mapping) else ""
    return aliases, ip


def _ipam_config(raw: Any) -> Mapping[str, Any] | None:
    ipam = raw.get("IPAMConfig") if isinstance(raw, Mapping) else None
    return dict(ipam) if isinstance(ipam, Mapping) and ipam else None


def _mac(raw: Any) -> str:
    mac = raw.get("MacAddress") if isinstance(raw, Mapping) else None
    return mac if isinstance(mac, str) else ""


def endpoint_links(raw: Any) -> tuple[str, ...]:
    """The ``Links`` of one ``EndpointSettings`` value."""
    if not isinstance(raw, Mapping):
        return ()
    return tuple(link for link in raw.get("Links") or () if isinstance(link, str) and link)


def wanted_networks(networks: NetworkLookup, rec: ContainerRecord) -> list[Wanted]:
    """The networks of a bridge-mode container, primary first (unknown ones skipped)."""
    mode = rec.host_config.network_mode
    endpoints = endpoints_config(rec)
    found: dict[str, Wanted] = {}
    order: list[str] = []
    primary = networks.find(mode)
    if primary is not None and primary.id in rec.detached_networks:
        primary = None  # disconnected by the user: off it until a connect
    if primary is not None and primary.driver == "bridge":
        aliases: tuple[str, ...] = ()
        ip = ""
        links: tuple[str, ...] = ()
        primary_raw: Any = None
        for key, raw in endpoints.items():
            if networks.find(key) is primary:
                aliases, ip = endpoint_settings(raw)
                links = endpoint_links(raw)
                primary_raw = raw
        if not primary.is_default_bridge:
            # HostConfig.Links on a user network: names for the embedded DNS, as an
            # endpoint's Links (docker-compose v1 sends both).
            links = tuple(dict.fromkeys(links + rec.host_config.links))
        # Config.MacAddress (API < 1.44) is the primary endpoint's MAC address.
        mac = _mac(primary_raw) or rec.config.mac_address
        found[primary.id] = Wanted(primary, aliases, ip, links, _ipam_config(primary_raw), mac)
        order.append(primary.id)
    for key, raw in endpoints.items():
        record = networks.find(key)
        if record is None or record.driver != "bridge" or record.id in found:
            continue
        aliases, ip = endpoint_settings(raw)
        found[record.id] = Wanted(
            record, aliases, ip, endpoint_links(raw), _ipam_config(raw), _mac(raw)
        )
        order.append(record.id)
    return [found[i] for i in order]
