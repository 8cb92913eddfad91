"""Blocking work from the build's coroutines, never abandoned half-way.

``asyncio.to_thread`` lets a cancelled coroutine move on while its thread still runs; a
build cancelled by its client would then clean up (unmount, delete) a directory the thread
is still writing into. :func:`blocking` waits for the thread to finish before the
cancellation goes on, so clean-up always comes after the work it undoes.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar

__all__ = ["blocking"]

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
