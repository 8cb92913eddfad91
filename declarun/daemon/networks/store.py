"""Network objects and per-container network state, kept in the metadata database.

Network records (:class:`NetworkRecord`, the built-ins included) are rows of the ``networks``
table; what a started container holds (:class:`LiveState`: namespace, attachments,
published host ports) is a row of ``network_states``, written after its start and at every
connect or disconnect, deleted at teardown, with the networks it is attached to in
``network_endpoints`` -- so "which containers use this network" is a query of the
metadata database (:mod:`declarun.daemon.metadata.networks`), the answer behind
``network rm`` and prune. The database is opened before anything else, so crash recovery
reads the states first, as it read the files before.

``<data-root>/network`` holds the rest (the CNI driver's ``cache/`` and ``ipam/``, the
namespaces under ``netns/``). Data roots from before kept the records there as JSON files
(``networks/<id>.json``, ``endpoints/<cid>.json``); opening the store imports each file
once and removes it.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.daemon.metadata import Metadata, NetworkRow, NetworkStateRow

__all__ = [
    "AttachedNetwork",
    "LiveState",
    "NetworkRecord",
    "NetworkStore",
]

log = logging.getLogger("declarun.daemon.networks")

# What a damaged stored document raises when it is read back.
_DAMAGED = (ValueError, KeyError, TypeError, AttributeError)


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
    #: ``IPAM.Config[].AuxiliaryAddresses``: name -> address, never given to a container.
    aux_addresses: Mapping[str, str] = field(default_factory=dict)
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
            "aux_addresses": dict(self.aux_addresses),
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
            aux_addresses=dict(doc.get("aux_addresses") or {}),
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


class NetworkStore:
    """Network records and live states in the metadata database (see the module docstring)."""

    def __init__(self, metadata: Metadata, state_dir: Path) -> None:
        self.metadata = metadata
        self.state_dir = state_dir
        self._import_old_files()

    def load_networks(self) -> list[NetworkRecord]:
        """Every stored network (damaged records are skipped)."""
        found: list[NetworkRecord] = []
        for row in self.metadata.list_networks():
            try:
                found.append(NetworkRecord.from_json(row.record))
            except _DAMAGED:
                log.error("network %s has a damaged record, skipped", row.id)
        return found

    def save_network(self, record: NetworkRecord) -> None:
        """Store a network (one transaction)."""
        self.metadata.put_network(_network_row(record))

    def delete_network(self, network_id: str) -> None:
        """Forget a network (idempotent)."""
        self.metadata.delete_network(network_id)

    def load_live(self, container_id: str) -> LiveState | None:
        """A container's stored live state, or ``None``."""
        row = self.metadata.get_network_state(container_id)
        if row is None:
            return None
        with contextlib.suppress(*_DAMAGED):
            return LiveState.from_json(row.state)
        return None

    def all_live(self) -> list[LiveState]:
        """Every stored live state."""
        found: list[LiveState] = []
        for row in self.metadata.list_network_states():
            with contextlib.suppress(*_DAMAGED):
                found.append(LiveState.from_json(row.state))
        return found

    def save_live(self, state: LiveState) -> None:
        """Store a container's live state and the networks it is attached to (one
        transaction)."""
        self.metadata.put_network_state(_state_row(state))

    def delete_live(self, container_id: str) -> None:
        """Forget a container's live state (idempotent)."""
        self.metadata.delete_network_state(container_id)

    def users(self, network_id: str) -> list[str]:
        """IDs of the containers attached to the network (a metadata query)."""
        return self.metadata.network_users(network_id)

    # -- data roots from before the metadata database held networks ------------------------

    def _import_old_files(self) -> None:
        """Move ``networks/*.json`` and ``endpoints/*.json`` into the database (once; the
        files then go). A file the old code could not read either is left alone."""
        networks = sorted((self.state_dir / "networks").glob("*.json"))
        endpoints = sorted((self.state_dir / "endpoints").glob("*.json"))
        if not networks and not endpoints:
            return
        imported: list[Path] = []
        with self.metadata.transaction():
            for path in networks:
                try:
                    record = NetworkRecord.from_json(json.loads(path.read_text()))
                except (OSError, *_DAMAGED):
                    log.warning("network file %s is unreadable; left as it is", path)
                    continue
                if self.metadata.add_network(_network_row(record)):
                    log.info("imported network %s into the metadata database", record.name)
                imported.append(path)
            for path in endpoints:
                try:
                    state = LiveState.from_json(json.loads(path.read_text()))
                except (OSError, *_DAMAGED):
                    log.warning("network state file %s is unreadable; left as it is", path)
                    continue
                self.metadata.put_network_state(_state_row(state), replace=False)
                imported.append(path)
        for path in imported:
            path.unlink(missing_ok=True)
        for directory in ("networks", "endpoints"):
            with contextlib.suppress(OSError):  # not empty: unreadable files stay
                (self.state_dir / directory).rmdir()


def _network_row(record: NetworkRecord) -> NetworkRow:
    return NetworkRow(record.id, record.name, record.builtin, record.created, record.to_json())


def _state_row(state: LiveState) -> NetworkStateRow:
    return NetworkStateRow(state.container_id, state.to_json(), tuple(state.networks))
