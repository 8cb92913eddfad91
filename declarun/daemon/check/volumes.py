"""Checks of volumes: each volume record has its directory, each volume directory its
record, each volume a running container uses exists, and nothing is left of an
interrupted create or removal.

Repairs never delete a user's data: a directory without a record is registered again as a
volume of the local driver (the user decides with ``docker volume rm``), and the data an
interrupted removal set aside goes back into place when the volume's record is still
there (see :func:`declarun.daemon.volumes.store.interrupted_work`).
"""

from __future__ import annotations

import asyncio
import os
from datetime import UTC, datetime

from declarun.daemon.check.context import CheckContext
from declarun.daemon.check.model import Finding
from declarun.daemon.metadata import VolumeRow
from declarun.daemon.volumes.store import Leftover, interrupted_work

__all__ = ["check_volumes"]


def check_volumes(ctx: CheckContext) -> list[Finding]:
    """Findings about volumes (blocking)."""
    found: list[Finding] = []
    root = ctx.volumes_dir
    if not root.is_dir():
        return found
    meta = ctx.metadata
    rows = {row.name: row for row in meta.list_volumes()}
    leftovers = interrupted_work(root, meta)
    set_aside = {leftover.restore for leftover in leftovers}
    for name in sorted(rows):
        if not (root / name / "_data").is_dir() and name not in set_aside:
            found.append(
                Finding(
                    "volumes",
                    f"volume {name}",
                    f"its data directory {root / name / '_data'} is missing",
                    advice="its data is lost: remove the volume and create it again",
                )
            )
    for entry in sorted(os.scandir(root), key=lambda e: e.name):
        if entry.name.startswith(".") or entry.name in rows or not entry.is_dir():
            continue
        row = VolumeRow(entry.name, "local", datetime.now(UTC).isoformat(), {}, {})

        async def register(row: VolumeRow = row) -> None:
            await asyncio.to_thread(meta.add_volume, row)

        found.append(
            Finding(
                "volumes",
                f"directory {entry.path}",
                "a volume's data without a volume record",
                repair="register it again as a volume (its data is kept)",
                action=register,
            )
        )
    if not ctx.online:  # a running daemon may be creating or removing one right now
        for leftover in leftovers:

            async def settle(leftover: Leftover = leftover) -> None:
                await asyncio.to_thread(leftover.settle)

            if leftover.restore is not None:
                problem = f"the data of volume {leftover.restore}, set aside by a removal cut short"
                repair = "put it back (the volume was never removed)"
            else:
                problem = "what a volume create or removal cut short left"
                repair = "delete it"
            found.append(
                Finding("volumes", str(leftover.path), problem, repair=repair, action=settle)
            )
    for rec in ctx.container_records():
        if not rec.state.running:
            continue
        for target, name in sorted(rec.volume_names.items()):
            if name and name not in rows:
                found.append(
                    Finding(
                        "volumes",
                        f"container {rec.name} ({rec.id[:12]})",
                        f"it runs with volume {name} at {target}, which has no record",
                        advice="create the volume again (its directory, if any, is re-registered)",
                    )
                )
    return found
