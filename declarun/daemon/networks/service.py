"""Network objects behind ``/networks``: the built-ins, user bridge networks, lookups.

One :class:`NetworkService` per daemon, built by the composition root
(:mod:`declarun.daemon.wiring`).
It owns the network records (:mod:`store`), the CNI driver, the embedded DNS server and the
container wiring (:class:`~declarun.daemon.networks.wiring.ContainerNetworking`), which it
hands to the container service.

The built-in networks exist from the first start, as in Docker: ``bridge`` (the default;
``172.17.0.0/16`` unless a host route or another network has it, then the next free pool
subnet), ``host`` and ``none``. A user network is a CNI bridge network with its own
subnet — the client's (``IPAM.Config``) or the first free one of Docker's pools.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import logging
import secrets
import socket
import struct
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from declarun.daemon.events import EventBus
from declarun.daemon.metadata import Metadata
from declarun.daemon.networks import hostfw, ipam_pool
from declarun.daemon.networks.cni import CniDriver
from declarun.daemon.networks.cniconf import NetworkSpec, bridge_name
from declarun.daemon.networks.dns import EmbeddedDns
from declarun.daemon.networks.errors import NetworkError
from declarun.daemon.networks.resolvconf import host_resolv_conf, upstreams_of
from declarun.daemon.networks.store import NetworkRecord, NetworkStore
from declarun.errdefs import Conflict, Forbidden, InvalidArgument, NotFound

__all__ = ["BUILTIN_NAMES", "NetworkService", "parse_create_body"]

log = logging.getLogger("declarun.daemon.networks")

BUILTIN_NAMES = ("bridge", "host", "none")
_BRIDGE_OPTIONS = {
    "com.docker.network.bridge.default_bridge": "true",
    "com.docker.network.bridge.enable_icc": "true",
    "com.docker.network.bridge.enable_ip_masquerade": "true",
    "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
    "com.docker.network.driver.mtu": "1500",
}


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _net(text: str, what: str) -> ipaddress.IPv4Network:
    try:
        return ipaddress.IPv4Network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {what}: {text!r} (declarund serves IPv4 only)") from None


def _str_map(body: Mapping[str, Any], key: str) -> dict[str, str]:
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping) or not all(isinstance(v, str) for v in value.values()):
        raise InvalidArgument(f"invalid {key}: expected an object of strings")
    return {str(k): v for k, v in value.items()}


def parse_create_body(body: Any) -> dict[str, Any]:
    """Validate ``POST /networks/create``; the fields :meth:`NetworkService.create` takes."""
    if not isinstance(body, Mapping):
        raise InvalidArgument("invalid network config: expected a JSON object")
    name = body.get("Name")
    if not isinstance(name, str) or not name:
        raise InvalidArgument("network name must not be empty")
    driver = body.get("Driver") or "bridge"
    if driver != "bridge":
        raise InvalidArgument(
            f"network driver {driver!r} is not supported (declarund: bridge only)"
        )
    if body.get("EnableIPv6"):
        raise InvalidArgument("IPv6 networks are not supported by declarund")
    if body.get("Ingress") or body.get("Scope") == "swarm":
        raise InvalidArgument("swarm networks are not supported by declarund")
    ipam = body.get("IPAM") or {}
    if not isinstance(ipam, Mapping):
        raise InvalidArgument("invalid IPAM: expected an object")
    if ipam.get("Driver") not in (None, "", "default"):
        raise InvalidArgument(f"IPAM driver {ipam.get('Driver')!r} is not supported")
    configs = ipam.get("Config") or []
    if not isinstance(configs, list) or len(configs) > 1:
        raise InvalidArgument("declarund networks take at most one IPAM config (IPv4)")
    subnet = gateway = ip_range = None
    aux_addresses: dict[str, str] = {}
    if configs:
        config = configs[0]
        if not isinstance(config, Mapping):
            raise InvalidArgument("invalid IPAM config: expected an object")
        if config.get("Subnet"):
            subnet = _net(str(config["Subnet"]), "subnet")
        if config.get("IPRange"):
            ip_range = _net(str(config["IPRange"]), "ip range")
        if config.get("Gateway"):
            try:
                gateway = ipaddress.IPv4Address(str(config["Gateway"]))
            except ValueError:
                raise InvalidArgument(f"invalid gateway address: {config['Gateway']!r}") from None
        if (gateway or ip_range) and subnet is None:
            raise InvalidArgument("a gateway or IP range needs a subnet")
        if subnet is not None and gateway is not None and gateway not in subnet:
            raise InvalidArgument(f"gateway {gateway} is not in subnet {subnet}")
        if subnet is not None and ip_range is not None and not ip_range.subnet_of(subnet):
            raise InvalidArgument(f"IP range {ip_range} is not in subnet {subnet}")
        aux = config.get("AuxiliaryAddresses") or config.get("AuxAddress") or {}
        if not isinstance(aux, Mapping):
            raise InvalidArgument("invalid AuxiliaryAddresses: expected an object")
        for key, value in aux.items():
            try:
                address = ipaddress.IPv4Address(str(value))
            except ValueError:
                raise InvalidArgument(f"invalid auxiliary address {key}: {value!r}") from None
            if subnet is None or address not in subnet:
                raise InvalidArgument(
                    f"auxiliary address {key}: {value} is not in the subnet {subnet}"
                )
            aux_addresses[str(key)] = str(address)
    return {
        "name": name,
        "subnet": subnet,
        "gateway": gateway,
        "ip_range": ip_range,
        "internal": bool(body.get("Internal")),
        "attachable": bool(body.get("Attachable")),
        "labels": _str_map(body, "Labels"),
        "options": _str_map(body, "Options"),
        "ipam_options": _str_map(ipam, "Options"),
        "aux_addresses": aux_addresses,
    }


class NetworkService:
    """The daemon's networks (use from the event loop)."""

    def __init__(
        self,
        data_root: Path,
        events: EventBus,
        metadata: Metadata,
        pools: tuple[ipam_pool.AddressPool, ...] = (),
    ) -> None:
        #: Where subnets of networks created without one come from (Docker's by default).
        self.pools = pools or ipam_pool.DEFAULT_POOLS
        self.state_dir = data_root / "network"
        self.store = NetworkStore(metadata, self.state_dir)
        self.cni = CniDriver(self.state_dir)
        resolv = host_resolv_conf()
        self.dns = EmbeddedDns(upstreams_of(resolv))
        self.events = events
        self.firewall = False
        # Networks whose isolation (and MASQUERADE) rules are in place.
        self._nat_ready: set[str] = set()
        self._networks: dict[str, NetworkRecord] = {}
        #: name -> id: names are unique (create refuses a taken one), and a container's
        #: view looks its networks up by name once per network per container listed.
        self._by_name: dict[str, str] = {}
        self._lock = asyncio.Lock()
        #: Live endpoints per network: network id -> {container id: (name, attachment)};
        #: kept up to date by the container wiring.
        self.members: dict[str, dict[str, Any]] = {}

    @property
    def run_dir(self) -> Path:
        """Where the container namespaces are pinned (``<run_dir>/netns``)."""
        return self.state_dir

    # -- start-up --------------------------------------------------------------------------

    async def open(self) -> None:
        """Load the networks, create the built-ins on first start, prepare the host."""
        for record in self.store.load_networks():
            self._networks[record.id] = record
            self._by_name.setdefault(record.name, record.id)
        existing = {r.name for r in self._networks.values() if r.builtin}
        if "bridge" not in existing:
            subnet = self._free_subnet()
            self._add(NetworkRecord(
                id=secrets.token_hex(32), name="bridge", driver="bridge", created=_now(),
                subnet=subnet, gateway=ipam_pool.default_gateway(subnet), builtin=True,
                options=dict(_BRIDGE_OPTIONS),
            ))  # fmt: skip
        for name, driver in (("host", "host"), ("none", "null")):
            if name not in existing:
                self._add(NetworkRecord(
                    id=secrets.token_hex(32), name=name, driver=driver, created=_now(),
                    builtin=True,
                ))  # fmt: skip
        await hostfw.guard_route_localnet()
        self.firewall = await hostfw.forward_policy_drops()

    async def ensure_outbound_nat(self, record: NetworkRecord) -> None:
        """Give a network its isolation from the other networks and, unless internal, its
        outbound NAT rule, once per daemon run."""
        if record.subnet is None or record.id in self._nat_ready:
            return
        await hostfw.isolate_bridge(bridge_name(record.id))
        if not record.internal:
            await hostfw.ensure_masquerade(str(record.subnet), bridge_name(record.id), record.id)
        self._nat_ready.add(record.id)

    async def _drop_bridge(self, record: NetworkRecord) -> None:
        """Remove a network's bridge, its leases and its outbound NAT rule."""
        bridge = bridge_name(record.id)
        await self.cni.remove_network(record.id, bridge)
        self._nat_ready.discard(record.id)
        await hostfw.remove_isolation(bridge)
        if record.subnet is not None:
            await hostfw.remove_masquerade(str(record.subnet), bridge, record.id)

    def _add(self, record: NetworkRecord) -> None:
        self.store.save_network(record)
        self._networks[record.id] = record
        self._by_name.setdefault(record.name, record.id)

    def _free_subnet(self) -> ipaddress.IPv4Network:
        in_use = [r.subnet for r in self._networks.values() if r.subnet is not None]
        return ipam_pool.allocate_subnet(in_use, ipam_pool.host_routes(), self.pools)  # 403: none

    # -- lookups ---------------------------------------------------------------------------

    def all(self) -> list[NetworkRecord]:
        """Every network, built-ins first, then by creation."""
        return sorted(self._networks.values(), key=lambda r: (not r.builtin, r.created, r.name))

    def get(self, ref: str) -> NetworkRecord:
        """The network ``ref`` names: full id, name, then unique id prefix (Docker's order)."""
        if ref == "default":  # the CLI's name for the default network mode
            ref = "bridge"
        if ref in self._networks:
            return self._networks[ref]
        named = self._by_name.get(ref)
        if named is not None:
            return self._networks[named]
        if ref:
            found = [r for r in self._networks.values() if r.id.startswith(ref)]
            if len(found) == 1:
                return found[0]
            if len(found) > 1:
                raise InvalidArgument(f"network {ref} is ambiguous ({len(found)} matches found)")
        raise NotFound(f"network {ref} not found")

    def find(self, ref: str) -> NetworkRecord | None:
        """Like :meth:`get`, ``None`` when nothing matches."""
        try:
            return self.get(ref)
        except (NotFound, InvalidArgument):
            return None

    def spec(self, record: NetworkRecord) -> NetworkSpec:
        """The CNI view of a bridge network."""
        assert record.subnet is not None and record.gateway is not None
        mtu = record.options.get("com.docker.network.driver.mtu", "")
        return NetworkSpec(
            record.id, record.subnet, record.gateway, internal=record.internal,
            ip_range=record.ip_range, mtu=int(mtu) if mtu.isdigit() and mtu != "1500" else None,
        )  # fmt: skip

    def attached(self, network_id: str) -> dict[str, Any]:
        """Live endpoints of a network: container id -> (name, AttachedNetwork)."""
        return self.members.get(network_id, {})

    def users(self, network_id: str) -> list[str]:
        """IDs of the containers attached to a network: the metadata database's answer."""
        return self.store.users(network_id)

    # -- create / remove / prune -----------------------------------------------------------

    async def create(self, fields: Mapping[str, Any], *, check_duplicate: bool = True) -> str:
        """Create a user bridge network; its id. 409 for a duplicate name."""
        del check_duplicate  # dockerd refuses duplicate names regardless since API 1.44
        async with self._lock:
            name = str(fields["name"])
            if name in BUILTIN_NAMES:
                raise Forbidden(f"operation is not permitted on predefined {name} network ")
            if name in self._by_name:
                raise Conflict(f"network with name {name} already exists")
            subnet = fields.get("subnet")
            if subnet is None:
                subnet = self._free_subnet()
                configured = False
            else:
                configured = True
                for other in self._networks.values():
                    if other.subnet is not None and other.subnet.overlaps(subnet):
                        raise Forbidden("Pool overlaps with other one on this address space")
            gateway = fields.get("gateway") or ipam_pool.default_gateway(subnet)
            record = NetworkRecord(
                id=secrets.token_hex(32), name=name, driver="bridge", created=_now(),
                subnet=subnet, gateway=gateway, ip_range=fields.get("ip_range"),
                internal=bool(fields.get("internal")), attachable=bool(fields.get("attachable")),
                labels=dict(fields.get("labels") or {}), options=dict(fields.get("options") or {}),
                ipam_options=dict(fields.get("ipam_options") or {}), configured=configured,
                aux_addresses=dict(fields.get("aux_addresses") or {}),
            )  # fmt: skip
            self._add(record)
        self.events.publish("network", "create", record.id, {"name": name, "type": "bridge"})
        return record.id

    async def remove(self, ref: str) -> None:
        """Remove a user network; 403 for built-ins and networks with active endpoints."""
        record = self.get(ref)
        if record.builtin:
            raise Forbidden(f"{record.name} is a pre-defined network and cannot be removed")
        async with self._lock:
            if self.users(record.id) or self.cni.has_attachments(record.id):
                raise Forbidden(
                    f"error while removing network: network {record.name} id {record.id} "
                    "has active endpoints"
                )
            await self._drop_bridge(record)
            self.store.delete_network(record.id)
            self._networks.pop(record.id, None)
            if self._by_name.get(record.name) == record.id:
                del self._by_name[record.name]
            self.dns.remove_network(record.id)
        self.events.publish(
            "network", "destroy", record.id, {"name": record.name, "type": record.driver}
        )

    async def prune(self, keep: Callable[[NetworkRecord], bool]) -> list[str]:
        """Remove every unused user network ``keep`` does not keep; their names."""
        removed: list[str] = []
        for record in self.all():
            if record.builtin or keep(record) or self.users(record.id):
                continue
            try:
                await self.remove(record.id)
            except (Forbidden, NotFound):
                continue
            removed.append(record.name)
        return removed

    async def claim_subnet(self, record: NetworkRecord) -> NetworkRecord:
        """Before a network's first attachment: move an allocated subnet that a route of
        another interface now covers (another daemon's bridge, a new VPN) to a free one.

        Nothing is attached yet, so nothing has the old addresses; a subnet the client
        configured is kept as given. The caller's record may predate a move made for a
        concurrent first attachment: the current one is what counts.
        """
        record = self._networks.get(record.id, record)
        if record.configured or record.subnet is None:
            return record
        if self.cni.has_attachments(record.id):
            return record
        own = bridge_name(record.id)
        foreign = [net for net, dev in _routes_by_device() if dev != own]
        if not any(record.subnet.overlaps(net) for net in foreign if net.prefixlen > 0):
            return record
        in_use = [r.subnet for r in self._networks.values() if r.subnet and r.id != record.id]
        subnet = ipam_pool.allocate_subnet(in_use, foreign, self.pools)  # PoolExhaustedError: 403
        await self._drop_bridge(record)
        moved = dataclasses.replace(
            record, subnet=subnet, gateway=ipam_pool.default_gateway(subnet), ip_range=None
        )
        self._add(moved)
        return moved

    async def release_idle_bridges(self) -> None:
        """Delete the bridges of networks nothing is attached to (daemon shutdown).

        The bridge plugin creates a bridge again at the next attachment; removing idle ones
        keeps a stopped daemon from leaving interfaces behind.
        """
        busy = {e.network_id for e in self.cni.attachments()}
        for record in self._networks.values():
            if record.driver == "bridge" and record.id not in busy:
                try:
                    await self._drop_bridge(record)
                except (NetworkError, OSError) as exc:  # best effort at shutdown
                    log.warning("removing the idle bridge of %s: %s", record.name, exc)


def _routes_by_device() -> list[tuple[ipaddress.IPv4Network, str]]:
    """The host's IPv4 routes (main table) with their interface."""
    found: list[tuple[ipaddress.IPv4Network, str]] = []
    try:
        lines = Path("/proc/net/route").read_text().splitlines()[1:]
    except OSError:
        return found
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
            found.append((ipaddress.IPv4Network(f"{dest}/{mask}", strict=False), fields[0]))
        except (ValueError, struct.error):
            continue
    return found
