"""Blocking work from the build's coroutines, never abandoned half-way.

``asyncio.to_thread`` lets a cancelled coroutine move on while its thread still runs; a
build cancelled by its client would then clean up (unmount, delete) a directory the thread
is still writing into. :func:`blocking` waits for the thread to finish before the
cancellation goes on, so clean-up always comes after the work it undoes. :func:`pumping` does the same for a
thread that reads a request body as it arrives.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import functools
from collections.abc import AsyncIterator, Callable
from typing import ParamSpec, TypeVar

__all__ = ["ChunkPump", "blocking", "pumping"]

P = ParamSpec("P")
T = TypeVar("T")


async def blocking(function: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``function`` in a worker thread; if cancelled, wait for it, then re-raise."""
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, functools.partial(function, *args, **kwargs))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        with contextlib.suppress(BaseException):
            await future
        raise


class ChunkPump:
    """The chunks of an async iterator (a request body), for code in a worker thread.

    Each call waits for the next chunk on the event loop (``b""`` at the end). After
    :meth:`abort` the pending wait is cancelled and every call raises CancelledError.
    """

    def __init__(self, source: AsyncIterator[bytes], loop: asyncio.AbstractEventLoop) -> None:
        self._source = source
        self._loop = loop
        self._current: concurrent.futures.Future[bytes] | None = None
        self._aborted = False

    def __call__(self) -> bytes:
        if self._aborted:
            raise concurrent.futures.CancelledError()
        self._current = asyncio.run_coroutine_threadsafe(anext(self._source, b""), self._loop)
        return self._current.result()

    def abort(self) -> None:
        """Stop pumping (from the event loop)."""
        self._aborted = True
        if self._current is not None:
            self._current.cancel()


async def pumping(source: AsyncIterator[bytes], function: Callable[[Callable[[], bytes]], T]) -> T:
    """Run ``function(next_chunk)`` in a worker thread over ``source``'s chunks; if
    cancelled, stop the pump, wait for the thread, then re-raise."""
    loop = asyncio.get_running_loop()
    pump = ChunkPump(source, loop)
    future = loop.run_in_executor(None, function, pump)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        pump.abort()
        with contextlib.suppress(BaseException):
            await future
        raise
