"""Removing containers: ``rm`` (with ``force`` and ``v``), ``wait?condition=removed``, prune.

A running container is removed only with ``force`` (SIGKILL first); one in a restart
back-off counts as running here, as in dockerd. The record is marked
``removal_in_progress`` and persisted before anything is deleted, so a daemon killed
halfway finishes the removal at its next start (:mod:`restore`). Then the runtime
container, the writable layer, the bundle and the exit file go, the record last;
``destroy`` is published, ``removed`` waiters answered and remove listeners called
(anonymous volumes, exec instances, health checkers, pending restarts).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from declarun.daemon import failpoints
from declarun.daemon.containers.lifecycle.exit_recorder import ExitRecorder
from declarun.daemon.containers.lifecycle.listeners import Listeners, Publish
from declarun.daemon.containers.lifecycle.locks import ContainerLocks
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.images.fsops import remove_tree
from declarun.errdefs import Conflict, NotFound

__all__ = ["Removal", "StopBeforeRemoval", "remove_files", "tree_size"]


class StopBeforeRemoval(Protocol):
    """What a forced removal needs to end a running container (:class:`RunControl`)."""

    async def stop_locked(
        self, rec: ContainerRecord, timeout: int | None, signal: str | None = None
    ) -> None:
        """Stop ``rec`` (its lock held) and wait until its exit is recorded."""
        ...


def remove_files(rootfs: RootfsManager, rec: ContainerRecord) -> None:
    """Delete the writable layer, the bundle and the exit file of ``rec`` (blocking)."""
    rootfs.remove(rec.id)
    remove_tree(rec.bundle_dir)
    rec.layout.exit_file(rec.id).unlink(missing_ok=True)


def tree_size(path: Path) -> int:
    """Apparent size of the files under ``path`` (links not followed, errors skipped)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total


class Removal:
    """``remove``, ``prune`` and the ``removed`` waiters of the service's containers.

    Built by the service over the parts it shares with it (records, root filesystems,
    locks, exit recorder, listeners, its event publisher) and its run control, which
    stops a container that is removed with ``force``.
    """

    def __init__(
        self,
        store: RecordStore,
        rootfs: RootfsManager,
        locks: ContainerLocks,
        exits: ExitRecorder,
        listeners: Listeners,
        publish: Publish,
        control: StopBeforeRemoval,
    ) -> None:
        self.store = store
        self.rootfs = rootfs
        self.locks = locks
        self.exits = exits
        self.listeners = listeners
        self.publish = publish
        self.control = control
        self._removed: dict[str, list[asyncio.Future[int]]] = {}

    def removed(self, rec: ContainerRecord) -> asyncio.Future[int]:
        """A future for the last exit code of ``rec``, set once it has been removed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._removed.setdefault(rec.id, []).append(future)
        return future

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a container and everything it has on disk (running ones only with force)."""
        rec = self.store.lookup(ref)
        async with self.locks.lock(rec):
            if not self.store.contains(rec.id):
                raise NotFound(f"No such container: {ref}")
            if rec.state.removal_in_progress and not force:
                raise Conflict(f"removal of container {rec.id} is already in progress")
            if rec.state.listed and not force:
                what = "restarting: stop"
                if rec.state.running:
                    what = ("paused and running: unpause and then stop" if rec.state.paused
                            else "running: stop")  # fmt: skip
                raise Conflict(
                    f'cannot remove container "/{rec.name}": container is {what} the '
                    "container before removing or force remove"
                )
            if rec.state.running:
                await self.control.stop_locked(rec, 0, "KILL")
            await self.exits.settle(rec)
            rec.state.removal_in_progress = True
            self.store.save(rec)
            await self._delete(rec)
        self.publish(rec, "destroy")
        for future in self._removed.pop(rec.id, []):
            if not future.done():
                future.set_result(rec.state.exit_code)
        self.exits.fail_next_exit(rec, NotFound(f"No such container: {rec.id}"))
        self.listeners.removed(rec, volumes)

    async def _delete(self, rec: ContainerRecord) -> None:
        self.exits.unwatch(rec)
        # The exit recorder has deleted the runtime's container when the run ended; only a
        # state left over (a run the daemon did not see end) costs a `runc delete` here.
        if rec.runtime.has_state(rec.id):
            with contextlib.suppress(OciRuntimeError):
                await rec.runtime.delete(rec.id, force=True)
        failpoints.hit("rm-midway")
        await asyncio.to_thread(remove_files, self.rootfs, rec)
        self.store.delete(rec)
        self.locks.forget(rec)

    async def prune(self, keep: Callable[[ContainerRecord], bool]) -> tuple[list[str], int]:
        """Remove every stopped container ``keep`` does not keep; ids and bytes freed."""
        removed: list[str] = []
        freed = 0
        for rec in self.store.all():
            if rec.state.listed or keep(rec):
                continue
            size = await asyncio.to_thread(self.size_rw, rec)
            try:
                await self.remove(rec.id)
            except (Conflict, NotFound):
                continue
            removed.append(rec.id)
            freed += size
        return removed, freed

    def size_rw(self, rec: ContainerRecord) -> int:
        """Bytes in the container's writable layer (blocking: walks the upper directory)."""
        base = self.rootfs.snapshotter.root / "containers" / rec.id
        upper = base / "upper" if (base / "upper").is_dir() else base / "rootfs"
        return tree_size(upper)
