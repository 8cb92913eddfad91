"""Ctrl-C during a change: stop starting new steps, finish the running ones, say which.

The first Ctrl-C (SIGINT) only *asks*: the walk starts nothing more, waits for the changes
already running (a replace stopped halfway would leave a ``-next`` container and no old one)
and names them, so nobody wonders why the prompt does not come back; the report then tells
the state reached. A second Ctrl-C stops waiting: ``KeyboardInterrupt`` is raised as usual and
the command exits 130 at once (``declarun.cli.output``), leaving the running changes
unfinished.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Callable, Iterator
from types import FrameType
from typing import TYPE_CHECKING

from declarun.reconcile.executor import Cancellation

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["interruptible"]


@contextlib.contextmanager
def interruptible(
    console: Callable[[], Console], on_request: Callable[[], None] | None = None
) -> Iterator[Cancellation]:
    """A :class:`Cancellation` that the first Ctrl-C requests (and ``on_request`` hears of,
    in the main thread); the second raises KeyboardInterrupt. Off the main thread (where no
    signal handler can be installed) Ctrl-C keeps its usual meaning. ``console`` makes the
    console the notice goes to, when there is one to print (rich is imported only then)."""

    def stopping(running: list[str]) -> None:
        from rich.text import Text

        if running:
            waited = ", ".join(running)
            console().print(
                Text(
                    f"Interrupted: no new change starts; waiting for the running ones to "
                    f"finish: {waited} (Ctrl-C again to stop waiting).",
                    style="bold yellow",
                )
            )
        else:
            console().print(Text("Interrupted: no change starts.", style="bold yellow"))

    cancellation = Cancellation(stopping)
    if threading.current_thread() is not threading.main_thread():
        yield cancellation
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        if cancellation.requested:
            raise KeyboardInterrupt
        cancellation.cancel()
        if on_request is not None:
            on_request()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield cancellation
    finally:
        signal.signal(signal.SIGINT, previous)
