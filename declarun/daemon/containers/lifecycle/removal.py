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
from typing import TYPE_CHECKING

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.images.fsops import remove_tree
from declarun.errdefs import Conflict, NotFound

if TYPE_CHECKING:
    from pathlib import Path

    from declarun.daemon.containers.lifecycle.service import ContainerService

__all__ = ["Removal", "remove_files", "tree_size"]


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
    """``remove``, ``prune`` and the ``removed`` waiters of the service's containers."""

    def __init__(self, service: ContainerService) -> None:
        self.service = service
        self._removed: dict[str, list[asyncio.Future[int]]] = {}

    def removed(self, rec: ContainerRecord) -> asyncio.Future[int]:
        """A future for the last exit code of ``rec``, set once it has been removed."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._removed.setdefault(rec.id, []).append(future)
        return future

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a container and everything it has on disk (running ones only with force)."""
        rec = self.service.get(ref)
        async with self.service.lock(rec):
            if not self.service.store.contains(rec.id):
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
                await self.service.control.stop_locked(rec, 0, "KILL")
            await self.service.exits.settle(rec)
            rec.state.removal_in_progress = True
            self.service.store.save(rec)
            await self._delete(rec)
        self.service.publish(rec, "destroy")
        for future in self._removed.pop(rec.id, []):
            if not future.done():
                future.set_result(rec.state.exit_code)
        self.service.exits.fail_next_exit(rec, NotFound(f"No such container: {rec.id}"))
        self.service.listeners.removed(rec, volumes)

    async def _delete(self, rec: ContainerRecord) -> None:
        self.service.exits.unwatch(rec)
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        await asyncio.to_thread(remove_files, self.service.rootfs, rec)
        self.service.store.delete(rec)
        self.service.forget_lock(rec)

    async def prune(self, keep: Callable[[ContainerRecord], bool]) -> tuple[list[str], int]:
        """Remove every stopped container ``keep`` does not keep; ids and bytes freed."""
        removed: list[str] = []
        freed = 0
        for rec in self.service.list():
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
        base = self.service.rootfs.snapshotter.root / "containers" / rec.id
        upper = base / "upper" if (base / "upper").is_dir() else base / "rootfs"
        return tree_size(upper)
