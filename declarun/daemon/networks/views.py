"""The JSON shapes of networking: a network (``Network``), a container's
``NetworkSettings`` and the ``Ports`` of ``docker ps`` — as dockerd shows them."""

from __future__ import annotations

from typing import Any

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.networks.cniconf import bridge_name
from declarun.daemon.networks.configured import NetworkLookup, wanted_networks
from declarun.daemon.networks.portspec import split_port_key
from declarun.daemon.networks.store import AttachedNetwork, LiveState, NetworkRecord

__all__ = ["network_document", "network_settings", "port_summary"]


def network_document(record: NetworkRecord, members: dict[str, Any]) -> dict[str, Any]:
    """``GET /networks/{id}``; ``members``: container id -> (name, AttachedNetwork)."""
    config: list[dict[str, Any]] = []
    if record.subnet is not None:
        entry: dict[str, Any] = {"Subnet": str(record.subnet), "Gateway": str(record.gateway)}
        if record.ip_range is not None:
            entry["IPRange"] = str(record.ip_range)
        if record.aux_addresses:
            entry["AuxiliaryAddresses"] = dict(record.aux_addresses)
        config.append(entry)
    options = dict(record.options)
    if record.is_default_bridge:
        options.setdefault("com.docker.network.bridge.name", bridge_name(record.id))
    containers = {
        cid: {
            "Name": name,
            "EndpointID": attached.endpoint_id,
            "MacAddress": attached.mac,
            "IPv4Address": str(attached.address),
            "IPv6Address": "",
        }
        for cid, (name, attached) in sorted(members.items())
    }
    return {
        "Name": record.name,
        "Id": record.id,
        "Created": record.created,
        "Scope": "local",
        "Driver": record.driver,
        "EnableIPv6": False,
        "IPAM": {
            "Driver": "default",
            "Options": dict(record.ipam_options) or None,
            "Config": config,
        },
        "Internal": record.internal,
        "Attachable": record.attachable,
        "Ingress": False,
        "ConfigFrom": {"Network": ""},
        "ConfigOnly": False,
        "Containers": containers,
        "Options": options,
        "Labels": dict(record.labels),
    }


def _endpoint(
    record: NetworkRecord | None,
    attached: AttachedNetwork | None,
    aliases: tuple[str, ...],
    dns_names: list[str] | None,
    links: tuple[str, ...] = (),
    ipam_config: Any = None,
) -> dict[str, Any]:
    # Built in one literal (keys in dockerd's order): ``docker ps`` builds one per network
    # per container listed, the biggest share of a list of 1,000 after the JSON encoding.
    ipam: dict[str, Any] | None = None
    if attached is None:
        mac = endpoint_id = gateway = ip = ""
        prefix = 0
    else:
        mac, endpoint_id = attached.mac, attached.endpoint_id
        gateway = str(attached.gateway or "")
        address = attached.address
        ip, prefix = str(address.ip), address.network.prefixlen
        if attached.requested_ip:
            ipam = {"IPv4Address": attached.requested_ip}
    if ipam_config:  # as the client sent it (LinkLocalIPs included), attached or not
        ipam = dict(ipam_config)
    return {
        "IPAMConfig": ipam, "Links": list(links) or None, "Aliases": list(aliases) or None,
        "MacAddress": mac, "NetworkID": record.id if record else "", "EndpointID": endpoint_id,
        "Gateway": gateway, "IPAddress": ip, "IPPrefixLen": prefix, "IPv6Gateway": "",
        "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0, "DriverOpts": None,
        "DNSNames": dns_names,
    }  # fmt: skip


def _ports(rec: ContainerRecord, state: LiveState | None) -> dict[str, Any]:
    if state is None:
        return {}
    ports: dict[str, Any] = {key: None for key in rec.config.exposed_ports}
    for key in rec.host_config.port_bindings:
        start, end, proto = split_port_key(key)
        for port in range(start, end + 1):
            ports.setdefault(f"{port}/{proto}", None)
    for container_port, proto, host_ip, host_port in state.ports:
        entry = {"HostIp": host_ip, "HostPort": str(host_port)}
        key = f"{container_port}/{proto}"
        ports[key] = (ports.get(key) or []) + [entry]
    return ports


def network_settings(
    lookup: NetworkLookup,
    rec: ContainerRecord,
    state: LiveState | None,
    *,
    summary: bool,
) -> dict[str, Any]:
    """``NetworkSettings`` of inspect (``summary``: of the list)."""
    mode = rec.host_config.network_mode
    networks: dict[str, Any] = {}
    if mode in ("host", "none"):
        networks[mode] = _endpoint(lookup.find(mode), None, (), None)
    elif not mode.startswith("container:"):
        for want in wanted_networks(lookup, rec):
            net = want.network
            attached = state.networks.get(net.id) if state is not None else None
            dns = None
            if not net.is_default_bridge:
                dns = list(dict.fromkeys([rec.name, *want.aliases, rec.short_id]))
            aliases = () if summary else want.aliases  # dockerd's list shows none
            networks[net.name] = _endpoint(
                net, attached, aliases, dns, want.links, want.ipam_config
            )
        if state is not None:  # live attachments that are no longer configured
            for net_id, attached in state.networks.items():
                record = lookup.find(net_id)
                if record is not None and record.name not in networks:
                    networks[record.name] = _endpoint(record, attached, attached.aliases, None)
    if summary:
        return {"Networks": networks}
    default = next(
        (
            state.networks.get(r.id)
            for r in (lookup.find("bridge"),)
            if r is not None and state is not None
        ),
        None,
    )
    return {
        "Bridge": "",
        "SandboxID": rec.id if state is not None else "",
        "SandboxKey": state.netns if state is not None else "",
        "Ports": _ports(rec, state),
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": default.endpoint_id if default else "",
        "Gateway": str(default.gateway or "") if default else "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": str(default.address.ip) if default else "",
        "IPPrefixLen": default.address.network.prefixlen if default else 0,
        "IPv6Gateway": "",
        "MacAddress": default.mac if default else "",
        "Networks": networks,
    }


def port_summary(rec: ContainerRecord, state: LiveState | None) -> list[dict[str, Any]]:
    """``Ports`` of ``GET /containers/json``: published ports, then exposed-only ones."""
    out: list[dict[str, Any]] = []
    published = set()
    if state is not None:
        for container_port, proto, host_ip, host_port in state.ports:
            published.add((container_port, proto))
            out.append(
                {"IP": host_ip, "PrivatePort": container_port, "PublicPort": host_port,
                 "Type": proto}
            )  # fmt: skip
    for key in rec.config.exposed_ports:
        start, end, proto = split_port_key(key)
        for port in range(start, end + 1):
            if (port, proto) not in published:
                out.append({"PrivatePort": port, "Type": proto})
    return out
