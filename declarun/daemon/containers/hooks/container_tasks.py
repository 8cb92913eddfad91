"""One asyncio task per container, by its id: what the health checker and the restart
policy each keep (a container's checker, a container's pending restart).

Starting a container's task replaces nothing by itself: the owner cancels the old one first
when it wants to. A task that ends removes itself with :meth:`ContainerTasks.forget_current`
(in its ``finally``), and only itself: a newer task of the same container stays.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

__all__ = ["ContainerTasks"]


class ContainerTasks:
    """The running tasks of one hook, at most one a container."""

    def __init__(self) -> None:
        self._tasks: dict[str, asyncio.Task[None]] = {}

    def __contains__(self, container_id: object) -> bool:
        return container_id in self._tasks

    def start(self, container_id: str, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` as the task of ``container_id`` (named ``name`` for debugging)."""
        self._tasks[container_id] = asyncio.get_running_loop().create_task(work, name=name)

    def cancel(self, container_id: str) -> None:
        """Forget the container's task and cancel it (unless it is the one calling)."""
        task = self._tasks.pop(container_id, None)
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    def forget_current(self, container_id: str) -> None:
        """Forget the container's task if it is the one calling (it is ending)."""
        if self._tasks.get(container_id) is asyncio.current_task():
            del self._tasks[container_id]

    async def close(self) -> None:
        """Cancel every task and wait for them to end (daemon shutdown); each task reports
        its own errors."""
        tasks = list(self._tasks.values())
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
