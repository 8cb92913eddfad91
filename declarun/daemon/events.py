"""The daemon's event bus: what ``GET /events`` streams (``docker events``).

Any part of the daemon publishes an :class:`Event` (``bus.publish("container", "start",
cid, {"name": "web", "image": "busybox"})``), from the event loop or from a worker thread.
The bus keeps the most recent events in a bounded ring buffer, so that a subscriber asking
for ``since`` gets them replayed before the live ones, as dockerd does.

Ordering: an event is appended to the ring buffer and to every subscriber's queue under one
lock, so each subscriber sees events in the order they were published, whichever thread
published them; the subscriber's event loop is only woken (``call_soon_threadsafe`` when
published from another thread).
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType, TracebackType
from typing import Any

__all__ = ["DEFAULT_CAPACITY", "Event", "EventBus", "Subscription"]

DEFAULT_CAPACITY = 1024
# A subscriber that falls this far behind is dropped (its stream ends) rather than letting
# one stalled client grow the daemon's memory without bound.
DEFAULT_SUBSCRIBER_BACKLOG = 16384

# Object types whose events also carry the legacy top-level status/id/from fields.
_LEGACY_TYPES = frozenset({"container", "image"})


@dataclass(frozen=True)
class Event:
    """One Docker event (Swagger ``EventMessage``)."""

    type: str
    action: str
    actor_id: str = ""
    attributes: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    time_nano: int = field(default_factory=time.time_ns)
    scope: str = "local"

    def to_json(self) -> dict[str, Any]:
        """The JSON object dockerd sends, legacy fields included for containers and images."""
        doc: dict[str, Any] = {}
        if self.type in _LEGACY_TYPES:
            doc["status"] = self.action
            doc["id"] = self.actor_id
            if self.type == "container" and "image" in self.attributes:
                doc["from"] = self.attributes["image"]
        doc.update(
            {
                "Type": self.type,
                "Action": self.action,
                "Actor": {"ID": self.actor_id, "Attributes": dict(self.attributes)},
                "scope": self.scope,
                "time": self.time_nano // 1_000_000_000,
                "timeNano": self.time_nano,
            }
        )
        return doc


class Subscription:
    """One subscriber's view of the bus: a replayed ``backlog`` then live events via next().

    Use as a context manager (or call close()) so the bus forgets the subscriber.
    """

    def __init__(
        self,
        bus: EventBus,
        include: Callable[[Event], bool],
        backlog: list[Event],
        max_pending: int,
    ) -> None:
        self.backlog = backlog
        self._bus = bus
        self._include = include
        self._max_pending = max_pending
        self._pending: deque[Event] = deque()
        self._closed = False
        self._loop = asyncio.get_running_loop()
        self._thread = threading.get_ident()
        self._ready = asyncio.Event()

    async def next(self) -> Event | None:
        """The next live event, or None once the bus is closed or this subscriber dropped."""
        while True:
            with self._bus._lock:
                if self._pending:
                    return self._pending.popleft()
                if self._closed:
                    return None
                self._ready.clear()
            await self._ready.wait()

    def close(self) -> None:
        """Stop receiving events."""
        self._bus._unsubscribe(self)

    def __enter__(self) -> Subscription:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    # Called by the bus with its lock held.
    def _offer(self, event: Event) -> None:
        if self._closed or not self._include(event):
            return
        if len(self._pending) >= self._max_pending:
            self._closed = True
        else:
            self._pending.append(event)
        self._wake()

    def _end(self) -> None:
        self._closed = True
        self._wake()

    def _wake(self) -> None:
        if threading.get_ident() == self._thread:
            self._ready.set()
            return
        # A closed loop (RuntimeError) means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            self._loop.call_soon_threadsafe(self._ready.set)


class EventBus:
    """Publish events; subscribe with a filter; replay recent ones from a ring buffer."""

    def __init__(
        self,
        capacity: int = DEFAULT_CAPACITY,
        max_pending: int = DEFAULT_SUBSCRIBER_BACKLOG,
    ) -> None:
        self._lock = threading.Lock()
        self._buffer: deque[Event] = deque(maxlen=capacity)
        self._subscribers: list[Subscription] = []
        self._max_pending = max_pending
        self._closed = False

    def publish(
        self,
        type: str,
        action: str,
        actor_id: str = "",
        attributes: Mapping[str, str] | None = None,
    ) -> Event:
        """Record and deliver an event stamped now; safe to call from any thread."""
        with self._lock:
            # Stamped under the lock so buffer order and time order agree.
            event = Event(
                type=type,
                action=action,
                actor_id=actor_id,
                attributes=MappingProxyType(dict(attributes or {})),
                time_nano=time.time_ns(),
            )
            self._deliver_locked(event)
        return event

    def publish_event(self, event: Event) -> None:
        """Record and deliver an already built event (its timestamp is kept)."""
        with self._lock:
            self._deliver_locked(event)

    def subscribe(
        self,
        since_nano: int | None = None,
        until_nano: int | None = None,
        include: Callable[[Event], bool] = lambda _event: True,
    ) -> Subscription:
        """Subscribe from inside the event loop.

        ``backlog`` holds the buffered events with ``since_nano <= time <= until_nano``
        that pass ``include`` (none when neither bound is given); live events follow through next(). Replay and registration
        happen under one lock, so no event is lost or repeated between the two.
        """
        with self._lock:
            backlog: list[Event] = []
            # As dockerd: replay only when a time bound was given.
            if since_nano is not None or until_nano is not None:
                backlog = [
                    ev
                    for ev in self._buffer
                    if (since_nano is None or ev.time_nano >= since_nano)
                    and (until_nano is None or ev.time_nano <= until_nano)
                    and include(ev)
                ]
            sub = Subscription(self, include, backlog, self._max_pending)
            if self._closed:
                sub._end()
            else:
                self._subscribers.append(sub)
        return sub

    @property
    def subscriber_count(self) -> int:
        """How many subscribers are listening (``NEventsListener`` in ``/info``)."""
        with self._lock:
            return len(self._subscribers)

    def recent(self) -> list[Event]:
        """A copy of the ring buffer, oldest first."""
        with self._lock:
            return list(self._buffer)

    def close(self) -> None:
        """End every subscription (daemon shutdown); later subscriptions end at once."""
        with self._lock:
            self._closed = True
            subscribers, self._subscribers = self._subscribers, []
            for sub in subscribers:
                sub._end()

    def _deliver_locked(self, event: Event) -> None:
        self._buffer.append(event)
        for sub in self._subscribers:
            sub._offer(event)

    def _unsubscribe(self, sub: Subscription) -> None:
        with self._lock:
            sub._closed = True
            if sub in self._subscribers:
                self._subscribers.remove(sub)
