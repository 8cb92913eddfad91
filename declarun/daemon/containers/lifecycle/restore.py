"""Finding every container again when the daemon starts.

The daemon keeps no process per container, so after a restart :func:`recover` asks the files
conmon and the runtime left behind what became of each container, in this order of
authority:

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

:func:`restore` then reconciles every stored record with what :func:`recover` found:

* still running (or paused) under its conmon: the record says so, the root filesystem
  mount is adopted and the exit watch re-armed;
* ended meanwhile: recorded as exited with conmon's status and the exit file's mtime as
  the exit time, and its mount released; ``die`` is published and exit listeners run (a
  restart policy may bring it back);
* running without a conmon (the monitor was killed): nobody can collect its output or
  status, so it is killed, as dockerd kills containers it cannot re-attach;
* a record whose removal was interrupted: the removal is finished.

Then whatever has no record is swept: bundle directories and writable layers of creates a
crash interrupted, runtime containers of ours nobody owns, mounts no running container
needs. Nothing is left mounted or running that the daemon does not know about.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.runtime.exitwatch import ExitStatus, read_exit_file
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import (
    ContainerNotFoundError,
    OciRuntime,
    OciRuntimeError,
    RuntimeState,
)
from declarun.daemon.containers.runtime.syncpipe import conmon_alive
from declarun.daemon.images.fsops import remove_tree

__all__ = ["UNKNOWN_EXIT_CODE", "Recovered", "conmon_alive", "recover", "restore"]

log = logging.getLogger("declarun.daemon.containers")

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


async def restore(service: ContainerService) -> None:
    """Load, reconcile and re-watch every container (call once, at start-up)."""
    records = service.store.load()
    results = await asyncio.gather(
        *(_restore_one(service, rec) for rec in records), return_exceptions=True
    )
    for rec, result in zip(records, results, strict=True):
        if isinstance(result, BaseException):
            log.error("recovering container %s failed: %s", rec.id, result)
    await _sweep(service)


async def _restore_one(service: ContainerService, rec: ContainerRecord) -> None:
    if rec.state.removal_in_progress:
        await service.remove(rec.id, force=True)
        return
    was_running = rec.state.running
    found = await recover(rec.runtime, rec.layout, rec.id)
    if found.status in ("running", "paused") and found.supervised:
        state = rec.state
        state.running, state.paused = True, found.status == "paused"
        state.pid = found.pid or state.pid
        state.conmon_pid = found.conmon_pid or state.conmon_pid
        if state.started_at == 0:
            state.started_at = time.time_ns()  # the daemon died between runc start and saving
        rec.rootfs_path = service.rootfs.snapshotter.root / "containers" / rec.id / "rootfs"
        service.rootfs.adopt(rec.id)
        service.store.save(rec)
        service.resume_watch(rec)
        return
    if found.status in ("running", "paused", "created"):
        # Unsupervised, or created but never started: nobody holds its stdio any more.
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        if found.status != "created" or was_running:
            status = ExitStatus(UNKNOWN_EXIT_CODE, datetime.now(UTC))
            await service.record_recovered_exit(rec, status)
            return
    if found.status == "exited" and was_running:
        assert found.exit is not None
        await service.record_recovered_exit(rec, found.exit)
        return
    if found.status == "gone" and was_running:
        await service.record_recovered_exit(rec, ExitStatus(UNKNOWN_EXIT_CODE, None))
        return
    # Not running before, not running now: make sure it holds no mount.
    rec.rootfs_path = None
    await asyncio.to_thread(service.rootfs.force_unmount, rec.id)


async def _sweep(service: ContainerService) -> None:
    store = service.store
    for cid in store.orphan_bundles():
        log.info("removing the leftovers of unfinished container %s", cid)
        for runtime in store.runtimes():
            with contextlib.suppress(OciRuntimeError):
                await runtime.delete(cid, force=True)
        await asyncio.to_thread(remove_tree, store.bundles_dir / cid)
        (store.exit_dir / cid).unlink(missing_ok=True)
    for runtime in store.runtimes():
        try:
            listed = await runtime.list_containers()
        except OciRuntimeError:
            continue  # runtime not installed
        for state in listed:
            if not store.contains(state.id):
                log.info("deleting runtime container %s that no record owns", state.id)
                with contextlib.suppress(OciRuntimeError):
                    await runtime.delete(state.id, force=True)
    for cid in service.rootfs.known_layers():
        if not store.contains(cid):
            await asyncio.to_thread(service.rootfs.remove, cid)
    with contextlib.suppress(OSError):
        for name in os.listdir(store.exit_dir):
            if not store.contains(name) and not name.startswith("."):
                (store.exit_dir / name).unlink(missing_ok=True)
