"""Network objects and per-container network state, kept as JSON files under the data root.

Layout (``<data-root>/network``, shared with the CNI driver's ``cache/`` and ``ipam/``)::

    networks/<id>.json     one declarun network (NetworkRecord) — created, never rewritten
    endpoints/<cid>.json   what a running container holds (LiveState): namespace, attachments,
                           published host ports; written after start, deleted at teardown
    netns/<cid>            the container's network namespace (see netns.py)

JSON files rather than a table of the metadata database: networks are few, written rarely,
and the endpoint files must be readable by crash recovery before anything else is opened;
each write is a rename, so a SIGKILL never leaves half a file.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "AttachedNetwork",
    "LiveState",
    "NetworkRecord",
    "NetworkStore",
]


@dataclass(frozen=True)
class NetworkRecord:
    """One network. ``driver`` is ``bridge``, ``host`` or ``null``; host and null have no
    subnet. ``builtin`` marks ``bridge``/``host``/``none``."""

    id: str
    name: str
    driver: str
    created: str
    subnet: ipaddress.IPv4Network | None = None
    gateway: ipaddress.IPv4Address | None = None
    ip_range: ipaddress.IPv4Network | None = None
    internal: bool = False
    attachable: bool = False
    builtin: bool = False
    labels: Mapping[str, str] = field(default_factory=dict)
    options: Mapping[str, str] = field(default_factory=dict)
    ipam_options: Mapping[str, str] = field(default_factory=dict)
    #: The subnet was given by the client (IPAM.Config) rather than allocated.
    configured: bool = False

    @property
    def is_default_bridge(self) -> bool:
        """The built-in ``bridge`` network (no name resolution, as in Docker)."""
        return self.builtin and self.driver == "bridge"

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "id": self.id,
            "name": self.name,
            "driver": self.driver,
            "created": self.created,
            "subnet": str(self.subnet) if self.subnet else None,
            "gateway": str(self.gateway) if self.gateway else None,
            "ip_range": str(self.ip_range) if self.ip_range else None,
            "internal": self.internal,
            "attachable": self.attachable,
            "builtin": self.builtin,
            "labels": dict(self.labels),
            "options": dict(self.options),
            "ipam_options": dict(self.ipam_options),
            "configured": self.configured,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> NetworkRecord:
        """Read the stored form back."""
        return cls(
            id=str(doc["id"]),
            name=str(doc["name"]),
            driver=str(doc["driver"]),
            created=str(doc.get("created") or ""),
            subnet=ipaddress.IPv4Network(doc["subnet"]) if doc.get("subnet") else None,
            gateway=ipaddress.IPv4Address(doc["gateway"]) if doc.get("gateway") else None,
            ip_range=ipaddress.IPv4Network(doc["ip_range"]) if doc.get("ip_range") else None,
            internal=bool(doc.get("internal")),
            attachable=bool(doc.get("attachable")),
            builtin=bool(doc.get("builtin")),
            labels=dict(doc.get("labels") or {}),
            options=dict(doc.get("options") or {}),
            ipam_options=dict(doc.get("ipam_options") or {}),
            configured=bool(doc.get("configured")),
        )


@dataclass
class AttachedNetwork:
    """A container's live endpoint on one network."""

    network_id: str
    ifname: str
    address: ipaddress.IPv4Interface
    gateway: ipaddress.IPv4Address | None
    mac: str
    endpoint_id: str
    aliases: tuple[str, ...] = ()
    #: The fixed address the client asked for (IPAMConfig.IPv4Address), if any.
    requested_ip: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "network_id": self.network_id,
            "ifname": self.ifname,
            "address": str(self.address),
            "gateway": str(self.gateway) if self.gateway else None,
            "mac": self.mac,
            "endpoint_id": self.endpoint_id,
            "aliases": list(self.aliases),
            "requested_ip": self.requested_ip,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> AttachedNetwork:
        """Read the stored form back."""
        return cls(
            network_id=str(doc["network_id"]),
            ifname=str(doc["ifname"]),
            address=ipaddress.IPv4Interface(doc["address"]),
            gateway=ipaddress.IPv4Address(doc["gateway"]) if doc.get("gateway") else None,
            mac=str(doc.get("mac") or ""),
            endpoint_id=str(doc.get("endpoint_id") or ""),
            aliases=tuple(doc.get("aliases") or ()),
            requested_ip=str(doc.get("requested_ip") or ""),
        )


@dataclass
class LiveState:
    """What one started container holds: its namespace, attachments and host ports.

    ``ports`` entries are ``(container_port, protocol, host_ip, host_port)``.
    """

    container_id: str
    netns: str
    networks: dict[str, AttachedNetwork] = field(default_factory=dict)
    ports: list[tuple[int, str, str, int]] = field(default_factory=list)
    #: The network the ports are published on (the primary one).
    ports_network: str = ""

    def to_json(self) -> dict[str, Any]:
        """The stored form."""
        return {
            "container_id": self.container_id,
            "netns": self.netns,
            "networks": [n.to_json() for n in self.networks.values()],
            "ports": [list(p) for p in self.ports],
            "ports_network": self.ports_network,
        }

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> LiveState:
        """Read the stored form back."""
        networks = [AttachedNetwork.from_json(n) for n in doc.get("networks") or []]
        return cls(
            container_id=str(doc["container_id"]),
            netns=str(doc.get("netns") or ""),
            networks={n.network_id: n for n in networks},
            ports=[(int(p[0]), str(p[1]), str(p[2]), int(p[3])) for p in doc.get("ports") or []],
            ports_network=str(doc.get("ports_network") or ""),
        )


def _write_json(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


class NetworkStore:
    """The files of ``<data-root>/network`` that are not the CNI driver's."""

    def __init__(self, state_dir: Path) -> None:
        self.state_dir = state_dir
        self.networks_dir = state_dir / "networks"
        self.endpoints_dir = state_dir / "endpoints"

    def load_networks(self) -> list[NetworkRecord]:
        """Every stored network (unreadable files are skipped)."""
        found: list[NetworkRecord] = []
        if not self.networks_dir.is_dir():
            return found
        for path in sorted(self.networks_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                found.append(NetworkRecord.from_json(json.loads(path.read_text())))
        return found

    def save_network(self, record: NetworkRecord) -> None:
        """Store a network (atomically)."""
        _write_json(self.networks_dir / f"{record.id}.json", record.to_json())

    def delete_network(self, network_id: str) -> None:
        """Forget a network (idempotent)."""
        (self.networks_dir / f"{network_id}.json").unlink(missing_ok=True)

    def load_live(self, container_id: str) -> LiveState | None:
        """A container's stored live state, or ``None``."""
        path = self.endpoints_dir / f"{container_id}.json"
        try:
            return LiveState.from_json(json.loads(path.read_text()))
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def all_live(self) -> list[LiveState]:
        """Every stored live state."""
        found: list[LiveState] = []
        if not self.endpoints_dir.is_dir():
            return found
        for path in sorted(self.endpoints_dir.glob("*.json")):
            with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
                found.append(LiveState.from_json(json.loads(path.read_text())))
        return found

    def save_live(self, state: LiveState) -> None:
        """Store a container's live state (atomically)."""
        _write_json(self.endpoints_dir / f"{state.container_id}.json", state.to_json())

    def delete_live(self, container_id: str) -> None:
        """Forget a container's live state (idempotent)."""
        (self.endpoints_dir / f"{container_id}.json").unlink(missing_ok=True)
