"""Stopping, killing, pausing a run: :class:`RunControl`, the service's signal operations.

Docker's stop sends the container's ``StopSignal`` (SIGTERM by default), waits
``timeout`` seconds (the request's ``t``, else the container's ``StopTimeout``, else 10;
a negative value waits for ever) and then SIGKILLs every process. A paused container is
thawed first, or it could not act on the signal.

A stop or a kill is the user's: the state says so (``manually_stopped``) *before* the
signal is sent, so the exit it causes finds it and no restart policy brings the container
back; stop listeners are told (the restart policy cancels a pending restart). During a
restart back-off (``restarting``, not ``running``) there is no process to signal: stop and
kill just end the back-off, as dockerd's do.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal as signal_module

from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.request import parse_stop_signal
from declarun.daemon.containers.lifecycle.exit_recorder import ExitRecorder
from declarun.daemon.containers.lifecycle.listeners import Listeners, Publish
from declarun.daemon.containers.lifecycle.locks import ContainerLocks
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.containers.runtime.exitwatch import ExitWatcher
from declarun.daemon.containers.runtime.monitor import stop_container
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.containers.runtime.syncpipe import MonitorError
from declarun.errdefs import Conflict, InvalidArgument, NotModified

__all__ = [
    "DEFAULT_STOP_TIMEOUT",
    "RunControl",
    "parse_signal",
    "stop_run",
    "stop_signal",
    "stop_wait",
]

log = logging.getLogger("declarun.daemon.containers")

DEFAULT_STOP_TIMEOUT = 10
# How long a kill with SIGKILL waits for the exit to be recorded before answering.
_KILL_SETTLE = 10.0
# How long a kill that found no process waits for the exit being recorded meanwhile.
_DEAD_SETTLE = 2.0
# "Wait for ever" for a negative timeout, as a number asyncio accepts.
_FOREVER = 365 * 86400.0


def parse_signal(text: str) -> int:
    """A signal given by name or number (InvalidArgument ``Invalid signal: text`` otherwise)."""
    try:
        return parse_stop_signal(text)
    except InvalidCreateRequest:
        raise InvalidArgument(f"Invalid signal: {text}") from None


def stop_signal(rec: ContainerRecord) -> int:
    """The container's ``StopSignal`` (SIGTERM when unset or unreadable)."""
    try:
        return parse_stop_signal(rec.config.stop_signal or "SIGTERM")
    except InvalidCreateRequest:
        return int(signal_module.SIGTERM)


def stop_wait(rec: ContainerRecord, timeout: int | None) -> float:
    """Seconds to wait after the stop signal before SIGKILL."""
    if timeout is None:
        timeout = rec.config.stop_timeout
    if timeout is None:
        timeout = DEFAULT_STOP_TIMEOUT
    return float(timeout) if timeout >= 0 else _FOREVER


async def stop_run(rec: ContainerRecord, sig: int, wait: float, watcher: ExitWatcher) -> None:
    """Send ``sig``, SIGKILL after ``wait`` s; returns once the exit file exists."""
    if rec.state.paused:
        with contextlib.suppress(OciRuntimeError):
            await rec.runtime.resume(rec.id)
    try:
        await stop_container(rec.runtime, rec.layout, rec.id, signal=sig, timeout=wait,
                             watcher=watcher)  # fmt: skip
    except MonitorError as exc:
        log.warning("stopping %s: %s", rec.id, exc)


class RunControl:
    """``stop``, ``kill``, ``pause`` and ``unpause`` of the service's containers.

    Built by the service over the parts it shares with it: the records, the per-container
    locks, the exit recorder (whose watcher a stop waits on), the listeners and the
    service's event publisher.
    """

    def __init__(
        self,
        store: RecordStore,
        locks: ContainerLocks,
        exits: ExitRecorder,
        listeners: Listeners,
        publish: Publish,
    ) -> None:
        self.store = store
        self.locks = locks
        self.exits = exits
        self.listeners = listeners
        self.publish = publish

    async def stop(
        self, ref: str, timeout: int | None = None, signal: str | None = None
    ) -> ContainerRecord:
        """Docker's stop: the stop signal, SIGKILL after ``timeout`` s; NotModified if stopped.

        A container waiting out a restart back-off is "stopped" at once: the pending
        restart is cancelled.
        """
        rec = self.store.lookup(ref)
        async with self.locks.lock(rec):
            if not rec.state.running and not rec.state.restarting:
                raise NotModified("container already stopped")
            rec.state.set_stopped_by_user()
            self.store.save(rec)
            self.listeners.stopped_by_user(rec)
            if rec.state.running:
                await self.stop_locked(rec, timeout, signal)
        self.publish(rec, "stop")
        return rec

    async def stop_locked(
        self, rec: ContainerRecord, timeout: int | None, signal: str | None = None
    ) -> None:
        sig = parse_signal(signal) if signal else stop_signal(rec)
        self.publish(rec, "kill", {"signal": str(sig)})
        await stop_run(rec, sig, stop_wait(rec, timeout), self.exits.watcher)
        await self.exits.settle(rec)

    async def kill(self, ref: str, signal: str = "KILL") -> ContainerRecord:
        """Send a signal to the container's init process (409 if it is not running).

        Like dockerd, any kill counts as the user's stop: no restart policy brings the
        container back, and a pending restart (back-off) is cancelled without a signal.
        """
        rec = self.store.lookup(ref)
        sig = parse_signal(signal or "KILL")
        async with self.locks.lock(rec):
            if not rec.state.running and not rec.state.restarting:
                raise Conflict(f"Cannot kill container: {ref}: Container {rec.id} is not running")
            # Set before the signal: the exit it causes must find it.
            rec.state.set_stopped_by_user()
            self.store.save(rec)
            self.listeners.stopped_by_user(rec)
            if not rec.state.running:
                return rec
            try:
                await rec.runtime.kill(rec.id, sig)
            except OciRuntimeError as exc:
                # Its process may have just ended, its exit not yet recorded: as dockerd,
                # give that a moment before calling the kill a failure.
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.exits.settle(rec), _DEAD_SETTLE)
                if rec.state.status in ("running", "paused"):  # still: the kill failed
                    raise Conflict(f"Cannot kill container: {ref}: {exc.message}") from None
                return rec
            self.publish(rec, "kill", {"signal": str(sig)})
            if sig == signal_module.SIGKILL:
                if rec.state.paused:
                    with contextlib.suppress(OciRuntimeError):
                        await rec.runtime.resume(rec.id)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.exits.settle(rec), _KILL_SETTLE)
        return rec

    async def pause(self, ref: str) -> ContainerRecord:
        """Freeze every process of a running container."""
        rec = self.store.lookup(ref)
        async with self.locks.lock(rec):
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
        rec = self.store.lookup(ref)
        async with self.locks.lock(rec):
            if not rec.state.paused:
                raise Conflict(f"Container {rec.id} is not paused")
            await rec.runtime.resume(rec.id)
            rec.state.paused = False
            self.store.save(rec)
        self.publish(rec, "unpause")
        return rec
