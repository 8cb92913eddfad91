"""The container service: create, start, stop, remove... containers, and find them again.

One :class:`ContainerService` per daemon, built by the composition root
(:mod:`declarun.daemon.wiring`) over the image service and handed networking with
:meth:`ContainerService.use_networking`. It owns the container records
(persisted in the metadata database's ``containers`` table, one transaction per change),
the daemon's single :class:`~declarun.daemon.containers.runtime.exitwatch.ExitWatcher`, and the
conmon monitors it starts.

Interface for other daemon parts (attach, exec, health, restart policies, volumes,
archive) -- these names are stable::

    service: ContainerService
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
    service.add_start_failure_listener(cb)        # cb(record, error) after a failed start
                                                  # (state persisted; an AutoRemove
                                                  # container is removed after the call)
    service.add_stop_listener(cb)                 # cb(record) after a user stop or kill
                                                  # (manually_stopped set; restart policy)
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
        ...                                       # block (running or not; export/commit)
    async with service.mounted_view(ref) as root:     # the same with volumes and binds in
        ...                                       # place, as the container sees it (cp)
    service.wait_exit(ref) -> ExitStatus          # await the current run's end

The parts live in their own modules: the listeners in :mod:`listeners`, following and
recording exits in :mod:`exit_recorder`, state transitions on
:class:`~declarun.daemon.containers.lifecycle.record.ContainerState`, signals and stop waits in
:mod:`stopping`, removal in :mod:`removal`, the per-container locks in :mod:`locks`. The
helpers get the parts they share with the service (store, locks, exit recorder, listeners,
its ``publish``), never the service itself, so none of them imports this module, which
holds the operations and their locking.
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.daemon import failpoints
from declarun.daemon.containers.config.hostconfig import parse_host_config
from declarun.daemon.containers.config.request import check_container_name
from declarun.daemon.containers.config.update import updated_request
from declarun.daemon.containers.lifecycle.etcfiles import write_etc_files
from declarun.daemon.containers.lifecycle.exit_recorder import ExitRecorder
from declarun.daemon.containers.lifecycle.launch import (
    MountResolver,
    StartBroken,
    StartFailed,
    launch,
    volume_mounts,
)
from declarun.daemon.containers.lifecycle.listeners import (
    ExitListener,
    Listeners,
    PrestartListener,
    RemoveListener,
    StartFailureListener,
    StartListener,
    StopListener,
)
from declarun.daemon.containers.lifecycle.locks import ContainerLocks
from declarun.daemon.containers.lifecycle.names import generate_name, new_container_id
from declarun.daemon.containers.lifecycle.networking import ContainerNetworking
from declarun.daemon.containers.lifecycle.new_record import ImageSource, new_record
from declarun.daemon.containers.lifecycle.record import ContainerRecord, effective_config
from declarun.daemon.containers.lifecycle.removal import Removal, remove_files
from declarun.daemon.containers.lifecycle.stopping import RunControl
from declarun.daemon.containers.lifecycle.store import RecordStore, name_conflict
from declarun.daemon.containers.rootfs.changes import Change, container_changes
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.containers.rootfs.view import ViewMount, mounts_view
from declarun.daemon.containers.runtime.bundle import cgroup_resources
from declarun.daemon.containers.runtime.exitwatch import ExitStatus, ExitWatcher
from declarun.daemon.containers.runtime.monitor import start_container
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.events import EventBus
from declarun.errdefs import Conflict, InvalidArgument, NotFound, NotModified, SystemFailure

__all__ = [
    "EVENT_LABEL_LIMIT",
    "ContainerCounts",
    "ContainerService",
    "ExitListener",
    "StartListener",
]

#: The longest label value a container event carries as an attribute.
EVENT_LABEL_LIMIT = 256


def _link_alias(spec: str) -> str:
    name, _, alias = spec.partition(":")
    return alias.rsplit("/", 1)[-1] if alias else name.strip("/")


@dataclass(frozen=True)
class ContainerCounts:
    """Containers by state, as ``/info`` reports them."""

    running: int = 0
    paused: int = 0
    stopped: int = 0

    @property
    def total(self) -> int:
        """All containers, whatever their state."""
        return self.running + self.paused + self.stopped


class ContainerService:
    """Every container of one daemon (use from the daemon's event loop)."""

    def __init__(
        self,
        store: RecordStore,
        rootfs: RootfsManager,
        events: EventBus,
        exit_dir: Path,
        *,
        images: ImageSource,
        default_runtime: str,
    ) -> None:
        self.store = store
        self.rootfs = rootfs
        self.events = events
        #: The images containers are created from.
        self.images = images
        #: The OCI runtime of a container whose request names none.
        self.default_runtime = default_runtime
        self.watcher = ExitWatcher(exit_dir)
        self.listeners = Listeners()
        self.exits = ExitRecorder(store, rootfs, self.watcher, self.listeners,
                                  self.publish, self._auto_remove)  # fmt: skip
        self.locks = ContainerLocks()
        self.control = RunControl(store, self.locks, self.exits, self.listeners, self.publish)
        self.removal = Removal(store, rootfs, self.locks, self.exits, self.listeners,
                               self.publish, self.control)  # fmt: skip
        self._names_in_creation: dict[str, str] = {}  # name -> id, between check and store
        self._resolver: MountResolver | None = None
        #: Networking (namespaces, CNI, DNS, ports); see :meth:`use_networking`.
        self.networking: ContainerNetworking | None = None
        #: ``wait?condition=not-running`` clients of running or restarting containers.
        self._not_running: dict[str, builtins.list[asyncio.Future[None]]] = {}
        store.save_listeners.append(self._wake_not_running)

    def use_networking(self, networking: ContainerNetworking) -> None:
        """Give containers their networks through ``networking`` from now on (set once at
        start-up, before the containers are restored)."""
        self.networking = networking
        self.exits.networking = networking

    # -- the interface other areas build on ------------------------------------------

    def get(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names (id, name, id prefix); NotFound otherwise."""
        return self.store.lookup(ref)

    def list(self) -> list[ContainerRecord]:
        """Every container, oldest first."""
        return self.store.all()

    def add_exit_listener(self, callback: ExitListener) -> None:
        """Call ``callback(record, status)`` after each exit has been recorded."""
        self.listeners.exit.append(callback)

    def add_start_listener(self, callback: StartListener) -> None:
        """Call ``callback(record)`` after each successful start."""
        self.listeners.start.append(callback)

    def add_prestart_listener(self, callback: PrestartListener) -> None:
        """Await ``callback(record)`` between conmon's create and the user process' start."""
        self.listeners.prestart.append(callback)

    def add_start_failure_listener(self, callback: StartFailureListener) -> None:
        """Call ``callback(record, error)`` after a start failed (before AutoRemove)."""
        self.listeners.start_failure.append(callback)

    def add_stop_listener(self, callback: StopListener) -> None:
        """Call ``callback(record)`` after the user stopped or killed a container."""
        self.listeners.stop.append(callback)

    def add_remove_listener(self, callback: RemoveListener) -> None:
        """Call ``callback(record, remove_volumes)`` after a container was removed."""
        self.listeners.remove.append(callback)

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
        """Publish a container event with Docker's attributes (labels, image, name).

        A label whose value is longer than :data:`EVENT_LABEL_LIMIT` characters is left out
        (dockerd copies every label): one such label -- a recorded configuration of a
        kilobyte -- would make every line of ``docker events`` unreadable. Inspect shows it.
        """
        attrs = {k: v for k, v in record.config.labels.items() if len(v) <= EVENT_LABEL_LIMIT}
        attrs.update({"image": record.config.image, "name": record.name})
        attrs.update(attributes or {})
        self.events.publish("container", action, record.id, attrs)

    def counts(self) -> ContainerCounts:
        """Containers by state, for ``/info`` (restarting ones count as stopped, as in
        dockerd)."""
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
        return self.locks.lock(rec)

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
            await self.exits.settle(rec)
            error = await self._try_start(rec)
        if error is not None:
            await self._after_failed_start(rec)
            raise error
        return rec

    async def _try_start(self, rec: ContainerRecord) -> Exception | None:
        """Start under the lock; a failure is recorded, announced and returned."""
        try:
            await self._start_locked(rec)
        except Exception as exc:  # any failure: announced here, raised by the caller
            self.listeners.start_failed(rec, exc)
            return exc
        return None

    async def _after_failed_start(self, rec: ContainerRecord) -> None:
        # dockerd removes an AutoRemove container whose start failed (volumes too); `docker
        # run --rm` waits for that removal before it reports the error.
        if rec.host_config.auto_remove and not rec.state.running and self.store.contains(rec.id):
            with contextlib.suppress(NotFound):
                await self.remove(rec.id, force=True, volumes=True)

    async def _start_locked(self, rec: ContainerRecord) -> None:
        try:
            created = await launch(rec, self.rootfs, self._resolver, self.networking)
        except StartFailed as exc:
            rec.state.set_start_failed(str(exc), exc.exit_code)
            self.store.save(rec)
            raise
        try:
            failpoints.hit("runc-created")
            await self.listeners.prestart_all(rec)
            started_at = time.time_ns()
            await start_container(rec.runtime, rec.id)
        except BaseException as exc:
            await self._abort_start(rec)
            if isinstance(exc, OciRuntimeError):
                rec.state.set_start_failed(exc.message, 128)
                self.store.save(rec)
                raise StartBroken(exc.message, 128) from None
            raise
        rec.state.set_running(created.pid, created.conmon_pid, started_at)
        self.store.save(rec)
        self.publish(rec, "start")
        self.exits.watch(rec)
        self.listeners.started(rec)

    async def _abort_start(self, rec: ContainerRecord) -> None:
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.delete(rec.id, force=True)
        rec.rootfs_path = None
        await asyncio.to_thread(self.rootfs.release_mount, rec.id)
        if self.networking is not None:
            await self.networking.teardown(rec)

    def resume_watch(self, rec: ContainerRecord) -> None:
        """Watch a container found running after a daemon restart."""
        self.exits.watch(rec)

    async def record_recovered_exit(self, rec: ContainerRecord, status: ExitStatus) -> None:
        """Record an exit that happened while no daemon was watching."""
        await self.exits.record(rec, status)

    async def _auto_remove(self, rec: ContainerRecord) -> None:
        with contextlib.suppress(NotFound):
            await self.remove(rec.id, force=True)

    async def wait_exit(self, ref: str) -> ExitStatus | None:
        """Wait until the current run of ``ref`` has ended and been recorded."""
        return await self.exits.wait_exit(self.get(ref))

    # -- create ----------------------------------------------------------------------

    async def create(self, body: Any, *, name: str) -> ContainerRecord:
        """Create a container: record, writable layer, /etc files. Nothing runs yet."""
        cid = new_container_id()
        images = self.images
        rec, image = new_record(
            body, name=name, cid=cid, images=images, store=self.store,
            default_runtime=self.default_runtime,
        )  # fmt: skip
        # A name is claimed before the first await: concurrent creates (50 `docker run` at
        # once) must not both pass the check and race to the store.
        if rec.name:
            owner = self.store.name_owner(rec.name)
            if owner is not None:
                raise name_conflict(rec.name, owner)
            if rec.name in self._names_in_creation:
                raise name_conflict(rec.name, self._names_in_creation[rec.name])
        else:
            rec.name = generate_name(
                lambda n: self.store.name_owner(n) is not None or n in self._names_in_creation
            )
        if self.networking is not None:
            self.networking.validate(rec)
        self._names_in_creation[rec.name] = rec.id
        try:
            await asyncio.to_thread(images.ensure_snapshot, image)
            await asyncio.to_thread(self._prepare_files, rec)
            self.store.add(rec)
            failpoints.hit("container-record-written")
        except BaseException:
            await asyncio.to_thread(remove_files, self.rootfs, rec)
            raise
        finally:
            self._names_in_creation.pop(rec.name, None)
        self.publish(rec, "create")
        return rec

    def _prepare_files(self, rec: ContainerRecord) -> None:
        rec.bundle_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.rootfs.prepare(rec.chain_id, rec.id)
        write_etc_files(rec.bundle_dir, rec.config.hostname, rec.host_config)

    # -- stop, kill, restart, pause ------------------------------------------------------

    async def stop(
        self, ref: str, timeout: int | None = None, signal: str | None = None
    ) -> ContainerRecord:
        """Docker's stop: the stop signal, SIGKILL after ``timeout`` s; NotModified if stopped
        (see :class:`~declarun.daemon.containers.lifecycle.stopping.RunControl`)."""
        return await self.control.stop(ref, timeout, signal)

    async def kill(self, ref: str, signal: str = "KILL") -> ContainerRecord:
        """Send a signal to the container's init process (409 if it is not running)."""
        return await self.control.kill(ref, signal)

    async def pause(self, ref: str) -> ContainerRecord:
        """Freeze every process of a running container."""
        return await self.control.pause(ref)

    async def unpause(self, ref: str) -> ContainerRecord:
        """Thaw a paused container."""
        return await self.control.unpause(ref)

    async def restart(self, ref: str, timeout: int | None = None) -> ContainerRecord:
        """Stop (if running) and start again."""
        rec = self.get(ref)
        async with self.lock(rec):
            if rec.state.running:
                await self.control.stop_locked(rec, timeout)
                self.publish(rec, "stop")
            await self.exits.settle(rec)
            error = await self._try_start(rec)
        if error is not None:
            await self._after_failed_start(rec)
            raise error
        self.publish(rec, "restart")
        return rec

    async def rename(self, ref: str, new_name: str) -> ContainerRecord:
        """Give a container a new name (Docker's checks and conflict message)."""
        rec = self.get(ref)
        name = check_container_name(new_name)
        if not name:
            raise InvalidArgument("Neither old nor new names may be empty")
        if name == rec.name:
            raise Conflict("Renaming a container with the same name as its current name")
        async with self.lock(rec):
            old = rec.name
            self.store.rename(rec, name)
        self.publish(rec, "rename", {"oldName": f"/{old}"})
        return rec

    async def update(self, ref: str, body: Any) -> ContainerRecord:
        """``docker update``: new resource limits and restart policy, stored, and applied to
        the cgroup at once when the container runs (dockerd's checks and messages)."""
        rec = self.get(ref)
        async with self.lock(rec):
            request = updated_request(rec.id, rec.request, body)
            parse_host_config(request.get("HostConfig") or {}, path_exists=lambda _path: True)
            config, host_config = effective_config(
                rec.id, rec.name, request, rec.image_config, rec.inherited_mounts
            )
            if rec.state.running:
                try:
                    await rec.runtime.update(rec.id, cgroup_resources(host_config))
                except OciRuntimeError as exc:
                    raise SystemFailure(
                        f"Cannot update container {rec.id}: {exc.message}"
                    ) from None
            rec.request, rec.config, rec.host_config = request, config, host_config
            self.store.save(rec)
        self.publish(rec, "update")
        return rec

    async def remove_link(self, ref: str, alias: str) -> ContainerRecord:
        """Drop the legacy link ``alias`` of ``ref`` (``docker rm --link``); NotFound as
        dockerd words it when there is none."""
        rec = self.get(ref)
        async with self.lock(rec):
            host = dict(rec.request.get("HostConfig") or {})
            links = [str(link) for link in host.get("Links") or []]
            kept = [link for link in links if _link_alias(link) != alias]
            if rec.host_config.network_mode != "bridge" or len(kept) == len(links):
                raise NotFound(f"No such container: {ref}/{alias}")
            host["Links"] = kept or None
            request = {**rec.request, "HostConfig": host}
            rec.config, rec.host_config = effective_config(
                rec.id, rec.name, request, rec.image_config, rec.inherited_mounts
            )
            rec.request = request
            self.store.save(rec)
        return rec

    # -- wait, remove, prune -------------------------------------------------------------

    async def wait(self, ref: str, condition: str = "not-running") -> int:
        """The exit code once ``condition`` (not-running, next-exit, removed) holds."""
        rec = self.get(ref)
        if condition == "removed":
            return await self.removal.removed(rec)
        if condition == "not-running":
            # As dockerd: a container in a restart back-off is not "not running" yet; the
            # wait answers its next exit (or a stop during the back-off).
            if rec.state.running or rec.state.restarting:
                await self._next_settling(rec)
            return rec.state.exit_code
        return await self.exits.next_exit(rec)

    async def _next_settling(self, rec: ContainerRecord) -> None:
        """Until the next exit of ``rec`` (its restart policy decided by then) or the next
        change that leaves it neither running nor restarting; NotFound once removed."""
        settled: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._not_running.setdefault(rec.id, []).append(settled)
        exited = self.exits.next_exit(rec)
        try:
            either: set[asyncio.Future[Any]] = {settled, exited}
            await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
            if exited.done():
                exited.result()
        finally:
            settled.cancel()
            exited.cancel()
            waiting = self._not_running.get(rec.id, [])
            if settled in waiting:
                waiting.remove(settled)
            if not waiting:
                self._not_running.pop(rec.id, None)

    def _wake_not_running(self, rec: ContainerRecord) -> None:
        if rec.state.running or rec.state.restarting:
            return
        for future in self._not_running.pop(rec.id, []):
            if not future.done():
                future.set_result(None)

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove a container and everything it has on disk (running ones only with force)."""
        await self.removal.remove(ref, force=force, volumes=volumes)

    async def prune(
        self, keep: Callable[[ContainerRecord], bool]
    ) -> tuple[builtins.list[str], int]:
        """Remove every stopped container ``keep`` does not keep; ids and bytes freed."""
        return await self.removal.prune(keep)

    # -- file system ---------------------------------------------------------------------

    def size_rw(self, rec: ContainerRecord) -> int:
        """Bytes in the container's writable layer (blocking: walks the upper directory)."""
        return self.removal.size_rw(rec)

    def image_size(self, rec: ContainerRecord) -> int:
        """Bytes of the container's image (0 once the image is gone)."""
        return self.images.size_of(rec.image_id)

    def layer_dir(self, rec: ContainerRecord) -> Path:
        """Where the container's writable layer lives (``GraphDriver`` of inspect)."""
        return self.rootfs.snapshotter.root / "containers" / rec.id

    async def changes(self, ref: str) -> builtins.list[Change]:
        """What the container changed in its root file system (``docker diff``)."""
        rec = self.get(ref)
        return await container_changes(self.rootfs, rec.id, rec.chain_id, rec.bundle_dir)

    @contextlib.asynccontextmanager
    async def mounted_rootfs(self, ref: str) -> AsyncIterator[Path]:
        """The container's root filesystem, mounted for the duration of the block."""
        rec = self.get(ref)
        root = await asyncio.to_thread(self.rootfs.mount, rec.chain_id, rec.id)
        try:
            yield root
        finally:
            await asyncio.to_thread(self.rootfs.release_mount, rec.id)

    @contextlib.asynccontextmanager
    async def mounted_view(self, ref: str) -> AsyncIterator[Path]:
        """The container's files as its processes see them, volumes and bind mounts
        included, for the block (``docker cp``): a running container's own view through
        ``/proc/<pid>/root``, else the root mounted with every mount bound in place
        (:mod:`~declarun.daemon.containers.rootfs.view`; volumes are made on first use)."""
        rec = self.get(ref)
        if rec.state.running and rec.state.pid:
            try:
                fd = os.open(f"/proc/{rec.state.pid}/root", os.O_RDONLY | os.O_DIRECTORY)
            except OSError:
                pass  # it ended meanwhile: its files are the stopped container's
            else:
                try:
                    yield Path(f"/proc/self/fd/{fd}")
                finally:
                    os.close(fd)
                return
        async with self.mounted_rootfs(rec.id) as root:
            wanted = await asyncio.to_thread(self._view_mounts, rec)
            view = mounts_view(root, rec.bundle_dir, wanted)
            path = await asyncio.to_thread(view.__enter__)
            try:
                yield path
            finally:
                await asyncio.to_thread(view.__exit__, None, None, None)

    def _view_mounts(self, rec: ContainerRecord) -> builtins.list[ViewMount]:
        out = [ViewMount(m.target, Path(m.source), m.read_only)
               for m in rec.host_config.mounts if m.type == "bind" and os.path.exists(m.source)]  # fmt: skip
        if self._resolver is not None:
            out += [ViewMount(spec.target, Path(self._resolver(spec)), spec.read_only)
                    for spec in volume_mounts(rec)]  # fmt: skip
        return out

    def close(self) -> None:
        """Stop watching exits (the containers themselves keep running)."""
        for task in [*self.exits.tasks(), *self.listeners.tasks()]:
            task.cancel()
        self.watcher.close()
