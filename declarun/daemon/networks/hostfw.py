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
* Networks are isolated from each other as dockerd isolates them (its
  ``DOCKER-ISOLATION-STAGE-1/2`` chains): ``FORWARD`` jumps to ``DECLARUN-ISOLATION-STAGE-1``,
  where traffic entering from one of the daemon's bridges and leaving by another interface
  goes to ``-STAGE-2``, which drops it when that interface is another of the bridges
  (:func:`isolate_bridge`, :func:`remove_isolation`). Traffic to the host's outside, within
  a bridge, and published ports from outside are untouched.
"""

from __future__ import annotations

import asyncio
import logging
import shutil

__all__ = [
    "GUARD_RULE",
    "ISOLATION_STAGE_1",
    "ISOLATION_STAGE_2",
    "ensure_masquerade",
    "forward_policy_drops",
    "guard_route_localnet",
    "isolate_bridge",
    "masquerade_rule",
    "remove_isolation",
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


ISOLATION_STAGE_1 = "DECLARUN-ISOLATION-STAGE-1"
ISOLATION_STAGE_2 = "DECLARUN-ISOLATION-STAGE-2"


def _isolation_rules(bridge: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    return (
        (ISOLATION_STAGE_1, "-i", bridge, "!", "-o", bridge, "-j", ISOLATION_STAGE_2),
        (ISOLATION_STAGE_2, "-o", bridge, "-j", "DROP"),
    )


async def _ensure_isolation_chains() -> None:
    for chain in (ISOLATION_STAGE_1, ISOLATION_STAGE_2):
        code, _ = await _iptables("-S", chain)
        if code != 0:
            await _iptables("-N", chain)
        if (await _iptables("-C", chain, "-j", "RETURN"))[0] != 0:
            await _iptables("-A", chain, "-j", "RETURN")
    if (await _iptables("-C", "FORWARD", "-j", ISOLATION_STAGE_1))[0] != 0:
        code, out = await _iptables("-I", "FORWARD", "1", "-j", ISOLATION_STAGE_1)
        if code != 0:
            log.warning("cannot isolate the networks from each other: %s", out.strip())


async def isolate_bridge(bridge: str) -> None:
    """Drop forwarded traffic between ``bridge`` and the daemon's other bridges (once)."""
    await _ensure_isolation_chains()
    for rule in _isolation_rules(bridge):
        if (await _iptables("-C", *rule))[0] == 0:
            continue
        # Inserted first: the chains end with RETURN.
        code, out = await _iptables("-I", rule[0], "1", *rule[1:])
        if code != 0:
            log.warning("cannot isolate %s from the other networks: %s", bridge, out.strip())


async def remove_isolation(bridge: str) -> None:
    """Delete ``bridge``'s isolation rules (every copy; none is fine)."""
    for rule in _isolation_rules(bridge):
        for _ in range(8):
            if (await _iptables("-D", *rule))[0] != 0:
                break
