"""The container service: create, start, stop, remove... containers, and find them again.

One :class:`ContainerService` per daemon, attached at start-up by the containers API area
(:func:`attach_container_service`) as ``ctx.containers``. It owns the container records
(persisted in the metadata database's ``containers`` table, one transaction per change),
the daemon's single :class:`~declarun.daemon.containers.exitwatch.ExitWatcher`, and the
conmon monitors it starts.

Interface for other daemon parts (attach, exec, health, restart policies, volumes,
archive) -- these names are stable::

    service = ctx.containers                      # ContainerService
    rec = service.get(ref)                        # ContainerRecord; ref: full id, name
                                                  # ("x" or "/x") or unambiguous id prefix;
                                                  # NotFound("No such container: ref")
    service.list() -> list[ContainerRecord]       # every container, oldest first
    rec.id, rec.name                              # 64-hex id; name without leading "/"
    rec.config                                    # ContainerConfig (merged with the image)
    rec.host_config                               # HostConfig
    rec.state                                     # ContainerState: .running, .paused,
                                                  # .exit_code, .health (settable: any JSON
                                                  # dict or None, shown as State.Health),
                                                  # .status, .pid, .started_at,
                                                  # .finished_at, .manually_stopped,
                                                  # .restart_count (see record.py)
    rec.bundle_dir                                # Path: config.json + conmon's files
    rec.layout                                    # MonitorLayout (attach socket, ctl fifo,
                                                  # log file, exit file)
    rec.rootfs_path                               # Path of the mounted root (while running)
    rec.runtime                                   # OciRuntime of this container
    rec.volume_names                              # {target: volume name} (named + anonymous)
    await service.start(ref)                      # NotModified (304) if running
    await service.stop(ref, timeout=None)         # StopSignal, then SIGKILL after timeout
                                                  # (None: StopTimeout or 10 s)
    await service.kill(ref, signal="KILL")
    service.add_exit_listener(cb)                 # cb(record, ExitStatus); after the state
                                                  # is exited and persisted (restart policy)
    service.add_start_listener(cb)                # cb(record) after every start (health)
    service.add_prestart_listener(acb)            # await acb(record) after conmon created
                                                  # the container, before the user process
                                                  # runs (attach connects here)
    service.add_remove_listener(cb)               # cb(record, remove_volumes: bool) after a
                                                  # container is removed (anonymous volumes)
    service.update_state(record_id, **fields)     # set ContainerState fields and persist
    service.publish(record, action, attributes)   # a container event (name/image/labels
                                                  # attributes are added)
    service.register_mount_resolver(fn)           # fn(MountSpec) -> Path: host directory of
                                                  # a "volume" mount (spec.source is the
                                                  # volume name; anonymous volumes get a
                                                  # generated 64-hex name at create). Until
                                                  # one is registered, named volumes fail
                                                  # with "volume support not available".
    async with service.mounted_rootfs(ref) as root:   # the root filesystem, mounted for the
        ...                                       # block (running or not; docker cp/export)
    service.wait_exit(ref) -> ExitStatus          # await the current run's end
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import inspect
import logging
import os
import signal as signal_module
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

from declarun.daemon.api.errors import BadRequest, Conflict, NotFound, NotModified
from declarun.daemon.containers.createconfig import check_container_name, parse_stop_signal
from declarun.daemon.containers.creation import ImageSource, new_record
from declarun.daemon.containers.errors import InvalidCreateRequest
from declarun.daemon.containers.etcfiles import write_etc_files
from declarun.daemon.containers.exitwatch import ExitStatus, ExitWatcher
from declarun.daemon.containers.launch import MountResolver, StartFailed, launch
from declarun.daemon.containers.monitor import start_container, stop_container
from declarun.daemon.containers.names import generate_name, new_container_id
from declarun.daemon.containers.record import ContainerRecord
from declarun.daemon.containers.rootfs import RootfsManager
from declarun.daemon.containers.runtime import OciRuntimeError
from declarun.daemon.containers.store import RecordStore, name_conflict
from declarun.daemon.containers.syncpipe import MonitorError
from declarun.daemon.context import ContainerCounts
from declarun.daemon.events import EventBus
from declarun.daemon.images.fsops import remove_tree

__all__ = ["ContainerService", "ExitListener", "StartListener"]

log = logging.getLogger("declarun.daemon.containers")

ExitListener = Callable[[ContainerRecord, ExitStatus], object]
StartListener = Callable[[ContainerRecord], object]
PrestartListener = Callable[[ContainerRecord], Awaitable[None]]
RemoveListener = Callable[[ContainerRecord, bool], object]

DEFAULT_STOP_TIMEOUT = 10
# How long a kill with SIGKILL waits for the exit to be recorded before answering.
_KILL_SETTLE = 10.0


class ContainerService:
    """Every container of one daemon (use from the daemon's event loop)."""

    def __init__(
        self,
        store: RecordStore,
        rootfs: RootfsManager,
        events: EventBus,
        exit_dir: Path,
    ) -> None:
        self.store = store
        self.rootfs = rootfs
        self.events = events
        self.watcher = ExitWatcher(exit_dir)
        self._locks: dict[str, asyncio.Lock] = {}
        self._runs: dict[str, asyncio.Task[ExitStatus | None]] = {}
        self._removed: dict[str, list[asyncio.Future[int]]] = {}
        self._next_exit: dict[str, list[asyncio.Future[int]]] = {}
        self._background: set[asyncio.Task[Any]] = set()
        self._exit_listeners: list[ExitListener] = []
        self._start_listeners: list[StartListener] = []
        self._prestart_listeners: list[PrestartListener] = []
        self._remove_listeners: list[RemoveListener] = []
        self._resolver: MountResolver | None = None

    # -- the interface other areas build on ------------------------------------------

    def get(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names (id, name, id prefix); NotFound otherwise."""
        return self.store.lookup(ref)

    def list(self) -> list[ContainerRecord]:
        """Every container, oldest first."""
        return self.store.all()

    def add_exit_listener(self, callback: ExitListener) -> None:
        """Call ``callback(record, status)`` after each exit has been recorded."""
        self._exit_listeners.append(callback)

    def add_start_listener(self, callback: StartListener) -> None:
        """Call ``callback(record)`` after each successful start."""
        self._start_listeners.append(callback)

    def add_prestart_listener(self, callback: PrestartListener) -> None:
        """Await ``callback(record)`` between conmon's create and the user process' start."""
        self._prestart_listeners.append(callback)

    def add_remove_listener(self, callback: RemoveListener) -> None:
        """Call ``callback(record, remove_volumes)`` after a container was removed."""
        self._remove_listeners.append(callback)

    def register_mount_resolver(self, resolver: MountResolver) -> None:
        """Use ``resolver(spec) -> host path`` for ``volume`` mounts."""
        self._resolver = resolver

    def update_state(self, record_id: str, **fields: Any) -> ContainerRecord:
        """Set fields of a container's state and persist them."""
        rec = self.get(record_id)
        for key, value in fields.items():
            if not hasattr(rec.state, key):
                raise AttributeError(f"container state has no field {key!r}")
            setattr(rec.state, key, value)
        self.store.save(rec)
        return rec

    def publish(
        self, record: ContainerRecord, action: str, attributes: dict[str, str] | None = None
    ) -> None:
        """Publish a container event with Docker's attributes (labels, image, name)."""
        attrs = dict(record.config.labels)
        attrs.update({"image": record.config.image, "name": record.name})
        attrs.update(attributes or {})
        self.events.publish("container", action, record.id, attrs)

    def counts(self) -> ContainerCounts:
        """Containers by state, for ``/info``."""
        running = paused = stopped = 0
        for rec in self.store.all():
            if rec.state.paused:
                paused += 1
            elif rec.state.running:
                running += 1
            else:
                stopped += 1
        return ContainerCounts(running=running, paused=paused, stopped=stopped)

    def lock(self, rec: ContainerRecord) -> asyncio.Lock:
        """The lock serialising state changes of one container."""
        return self._locks.setdefault(rec.id, asyncio.Lock())

    # -- start ---------------------------------------------------------------------

    async def start(self, ref: str) -> ContainerRecord:
        """Start a created or exited container; NotModified when it already runs."""
        rec = self.get(ref)
        async with self.lock(rec):
            if rec.state.removal_in_progress:
                raise Conflict("container is marked for removal and cannot be started")
            if rec.state.paused:
                raise Conflict("cannot start a paused container, try unpause instead")
            if rec.state.running:
                raise NotModified("container already started")
            await self._settle(rec)
            await self._start_locked(rec)
        return rec

    async def _start_locked(self, rec: ContainerRecord) -> None:
        try:
            created = await launch(rec, self.rootfs, self._resolver)
        except StartFailed as exc:
            rec.state.error = exc.message
            rec.state.exit_code = exc.exit_code
            self.store.save(rec)
            raise
        try:
            for listener in self._prestart_listeners:
                await listener(rec)
            started_at = time.time_ns()
            await start_container(rec.runtime, rec.id)
        except BaseException as exc:
            await self._abort_start(rec)
            if isinstance(exc, OciRuntimeError):
                rec.state.error, rec.state.exit_code = exc.message, 128
                self.store.save(rec)
                raise StartFailed(exc.message, 500, 128) from None
            raise
        state = rec.state
        state.running, state.paused, state.restarting = True, False, False
        state.pid, state.conmon_pid = created.pid, created.conmon_pid
        state.started_at, state.exit_code, state.error = started_at, 0, ""
        state.oom_killed = state.manually_stopped = False
        self.store.save(rec)
        self.publish(rec, "start")
        self._watch(rec)
        for callback in self._start_listeners:
            self._call(callback, rec)

    async def _abort_start(self, rec: ContainerRecord) -> None:
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        rec.rootfs_path = None
        await asyncio.to_thread(self.rootfs.release_mount, rec.id)

    def resume_watch(self, rec: ContainerRecord) -> None:
        """Watch a container found running after a daemon restart."""
        self._watch(rec)

    async def record_recovered_exit(self, rec: ContainerRecord, status: ExitStatus) -> None:
        """Record an exit that happened while no daemon was watching."""
        await self._record_exit(rec, status)

    def _watch(self, rec: ContainerRecord) -> None:
        """Follow the current run of ``rec`` until its exit is recorded."""
        task = asyncio.get_running_loop().create_task(self._await_exit(rec))
        self._runs[rec.id] = task

    async def _await_exit(self, rec: ContainerRecord) -> ExitStatus | None:
        status = await self.watcher.wait(rec.id)
        try:
            await self._record_exit(rec, status)
        except Exception:
            log.exception("recording the exit of container %s failed", rec.id)
        return status

    async def _record_exit(self, rec: ContainerRecord, status: ExitStatus) -> None:
        # Release first, change the state last: a start waits for this task, and nothing
        # else may see "not running" while the old run still holds its mount.
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        rec.rootfs_path = None
        await asyncio.to_thread(self.rootfs.release_mount, rec.id)
        state = rec.state
        state.running = state.paused = state.restarting = False
        state.pid = state.conmon_pid = 0
        state.exit_code = status.code
        finished = status.finished_at.timestamp() if status.finished_at else time.time()
        # The exit file's mtime is coarse (a clock tick): never before the start.
        state.finished_at = max(int(finished * 1_000_000_000), state.started_at)
        state.oom_killed = rec.layout.oom_file.exists()
        if not self.store.contains(rec.id):
            return
        self.store.save(rec)
        if state.oom_killed:
            self.publish(rec, "oom")
        started = state.started_at / 1e9 if state.started_at else finished
        self.publish(
            rec, "die", {"exitCode": str(status.code), "execDuration": str(int(finished - started))}
        )
        for future in self._next_exit.pop(rec.id, []):
            if not future.done():
                future.set_result(status.code)
        for callback in self._exit_listeners:
            self._call(callback, rec, status)
        if rec.host_config.auto_remove and not state.restarting:
            self._spawn(self._auto_remove(rec))

    async def _auto_remove(self, rec: ContainerRecord) -> None:
        try:
            await self.remove(rec.id, force=True)
        except NotFound:
            pass
        except Exception:
            log.exception("auto-removing container %s failed", rec.id)

    def _spawn(self, coro: Awaitable[Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _call(self, callback: Callable[..., object], *args: Any) -> None:
        try:
            result = callback(*args)
        except Exception:
            log.exception("container listener %r failed", callback)
            return
        if inspect.isawaitable(result):
            self._spawn(result)

    async def _settle(self, rec: ContainerRecord) -> None:
        """Let the recording of a previous run's exit finish."""
        task = self._runs.get(rec.id)
        if task is not None and not task.done():
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)

    async def wait_exit(self, ref: str) -> ExitStatus | None:
        """Wait until the current run of ``ref`` has ended and been recorded."""
        rec = self.get(ref)
        task = self._runs.get(rec.id)
        if task is None:
            return None
        return await asyncio.shield(task)

    # -- create ----------------------------------------------------------------------

    async def create(
        self, body: Any, *, name: str, images: ImageSource, default_runtime: str
    ) -> ContainerRecord:
        """Create a container: record, writable layer, /etc files. Nothing runs yet."""
        cid = new_container_id()
        rec, image = new_record(
            body, name=name, cid=cid, images=images, store=self.store,
            default_runtime=default_runtime,
        )  # fmt: skip
        if rec.name:
            owner = self.store.name_owner(rec.name)
            if owner is not None:
                raise name_conflict(rec.name, owner)
        else:
            rec.name = generate_name(lambda n: self.store.name_owner(n) is not None)
        try:
            await asyncio.to_thread(images.ensure_snapshot, image)
            await asyncio.to_thread(self._prepare_files, rec)
            self.store.add(rec)
        except BaseException:
            await asyncio.to_thread(self._remove_files, rec)
            raise
        self.publish(rec, "create")
        return rec

    def _prepare_files(self, rec: ContainerRecord) -> None:
        rec.bundle_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.rootfs.prepare(rec.chain_id, rec.id)
        write_etc_files(rec.bundle_dir, rec.config.hostname, rec.host_config)

    def _remove_files(self, rec: ContainerRecord) -> None:
        self.rootfs.remove(rec.id)
        remove_tree(rec.bundle_dir)
        rec.layout.exit_file(rec.id).unlink(missing_ok=True)

    # -- stop, kill, restart, pause ------------------------------------------------------

    def _stop_signal(self, rec: ContainerRecord) -> int:
        try:
            return parse_stop_signal(rec.config.stop_signal or "SIGTERM")
        except InvalidCreateRequest:
            return int(signal_module.SIGTERM)

    async def stop(
        self, ref: str, timeout: int | None = None, signal: str | None = None
    ) -> ContainerRecord:
        """Docker's stop: the stop signal, SIGKILL after ``timeout`` s; NotModified if stopped."""
        rec = self.get(ref)
        async with self.lock(rec):
            if not rec.state.running:
                raise NotModified("container already stopped")
            rec.state.manually_stopped = True
            self.store.save(rec)
            await self._stop_locked(rec, timeout, signal)
        self.publish(rec, "stop")
        return rec

    async def _stop_locked(
        self, rec: ContainerRecord, timeout: int | None, signal: str | None = None
    ) -> None:
        sig = self._signal(signal) if signal else self._stop_signal(rec)
        if timeout is None:
            timeout = rec.config.stop_timeout
        if timeout is None:
            timeout = DEFAULT_STOP_TIMEOUT
        if rec.state.paused:
            with contextlib.suppress(OciRuntimeError):
                await rec.runtime.resume(rec.id)
        self.publish(rec, "kill", {"signal": str(sig)})
        wait = float(timeout) if timeout >= 0 else 365 * 86400.0
        try:
            await stop_container(rec.runtime, rec.layout, rec.id, signal=sig, timeout=wait,
                                 watcher=self.watcher)  # fmt: skip
        except MonitorError as exc:
            log.warning("stopping %s: %s", rec.id, exc)
        await self._settle(rec)

    @staticmethod
    def _signal(text: str) -> int:
        try:
            return parse_stop_signal(text)
        except InvalidCreateRequest:
            raise BadRequest(f"Invalid signal: {text}") from None

    async def kill(self, ref: str, signal: str = "KILL") -> ContainerRecord:
        """Send a signal to the container's init process (409 if it is not running)."""
        rec = self.get(ref)
        sig = self._signal(signal or "KILL")
        async with self.lock(rec):
            if not rec.state.running:
                raise Conflict(f"Cannot kill container: {ref}: Container {rec.id} is not running")
            try:
                await rec.runtime.kill(rec.id, sig)
            except OciRuntimeError as exc:
                raise Conflict(f"Cannot kill container: {ref}: {exc.message}") from None
            self.publish(rec, "kill", {"signal": str(sig)})
            if sig == signal_module.SIGKILL:
                if rec.state.paused:
                    with contextlib.suppress(OciRuntimeError):
                        await rec.runtime.resume(rec.id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._settle(rec), _KILL_SETTLE)
        return rec

    async def restart(self, ref: str, timeout: int | None = None) -> ContainerRecord:
        """Stop (if running) and start again."""
        rec = self.get(ref)
        async with self.lock(rec):
            if rec.state.running:
                await self._stop_locked(rec, timeout)
                self.publish(rec, "stop")
            await self._settle(rec)
            await self._start_locked(rec)
        self.publish(rec, "restart")
        return rec

    async def pause(self, ref: str) -> ContainerRecord:
        """Freeze every process of a running container."""
        rec = self.get(ref)
        async with self.lock(rec):
            if not rec.state.running:
                raise Conflict(f"Container {rec.id} is not running")
            if rec.state.paused:
                raise Conflict(f"Container {rec.id} is already paused")
            await rec.runtime.pause(rec.id)
            rec.state.paused = True
            self.store.save(rec)
        self.publish(rec, "pause")
        return rec

    async def unpause(self, ref: str) -> ContainerRecord:
        """Thaw a paused container."""
        rec = self.get(ref)
        async with self.lock(rec):
            if not rec.state.paused:
                raise Conflict(f"Container {rec.id} is not paused")
            await rec.runtime.resume(rec.id)
            rec.state.paused = False
            self.store.save(rec)
        self.publish(rec, "unpause")
        return rec

    async def rename(self, ref: str, new_name: str) -> ContainerRecord:
        """Give a container a new name (Docker's checks and conflict message)."""
        rec = self.get(ref)
        try:
            name = check_container_name(new_name)
        except InvalidCreateRequest as exc:
            raise BadRequest(str(exc)) from None
        if not name:
            raise BadRequest("Neither old nor new names may be empty")
        if name == rec.name:
            raise Conflict("Renaming a container with the same name as its current name")
        async with self.lock(rec):
            old = rec.name
            self.store.rename(rec, name)
        self.publish(rec, "rename", {"oldName": f"/{old}"})
        return rec

    # -- wait, remove, prune -------------------------------------------------------------

    async def wait(self, ref: str, condition: str = "not-running") -> int:
        """The exit code once ``condition`` (not-running, next-exit, removed) holds."""
        rec = self.get(ref)
        loop = asyncio.get_running_loop()
        if condition == "removed":
            future: asyncio.Future[int] = loop.create_future()
            self._removed.setdefault(rec.id, []).append(future)
            return await future
        if condition == "not-running" and not rec.state.running:
            return rec.state.exit_code
        future = loop.create_future()
        self._next_exit.setdefault(rec.id, []).append(future)
        return await future

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a container and everything it has on disk (running ones only with force)."""
        rec = self.get(ref)
        async with self.lock(rec):
            if not self.store.contains(rec.id):
                raise NotFound(f"No such container: {ref}")
            if rec.state.removal_in_progress and not force:
                raise Conflict(f"removal of container {rec.id} is already in progress")
            if rec.state.running:
                if not force:
                    what = (
                        "paused and running: unpause and then stop"
                        if rec.state.paused
                        else ("running: stop")
                    )
                    raise Conflict(
                        f'cannot remove container "/{rec.name}": container is {what} the '
                        "container before removing or force remove"
                    )
                await self._stop_locked(rec, 0, "KILL")
            await self._settle(rec)
            rec.state.removal_in_progress = True
            self.store.save(rec)
            await self._delete(rec)
        self.publish(rec, "destroy")
        for future in self._removed.pop(rec.id, []):
            if not future.done():
                future.set_result(rec.state.exit_code)
        for future in self._next_exit.pop(rec.id, []):
            if not future.done():
                future.set_exception(NotFound(f"No such container: {rec.id}"))
        for callback in self._remove_listeners:
            self._call(callback, rec, volumes)

    async def _delete(self, rec: ContainerRecord) -> None:
        task = self._runs.pop(rec.id, None)
        if task is not None and not task.done():
            task.cancel()
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        await asyncio.to_thread(self._remove_files, rec)
        self.store.delete(rec)
        self._locks.pop(rec.id, None)

    async def prune(
        self, keep: Callable[[ContainerRecord], bool]
    ) -> tuple[builtins.list[str], int]:
        """Remove every stopped container ``keep`` does not keep; ids and bytes freed."""
        removed: builtins.list[str] = []
        freed = 0
        for rec in self.list():
            if rec.state.running or keep(rec):
                continue
            size = await asyncio.to_thread(self.size_rw, rec)
            try:
                await self.remove(rec.id)
            except (Conflict, NotFound):
                continue
            removed.append(rec.id)
            freed += size
        return removed, freed

    # -- file system ---------------------------------------------------------------------

    def size_rw(self, rec: ContainerRecord) -> int:
        """Bytes in the container's writable layer (blocking: walks the upper directory)."""
        base = self.rootfs.snapshotter.root / "containers" / rec.id
        upper = base / "upper" if (base / "upper").is_dir() else base / "rootfs"
        return tree_size(upper)

    @contextlib.asynccontextmanager
    async def mounted_rootfs(self, ref: str) -> AsyncIterator[Path]:
        """The container's root filesystem, mounted for the duration of the block."""
        rec = self.get(ref)
        root = await asyncio.to_thread(self.rootfs.mount, rec.chain_id, rec.id)
        try:
            yield root
        finally:
            await asyncio.to_thread(self.rootfs.release_mount, rec.id)

    def close(self) -> None:
        """Stop watching exits (the containers themselves keep running)."""
        for task in list(self._runs.values()) + list(self._background):
            task.cancel()
        self.watcher.close()


def tree_size(path: Path) -> int:
    """Apparent size of the files under ``path`` (links not followed, errors skipped)."""
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(dirpath, name)).st_size
    return total
