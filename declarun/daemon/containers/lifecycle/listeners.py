"""The callbacks other daemon parts hang on the container service, and how they are called.

Attach, exec, health checks, restart policies and volumes register here through the
service's ``add_*_listener`` methods (see :mod:`~declarun.daemon.containers.lifecycle.service`).
A listener may be a plain function or return an awaitable, which then runs as a background
task the service owns (cancelled at shutdown). A failing listener is logged and never stops
the others, nor the state change that triggered it -- except pre-start listeners, which are
awaited in turn and whose failure aborts the start (an attach that cannot connect).

:class:`Publish` is the service's own event publisher as its helpers (exits, stopping,
removal) receive it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.runtime.exitwatch import ExitStatus

__all__ = [
    "ExitListener",
    "Listeners",
    "PrestartListener",
    "Publish",
    "RemoveListener",
    "StartFailureListener",
    "StartListener",
    "StopListener",
]

log = logging.getLogger("declarun.daemon.containers")

ExitListener = Callable[[ContainerRecord, ExitStatus], object]
StartListener = Callable[[ContainerRecord], object]
PrestartListener = Callable[[ContainerRecord], Awaitable[None]]
StartFailureListener = Callable[[ContainerRecord, BaseException], object]
StopListener = Callable[[ContainerRecord], object]
RemoveListener = Callable[[ContainerRecord, bool], object]


class Publish(Protocol):
    """Publishes a container event with Docker's attributes (the service's ``publish``)."""

    def __call__(
        self, record: ContainerRecord, action: str, attributes: dict[str, str] | None = None, /
    ) -> None:
        """Publish ``action`` for ``record``; ``attributes`` add to name, image and labels."""
        ...


class Listeners:
    """Every registered listener, and the background tasks their awaitables became."""

    def __init__(self) -> None:
        self.exit: list[ExitListener] = []
        self.start: list[StartListener] = []
        self.prestart: list[PrestartListener] = []
        self.start_failure: list[StartFailureListener] = []
        self.stop: list[StopListener] = []
        self.remove: list[RemoveListener] = []
        self._background: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Awaitable[Any]) -> None:
        """Run ``coro`` as a task owned here (kept referenced until done)."""
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
            self.spawn(result)

    async def prestart_all(self, record: ContainerRecord) -> None:
        """Await every pre-start listener in turn (a failure propagates: abort the start)."""
        for listener in self.prestart:
            await listener(record)

    def started(self, record: ContainerRecord) -> None:
        """Tell the start listeners that ``record`` runs."""
        for callback in self.start:
            self._call(callback, record)

    def start_failed(self, record: ContainerRecord, error: BaseException) -> None:
        """Tell the start-failure listeners that a start of ``record`` failed with ``error``."""
        for callback in self.start_failure:
            self._call(callback, record, error)

    def stopped_by_user(self, record: ContainerRecord) -> None:
        """Tell the stop listeners that the user stopped or killed ``record``."""
        for callback in self.stop:
            self._call(callback, record)

    def exited(self, record: ContainerRecord, status: ExitStatus) -> None:
        """Tell the exit listeners that an exit of ``record`` was recorded."""
        for callback in self.exit:
            self._call(callback, record, status)

    def removed(self, record: ContainerRecord, remove_volumes: bool) -> None:
        """Tell the remove listeners that ``record`` is gone."""
        for callback in self.remove:
            self._call(callback, record, remove_volumes)

    def tasks(self) -> list[asyncio.Task[Any]]:
        """The background tasks still running (to cancel at shutdown)."""
        return list(self._background)
