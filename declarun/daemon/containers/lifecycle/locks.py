"""One lock per container, serialising its state changes (start, stop, remove, ...).

The service and its helpers (:mod:`stopping`, :mod:`removal`) share one
:class:`ContainerLocks`; a removed container's lock is forgotten with it.
"""

from __future__ import annotations

import asyncio

from declarun.daemon.containers.lifecycle.record import ContainerRecord

__all__ = ["ContainerLocks"]


class ContainerLocks:
    """The locks of every container (use from the daemon's event loop)."""

    def __init__(self) -> None:
        self._locks: dict[str, asyncio.Lock] = {}

    def lock(self, rec: ContainerRecord) -> asyncio.Lock:
        """The lock serialising state changes of ``rec``."""
        return self._locks.setdefault(rec.id, asyncio.Lock())

    def forget(self, rec: ContainerRecord) -> None:
        """Drop the lock of a removed container."""
        self._locks.pop(rec.id, None)
