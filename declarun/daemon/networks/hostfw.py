"""The two host firewall facts the daemon needs once at start.

* ``portmap`` with ``snat`` sets ``route_localnet`` on the bridges so the host's loopback
  can reach published ports; that also lets other machines send packets to 127.0.0.0/8
  (CVE-2020-8558). :func:`guard_route_localnet` adds the rule Kubernetes and dockerd use
  against it — once, checked with ``-C`` first, so restarts never stack copies.
* Whether the ``FORWARD`` policy drops (dockerd sets it): only then does a container's
  forwarded traffic need the CNI ``firewall`` plugin (:func:`forward_policy_drops`).
* Outbound NAT is one ``MASQUERADE`` rule per network, as dockerd has it
  (:func:`ensure_masquerade`), not the bridge plugin's chain per container: that chain cost
  about fifteen ``iptables`` runs for every container started and removed.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

__all__ = [
    "GUARD_RULE",
    "ensure_masquerade",
    "forward_policy_drops",
    "guard_route_localnet",
    "masquerade_rule",
    "remove_masquerade",
]

log = logging.getLogger("declarun.daemon.networks")

GUARD_RULE = (
    "INPUT", "-d", "127.0.0.0/8", "!", "-s", "127.0.0.0/8", "-m", "conntrack",
    "!", "--ctstate", "RELATED,ESTABLISHED,DNAT", "-j", "DROP",
)  # fmt: skip


async def _iptables(*args: str) -> tuple[int, str]:
    binary = shutil.which("iptables")
    if binary is None:
        return 127, "iptables not found"
    proc = await asyncio.create_subprocess_exec(
        binary, "-w", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    return proc.returncode or 0, out.decode(errors="replace")


async def guard_route_localnet() -> None:
    """Append the CVE-2020-8558 guard to ``INPUT`` unless it is there already."""
    code, _ = await _iptables("-C", *GUARD_RULE)
    if code == 0:
        return
    code, out = await _iptables("-A", *GUARD_RULE)
    if code != 0:
        log.warning("cannot add the route_localnet guard rule: %s", out.strip())


async def forward_policy_drops() -> bool:
    """True when the filter table's ``FORWARD`` policy is ``DROP``."""
    code, out = await _iptables("-S", "FORWARD")
    if code != 0:
        return False
    return any(line.strip() == "-P FORWARD DROP" for line in out.splitlines())


def masquerade_rule(subnet: str, bridge: str, network_id: str) -> tuple[str, ...]:
    """The nat rule that hides a network's containers behind the host for outbound traffic."""
    return (
        "POSTROUTING", "-s", subnet, "!", "-o", bridge, "-m", "comment",
        "--comment", f"declarun network {network_id[:12]}", "-j", "MASQUERADE",
    )  # fmt: skip


async def ensure_masquerade(subnet: str, bridge: str, network_id: str) -> None:
    """Add the network's outbound NAT rule unless it is there already."""
    rule = masquerade_rule(subnet, bridge, network_id)
    code, _ = await _iptables("-t", "nat", "-C", *rule)
    if code == 0:
        return
    code, out = await _iptables("-t", "nat", "-A", *rule)
    if code != 0:
        log.warning("cannot add outbound NAT for %s: %s", subnet, out.strip())


async def remove_masquerade(subnet: str, bridge: str, network_id: str) -> None:
    """Delete the network's outbound NAT rule (every copy; none is fine)."""
    rule = masquerade_rule(subnet, bridge, network_id)
    for _ in range(8):
        code, _ = await _iptables("-t", "nat", "-D", *rule)
        if code != 0:
            return
