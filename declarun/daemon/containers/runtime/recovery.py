"""Finding a container's true state again after the daemon restarted.

The daemon keeps no process per container, so after a restart it asks the files conmon and
the runtime left behind, in this order of authority:

1. The exit file ``<exit-dir>/<cid>``: the container ended; its status, and its mtime as
   the exit time. This covers exits that happened while the daemon was down.
2. conmon's pidfile, checked against ``/proc/<pid>/cmdline`` (pids are reused: the process
   must be a ``conmon`` for this container id, and not a zombie).
3. The runtime's ``state``: ``created``/``running``/``paused`` while conmon supervises.

When conmon is gone without an exit file (it was killed), the runtime's word decides: a
still-running container is reported ``supervised=False`` (nobody collects its output or exit
status; the caller should kill it, as Docker does for a container it cannot re-attach), a
stopped one as exited with the unknown status 255, and one the runtime does not know as
``gone``.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from declarun.daemon.containers.runtime.exitwatch import ExitStatus, read_exit_file
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import ContainerNotFoundError, OciRuntime, RuntimeState
from declarun.daemon.containers.runtime.syncpipe import conmon_alive

__all__ = ["UNKNOWN_EXIT_CODE", "Recovered", "conmon_alive", "recover"]

UNKNOWN_EXIT_CODE = 255
# A conmon whose container just stopped writes its exit file within milliseconds.
_SETTLE_TIMEOUT = 5.0

Status = Literal["created", "running", "paused", "exited", "gone"]


@dataclass(frozen=True)
class Recovered:
    """What :func:`recover` found: the status, pids while alive, the exit when ended."""

    status: Status
    pid: int | None = None
    conmon_pid: int | None = None
    exit: ExitStatus | None = None
    supervised: bool = True


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


async def _runtime_state(runtime: OciRuntime, cid: str) -> RuntimeState | None:
    try:
        return await runtime.state(cid)
    except ContainerNotFoundError:
        return None


async def recover(runtime: OciRuntime, layout: MonitorLayout, cid: str) -> Recovered:
    """The state of container ``cid`` from the files on disk and the runtime."""
    exit_file = layout.exit_file(cid)
    status = read_exit_file(exit_file)
    if status is not None:
        return Recovered("exited", exit=status)
    conmon_pid = _read_pid(layout.conmon_pidfile)
    alive = conmon_pid is not None and conmon_alive(conmon_pid, cid)
    state = await _runtime_state(runtime, cid)
    if alive and (state is None or state.status == "stopped"):
        # conmon is between the container's end and writing the exit file (or runc is
        # still creating): give it a moment, then look again.
        status = await _settle(exit_file, conmon_pid or 0, cid)
        if status is not None:
            return Recovered("exited", exit=status)
        state = await _runtime_state(runtime, cid)
    if state is None:
        return Recovered("gone")
    pid = _read_pid(layout.container_pidfile) or state.pid or None
    live: dict[str, Status] = {"created": "created", "running": "running", "paused": "paused"}
    if state.status in live:
        return Recovered(live[state.status], pid=pid, conmon_pid=conmon_pid if alive else None,
                         supervised=alive)  # fmt: skip
    return Recovered("exited", exit=ExitStatus(UNKNOWN_EXIT_CODE, None), supervised=False)


async def _settle(exit_file: Path, conmon_pid: int, cid: str) -> ExitStatus | None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + _SETTLE_TIMEOUT
    while loop.time() < deadline:
        status = read_exit_file(exit_file)
        if status is not None or not conmon_alive(conmon_pid, cid):
            return status if status is not None else read_exit_file(exit_file)
        await asyncio.sleep(0.05)
    return None
