"""CNI network configuration lists for declarun bridge networks (pure: no I/O).

One declarun network is one CNI network configuration list (CNI spec 1.0.0, which every
Debian plugin used here supports — ``CNI_COMMAND=VERSION /usr/lib/cni/bridge``):

``bridge``
    a Linux bridge ``dr-<first 12 of the network id>`` with the gateway address on it
    (``isGateway``), hairpin mode so a container reaches itself through a published port,
    and masquerading of the subnet unless the network is internal. ``host-local`` IPAM
    hands out addresses from the subnet; its leases live in a per-network directory of the
    data root so they survive restarts and can be checked and removed.
``portmap``
    DNAT of published ports (from other machines and from the bridge); only in the list of
    an attachment that publishes ports, since it costs iptables calls on every ADD/DEL.
``firewall``
    accepts forwarded traffic of the container's addresses even where the host's
    ``FORWARD`` policy is ``DROP`` (dockerd sets that); optional.

An internal network gets no default route (host-local ``routes`` is empty) and no
masquerading, so packets have nowhere to go but the subnet itself.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "CNI_VERSION",
    "LOOPBACK_CONFLIST",
    "NetworkSpec",
    "PortMapping",
    "bridge_name",
    "build_conflist",
    "cni_network_name",
    "runtime_config",
]

CNI_VERSION = "1.0.0"

LOOPBACK_CONFLIST: dict[str, Any] = {
    "cniVersion": CNI_VERSION,
    "name": "declarun-loopback",
    "plugins": [{"type": "loopback"}],
}


@dataclass(frozen=True)
class NetworkSpec:
    """What the configuration list needs to know about one declarun bridge network.

    ``network_id`` is the 64-hex id; ``bridge`` overrides the generated bridge name (the
    default network may want a fixed one); ``ip_range`` narrows allocation within the
    subnet (Docker's ``IPRange``).
    """

    network_id: str
    subnet: ipaddress.IPv4Network
    gateway: ipaddress.IPv4Address
    internal: bool = False
    ip_range: ipaddress.IPv4Network | None = None
    bridge: str | None = None
    mtu: int | None = None


@dataclass(frozen=True)
class PortMapping:
    """One published port as portmap takes it; ``host_ip`` empty means every address."""

    host_port: int
    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""

    def to_cni(self) -> dict[str, Any]:
        """The ``runtimeConfig.portMappings`` entry."""
        entry: dict[str, Any] = {
            "hostPort": self.host_port,
            "containerPort": self.container_port,
            "protocol": self.protocol,
        }
        if self.host_ip and self.host_ip not in ("0.0.0.0", "::"):
            entry["hostIP"] = self.host_ip
        return entry


def bridge_name(network_id: str) -> str:
    """``dr-`` + the first 12 characters of the id: 15 characters, the kernel's limit."""
    return f"dr-{network_id[:12]}"


def cni_network_name(network_id: str) -> str:
    """The CNI network name: the stable id (names in portmap's and masquerade's comments)."""
    return f"declarun-{network_id}"


def build_conflist(
    spec: NetworkSpec,
    ipam_dir: Path,
    *,
    port_mappings: bool = False,
    firewall: bool = False,
) -> dict[str, Any]:
    """The configuration list for ``spec``.

    ``ipam_dir`` is host-local's ``dataDir`` (it adds the network name below it).
    ``port_mappings`` adds ``portmap``; ``firewall`` adds the ``firewall`` plugin.
    """
    ipam_range: dict[str, Any] = {"subnet": str(spec.subnet), "gateway": str(spec.gateway)}
    if spec.ip_range is not None:
        hosts = list(_bounds(spec.ip_range))
        ipam_range["rangeStart"] = str(hosts[0])
        ipam_range["rangeEnd"] = str(hosts[1])
    ipam: dict[str, Any] = {
        "type": "host-local",
        "ranges": [[ipam_range]],
        "dataDir": str(ipam_dir),
        "routes": [] if spec.internal else [{"dst": "0.0.0.0/0"}],
    }
    bridge: dict[str, Any] = {
        "type": "bridge",
        "bridge": spec.bridge or bridge_name(spec.network_id),
        "isGateway": True,
        "isDefaultGateway": False,
        "ipMasq": False,  # one MASQUERADE rule per network instead: see hostfw
        "hairpinMode": True,
        "capabilities": {"ips": True, "mac": True},
        "ipam": ipam,
    }
    if spec.mtu:
        bridge["mtu"] = spec.mtu
    plugins: list[dict[str, Any]] = [bridge]
    if port_mappings:
        plugins.append({"type": "portmap", "snat": True, "capabilities": {"portMappings": True}})
    if firewall:
        plugins.append({"type": "firewall", "backend": "iptables"})
    return {
        "cniVersion": CNI_VERSION,
        "name": cni_network_name(spec.network_id),
        "plugins": plugins,
    }


def runtime_config(
    port_mappings: Sequence[PortMapping] = (),
    ip: ipaddress.IPv4Address | None = None,
    subnet: ipaddress.IPv4Network | None = None,
    mac: str = "",
) -> dict[str, Any]:
    """The ``runtimeConfig`` of an attachment: published ports, a fixed address and MAC."""
    config: dict[str, Any] = {}
    if mac:
        config["mac"] = mac
    if port_mappings:
        config["portMappings"] = [m.to_cni() for m in port_mappings]
    if ip is not None:
        prefix = subnet.prefixlen if subnet is not None else 32
        config["ips"] = [f"{ip}/{prefix}"]
    return config


def _bounds(
    network: ipaddress.IPv4Network,
) -> tuple[ipaddress.IPv4Address, ipaddress.IPv4Address]:
    """First and last usable address of a range (a /31 or /32 is used whole)."""
    if network.prefixlen >= 31:
        return network[0], network[-1]
    return network[1], network[-2]
