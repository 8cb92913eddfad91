"""Checks of container networking: what a container holds on the host while it runs must go
when it stops.

A container *owns* network state while its record says it runs (or, in a running daemon,
while the daemon holds its live state: a start in progress). Anything else is a leftover:
a pinned namespace under ``network/netns``, a CNI attachment in the cache, an address
host-local still reserves, a stored live state, or an iptables rule a CNI plugin added
for it (found by the plugins' comment, only on this data root's networks).
"""

from __future__ import annotations

import asyncio
import contextlib
import shutil
import subprocess
from collections import defaultdict
from pathlib import Path

from declarun.daemon.check.context import CheckContext
from declarun.daemon.check.host import HostFacts, IptablesRule
from declarun.daemon.check.model import Finding, RepairAction
from declarun.daemon.networks.errors import NetworkError
from declarun.daemon.networks.netns import list_netns, release_netns_dir, remove_netns

__all__ = ["check_networking", "owners"]


def owners(ctx: CheckContext) -> frozenset[str]:
    """Containers that may hold network state right now."""
    owned = set(ctx.running_ids())
    if ctx.networking is not None:
        owned |= {r.id for r in ctx.container_records() if ctx.networking.live(r.id)}
    return frozenset(owned)


def check_networking(ctx: CheckContext, host: HostFacts) -> list[Finding]:
    """Namespaces, CNI attachments, host-local addresses, live states, iptables rules."""
    found: list[Finding] = []
    owned = owners(ctx)
    cni = ctx.cni

    async def cni_cleanup() -> None:
        for failure in await cni.cleanup(keep=owners(ctx)):
            raise failure

    for path in list_netns(ctx.network_dir):
        if path.name in owned:
            continue

        async def drop_netns(path: Path = path) -> None:
            await asyncio.to_thread(remove_netns, path)
            if not list_netns(ctx.network_dir):
                with contextlib.suppress(NetworkError):
                    await asyncio.to_thread(release_netns_dir, ctx.network_dir)

        found.append(
            Finding(
                "netns",
                str(path),
                "the network namespace of a container that does not run",
                repair="unmount and delete it",
                action=drop_netns,
            )
        )
    live = {state.container_id: state for state in ctx.network_store.all_live()}
    if ctx.networking is not None:
        live.update({cid: s for cid in owned if (s := ctx.networking.live(cid)) is not None})
    for entry in cni.attachments():
        if entry.container_id in owned:
            state = live.get(entry.container_id)
            if state is not None and entry.network_id not in state.networks:
                found.append(
                    Finding(
                        "cni",
                        f"attachment {entry.container_id[:12]} on {entry.network_id[:12]}",
                        "the container runs, but not on this network (a connect cut short)",
                        repair="CNI DEL (the connect, tried again, attaches it afresh)",
                        action=_detach(ctx, entry.network_id, entry.container_id),
                    )
                )
            continue
        found.append(
            Finding(
                "cni",
                f"attachment {entry.container_id[:12]} on {entry.network_id[:12]}",
                "a CNI attachment of a container that does not run",
                repair="CNI DEL (releases its address, rules and veth)",
                action=cni_cleanup,
            )
        )
    cached = {(e.network_id, e.container_id) for e in cni.attachments()}
    for network in ctx.network_store.load_networks():
        for address, cid in sorted(cni.leases(network.id).items()):
            if cid in owned or (network.id, cid) in cached:
                continue  # owned, or released with its attachment by the repair above
            path = cni.ipam_dir / f"declarun-{network.id}" / str(address)

            async def unreserve(path: Path = path) -> None:
                path.unlink(missing_ok=True)

            found.append(
                Finding(
                    "cni",
                    f"address {address} on network {network.name}",
                    f"host-local still reserves it for container {cid[:12]}, which does not run",
                    repair="release it",
                    action=unreserve,
                )
            )
    attached = {(e.network_id, e.container_id) for e in cni.attachments()}
    for state in live.values():
        if state.container_id in owned:
            for network_id in sorted(state.networks):
                if (network_id, state.container_id) not in attached:
                    found.append(
                        Finding(
                            "cni",
                            f"live state of {state.container_id[:12]}",
                            f"lists network {network_id[:12]}, which CNI no longer attaches "
                            "(a disconnect cut short)",
                            advice="restart the daemon: it forgets the network at start",
                        )
                    )
            continue

        async def forget(cid: str = state.container_id) -> None:
            await asyncio.to_thread(ctx.network_store.delete_live, cid)

        found.append(
            Finding(
                "cni",
                f"live state of {state.container_id[:12]}",
                "stored for a container that does not run",
                repair="forget it",
                action=forget,
            )
        )
    by_container: dict[str, list[IptablesRule]] = defaultdict(list)
    for rule in host.rules:
        if rule.container_id not in owned:
            by_container[rule.container_id].append(rule)
    for cid, rules in sorted(by_container.items()):
        chains = sorted({f"{r.table}/{r.chain}" for r in rules})
        found.append(
            Finding(
                "iptables",
                f"container {cid[:12]}",
                f"{len(rules)} rules for a container that does not run (in {', '.join(chains)})",
                repair="delete them and their chains",
                action=_delete_rules(rules),
            )
        )
    return found


def _detach(ctx: CheckContext, network_id: str, container_id: str) -> RepairAction:
    async def action() -> None:
        await ctx.cni.delete(network_id, container_id)

    return action


def _delete_rules(rules: list[IptablesRule]) -> RepairAction:
    async def action() -> None:
        binary = shutil.which("iptables")
        if binary is None:
            raise NetworkError("iptables is not installed")

        def run() -> None:
            for rule in rules:
                subprocess.run(
                    [binary, "-w", "-t", rule.table, "-D", rule.chain, *rule.args],
                    capture_output=True,
                    check=False,
                )
            for table, chain in sorted({(r.table, r.target) for r in rules if r.target}):
                if chain and chain.startswith(("CNI-DN-", "CNI-SN-")):
                    for flag in ("-F", "-X"):
                        subprocess.run(
                            [binary, "-w", "-t", table, flag, chain],
                            capture_output=True,
                            check=False,
                        )

        await asyncio.to_thread(run)

    return action
