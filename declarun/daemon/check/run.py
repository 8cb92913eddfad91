"""Running a check: every area in turn, then -- with ``repair`` -- every repair once, in the
order found, and the check again for what is left.

The areas are checked in an order that suits the repairs: runtime containers and conmon
processes first (a leftover process may hold a mount or a namespace), then what containers
leave on disk, mounts, networking, volumes, and the image stores last (garbage collection
then sees the writable layers and leases the repairs above released).
"""

from __future__ import annotations

import asyncio
import logging

from declarun.daemon.check.containers import check_containers, check_logs, check_mounts
from declarun.daemon.check.context import CheckContext
from declarun.daemon.check.host import read_host_facts
from declarun.daemon.check.model import CheckReport, Finding, RepairAction, Repaired
from declarun.daemon.check.networking import check_networking
from declarun.daemon.check.storage import check_storage
from declarun.daemon.check.volumes import check_volumes

__all__ = ["inspect", "run_check"]

log = logging.getLogger("declarun.daemon.check")


def _inspect(ctx: CheckContext) -> tuple[list[Finding], list[str]]:
    host = read_host_facts(ctx.data_root, ctx.cni_networks())
    ctx.host = host
    found = check_containers(ctx, host)
    found += check_mounts(ctx, host)
    found += check_networking(ctx, host)
    found += check_volumes(ctx)
    stored, notes = check_storage(ctx)
    found += stored
    found += check_logs(ctx)
    return found, [*notes, *host.gaps]


async def inspect(ctx: CheckContext) -> tuple[list[Finding], list[str]]:
    """Every finding, and notes that are not problems (in a worker thread)."""
    return await asyncio.to_thread(_inspect, ctx)


async def run_check(ctx: CheckContext, *, repair: bool = False) -> CheckReport:
    """Check the data root; with ``repair``, repair what can be and check again."""
    found, notes = await inspect(ctx)
    if not repair or not any(f.action is not None for f in found):
        return CheckReport(tuple(found), notes=tuple(notes))
    repaired: list[Repaired] = []
    outcome: dict[int, str] = {}
    actions: dict[int, RepairAction] = {}
    for finding in found:
        if finding.action is None:
            continue
        key = id(finding.action)
        if key not in outcome:
            actions[key] = finding.action
            try:
                await finding.action()
                outcome[key] = ""
            except Exception as exc:  # a failed repair is reported; the others still run
                log.exception("repairing %s", finding.line())
                outcome[key] = str(exc) or type(exc).__name__
        repaired.append(Repaired(finding, outcome[key]))
    left, notes = await inspect(ctx)
    return CheckReport(tuple(left), tuple(repaired), tuple(notes))
