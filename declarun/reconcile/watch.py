"""``watch``: keep reconciling a stack until told to stop.

Two things wake the loop: the engine's event stream (a container of the stack died, stopped
or was removed out of band; filtered by the stack's label) and the stack file changing on
disk (polled once a second by modification time and content hash — no extra dependency).
On waking it does what ``apply`` does: observe, plan, act. Because that is level-triggered,
events only say *when* to look, never *what* to do: a missed or duplicated event costs
nothing, and the events caused by our own actions end in an empty plan.
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from declarun.engine.port import Engine
from declarun.engine.types import EngineEvent
from declarun.errdefs import ErrorKind
from declarun.errors import DeclarunError, StackError
from declarun.plan.identity import LABEL_STACK
from declarun.plan.model import Plan
from declarun.reconcile.apply import ApplyOptions, ApplyReport, PlanRun, apply_stack, make_plan
from declarun.reconcile.executor import Cancellation, NullProgress, ProgressSink
from declarun.stack.model import Stack

__all__ = ["Apply", "WatchHooks", "file_digest", "watch_stack"]

# Container actions that can leave the stack's state wrong; the rest (exec_*, health checks,
# attach, ...) happen all the time and change nothing a plan looks at.
_CONTAINER_ACTIONS = frozenset({"die", "destroy", "stop", "kill", "oom", "pause", "rename"})
_POLL = 1.0
_SETTLE = 0.5  # a burst of events (rm -f = kill, die, destroy) is handled as one
_RECONNECT = 2.0


@dataclass
class WatchHooks:
    """How a watch reports; every hook is optional."""

    on_plan: PlanRun | None = None
    on_report: Callable[[ApplyReport], None] | None = None
    on_error: Callable[[DeclarunError], None] | None = None
    on_wake: Callable[[str], None] | None = None


@contextlib.contextmanager
def _quiet_plan(_: Plan) -> Iterator[ProgressSink]:
    yield NullProgress()


def file_digest(path: Path) -> tuple[float, str]:
    """(modification time, sha256 of the bytes) of ``path``; ``(0, "")`` when unreadable."""
    try:
        mtime = path.stat().st_mtime
        return mtime, hashlib.sha256(path.read_bytes()).hexdigest()
    except OSError:
        return 0.0, ""


def _relevant(event: EngineEvent) -> bool:
    if event.type != "container":
        return event.action == "destroy"
    return event.action in _CONTAINER_ACTIONS


def _follow_events(
    engine: Engine, stack_name: str, wake: queue.Queue[str], stop: threading.Event
) -> None:
    """Feed relevant engine events into ``wake`` until ``stop``; reconnects when cut off."""
    while not stop.is_set():
        try:
            stream = engine.events(labels=[f"{LABEL_STACK}={stack_name}"])
            try:
                for event in stream:
                    if stop.is_set():
                        return
                    if _relevant(event):
                        wake.put(f"{event.attributes.get('name', '?')}: {event.action}")
            finally:
                stream.close()
        except ErrorKind:  # the daemon restarted or the socket closed: try again shortly
            pass
        stop.wait(_RECONNECT)


def _drain(wake: queue.Queue[str]) -> list[str]:
    found = []
    while True:
        try:
            found.append(wake.get_nowait())
        except queue.Empty:
            return found


#: How an engine is brought to match a stack: ``apply_stack``, or a cluster's own.
Apply = Callable[[Engine, Stack, ApplyOptions, PlanRun, Cancellation | None], ApplyReport]


def _apply_stack(
    engine: Engine,
    stack: Stack,
    options: ApplyOptions,
    on_plan: PlanRun,
    cancel: Cancellation | None,
) -> ApplyReport:
    return apply_stack(engine, stack, options, on_plan, cancel)


def _outside_changes(
    engine: Engine,
    stack: Stack,
    options: ApplyOptions,
    events: list[str],
    stop: threading.Event,
) -> str:
    """The events that came during an apply, when the world differs from the stack again.

    Most are the apply's own doing and already reflected; but something done meanwhile from
    outside (a container removed while the apply was finishing) must not be dropped with
    them. One quiet look tells the two apart."""
    if not events or stop.is_set():
        return ""
    if make_plan(engine, stack, options).plan.is_empty:
        return ""
    return "; ".join(events)


def watch_stack(
    engine: Engine,
    path: Path,
    load: Callable[[Path], Stack],
    options: ApplyOptions,
    stop: threading.Event,
    hooks: WatchHooks | None = None,
    cancel: Cancellation | None = None,
    *,
    apply: Apply | None = None,
    follow_events: bool = True,
    every: float | None = None,
) -> None:
    """Reconcile the stack in ``path`` now and whenever it drifts, until ``stop`` is set.

    ``load`` reads the stack file (with the command line's variables and profiles). A stack
    file that stops being valid is reported through ``on_error`` and the last good stack stays
    in force until the file is fixed; engine failures are reported and retried on the next
    wake-up. ``cancel`` (requested with ``stop``, say) stops an apply in progress gently:
    running changes finish, no other starts. ``apply`` replaces :func:`apply_stack` (a Swarm's
    apply); without ``follow_events`` no event stream is read, and ``every`` seconds the world
    is looked at anyway (level-triggered, so a look that finds nothing costs one plan).
    """
    hooks = hooks or WatchHooks()
    stack = load(path)
    seen = file_digest(path)
    wake: queue.Queue[str] = queue.Queue()
    run = apply or _apply_stack
    if follow_events:
        follower = threading.Thread(
            target=_follow_events,
            args=(engine, stack.name, wake, stop),
            name="declarun-watch-events",
            daemon=True,  # blocked in a socket read; it must not keep the process alive
        )
        follower.start()
    why = "start"
    last = time.monotonic()
    while not stop.is_set():
        carried = ""
        if why:
            if hooks.on_wake is not None:
                hooks.on_wake(why)
            last = time.monotonic()
            try:
                on_plan = hooks.on_plan if hooks.on_plan is not None else _quiet_plan
                report = run(engine, stack, options, on_plan, cancel)
                if hooks.on_report is not None:
                    hooks.on_report(report)
                carried = _outside_changes(engine, stack, options, _drain(wake), stop)
            except DeclarunError as exc:
                if hooks.on_error is not None:
                    hooks.on_error(exc)
        why = carried
        try:
            first = wake.get(timeout=_POLL)
        except queue.Empty:
            first = None
        if first is not None:
            stop.wait(_SETTLE)
            why = "; ".join([first, *_drain(wake)])
        elif every is not None and time.monotonic() - last >= every:
            why = "a periodic look"
        now = file_digest(path)
        if now != seen:
            if now[1] != seen[1]:
                try:
                    stack = load(path)
                    why = why or f"{path} changed"
                except StackError as exc:
                    if hooks.on_error is not None:
                        hooks.on_error(exc)
            seen = now
