"""Finding every container again when the daemon starts.

For each stored record, :func:`~declarun.daemon.containers.runtime.recovery.recover` asks conmon's
files and the runtime what became of it while no daemon was watching:

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
from datetime import UTC, datetime

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.runtime.exitwatch import ExitStatus
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.containers.runtime.recovery import UNKNOWN_EXIT_CODE, recover
from declarun.daemon.images.fsops import remove_tree

__all__ = ["restore"]

log = logging.getLogger("declarun.daemon.containers")


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
