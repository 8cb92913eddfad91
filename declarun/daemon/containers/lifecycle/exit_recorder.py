"""Following each run of a container to its end, and recording that end.

The container service owns one :class:`ExitRecorder`. For every run it starts (or finds
running after a daemon restart) it keeps a task that waits on the daemon's single
:class:`~declarun.daemon.containers.runtime.exitwatch.ExitWatcher` and then records the exit:

1. the runtime container is deleted, the root filesystem mount and the network released
   (namespace, addresses, published ports) -- *before*
   the state changes: a start waits for this task (:meth:`ExitRecorder.settle`), and
   nothing may see "not running" while the old run still holds its mount;
2. the state becomes exited (code, finish time, OOM) and is persisted;
3. ``oom`` and ``die`` are published, ``wait?condition=next-exit`` callers answered, the
   exit listeners called (restart policy, health) and an ``AutoRemove`` container removed.

Steps 2 and 3 run without an ``await`` in between, so no other coroutine ever sees an
exited container whose restart policy has not yet decided.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from declarun.daemon.containers.lifecycle.listeners import Listeners, Publish
from declarun.daemon.containers.lifecycle.networking import ContainerNetworking
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.containers.runtime.exitwatch import ExitStatus, ExitWatcher
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.snapshots.model import SnapshotError

__all__ = ["ExitRecorder"]

log = logging.getLogger("declarun.daemon.containers")

AutoRemove = Callable[[ContainerRecord], Coroutine[Any, Any, None]]


class ExitRecorder:
    """The exit watch of every running container and the recording of its exits."""

    def __init__(
        self,
        store: RecordStore,
        rootfs: RootfsManager,
        watcher: ExitWatcher,
        listeners: Listeners,
        publish: Publish,
        auto_remove: AutoRemove,
    ) -> None:
        self.store = store
        self.rootfs = rootfs
        self.watcher = watcher
        self.listeners = listeners
        self._publish = publish
        self._auto_remove = auto_remove
        self._runs: dict[str, asyncio.Task[ExitStatus | None]] = {}
        #: The service's networking (set with it): released with the mount, in step 1.
        self.networking: ContainerNetworking | None = None
        self._next_exit: dict[str, list[asyncio.Future[int]]] = {}

    def watch(self, rec: ContainerRecord) -> None:
        """Follow the current run of ``rec`` until its exit is recorded."""
        task = asyncio.get_running_loop().create_task(self._await_exit(rec))
        self._runs[rec.id] = task

    async def _await_exit(self, rec: ContainerRecord) -> ExitStatus | None:
        status = await self.watcher.wait(rec.id)
        try:
            await self.record(rec, status)
        except Exception:
            log.exception("recording the exit of container %s failed", rec.id)
        return status

    async def record(self, rec: ContainerRecord, status: ExitStatus) -> None:
        """Release the run's resources, then record ``status`` (see module docstring)."""
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        rec.rootfs_path = None
        try:
            await asyncio.to_thread(self.rootfs.release_mount, rec.id)
        except SnapshotError:
            # The exit is still recorded (a container must not stay "running" for a mount);
            # removal unmounts again, and `daemon check` reports a mount left behind.
            log.exception("unmounting the root of container %s failed", rec.id)
        if self.networking is not None:
            try:
                await self.networking.teardown(rec)
            except Exception:
                log.exception("releasing the network of container %s failed", rec.id)
        state = rec.state
        finished = status.finished_at.timestamp() if status.finished_at else time.time()
        state.set_exited(status.code, int(finished * 1_000_000_000), rec.layout.oom_file.exists())
        if not self.store.contains(rec.id):
            return  # removed while the run ended
        self.store.save(rec)
        if state.oom_killed:
            self._publish(rec, "oom", {})
        started = state.started_at / 1e9 if state.started_at else finished
        duration = str(int(finished - started))
        self._publish(rec, "die", {"exitCode": str(status.code), "execDuration": duration})
        for future in self._next_exit.pop(rec.id, []):
            if not future.done():
                future.set_result(status.code)
        self.listeners.exited(rec, status)
        if rec.host_config.auto_remove and not state.restarting:
            self.listeners.spawn(self._auto_remove(rec))

    async def settle(self, rec: ContainerRecord) -> None:
        """Let the recording of a previous run's exit finish."""
        task = self._runs.get(rec.id)
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def wait_exit(self, rec: ContainerRecord) -> ExitStatus | None:
        """The status of the current (or last) run once recorded; None if never watched."""
        task = self._runs.get(rec.id)
        if task is None:
            return None
        return await asyncio.shield(task)

    def next_exit(self, rec: ContainerRecord) -> asyncio.Future[int]:
        """A future for the exit code of the next recorded exit of ``rec``."""
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._next_exit.setdefault(rec.id, []).append(future)
        return future

    def unwatch(self, rec: ContainerRecord) -> None:
        """Stop following ``rec`` (it is being removed)."""
        task = self._runs.pop(rec.id, None)
        if task is not None and not task.done():
            task.cancel()

    def fail_next_exit(self, rec: ContainerRecord, error: BaseException) -> None:
        """``rec`` is gone: its next-exit waiters get ``error``."""
        for future in self._next_exit.pop(rec.id, []):
            if not future.done():
                future.set_exception(error)

    def tasks(self) -> list[asyncio.Task[ExitStatus | None]]:
        """Every watch task (to cancel at shutdown)."""
        return list(self._runs.values())
