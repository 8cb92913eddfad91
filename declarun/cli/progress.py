"""Live progress of an apply: a line per change, with a spinner while it runs.

On a terminal the lines redraw in place (rich ``Live``): running changes spin and show their
latest news (a pull's ``3/5 layers, 12.1/40.0 MB``, a wait's state); finished ones show a
mark and their duration. Elsewhere (a pipe, CI logs) each change prints one line when it
ends, so logs stay readable. Lines a change asks to keep (a build's ``Step N/M`` lines) are
printed as they come, above the live lines.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

from rich.console import Console, Group, RenderableType
from rich.live import Live
from rich.markup import escape
from rich.spinner import Spinner
from rich.text import Text

from declarun.reconcile.executor import Outcome

__all__ = ["RichProgress", "outcome_line"]

_MARKS = {
    "done": ("✓", "green"),
    "failed": ("✗", "red"),
    "skipped": ("-", "yellow"),
    "cancelled": ("-", "yellow"),
}


def outcome_line(outcome: Outcome) -> Text:
    """One finished change: mark, label, duration or the reason it did not happen."""
    mark, style = _MARKS[outcome.status]
    line = Text(f"{mark} ", style=style)
    line.append(outcome.label)
    if outcome.status == "done":
        line.append(f"  {outcome.duration:.1f}s", style="dim")
        if outcome.note:
            line.append(f"  {outcome.note}", style="dim")
    elif outcome.status == "failed":
        line.append("  failed (why: below)", style="red")  # told once, in the report
    elif outcome.status == "cancelled":
        line.append("  not started: interrupted", style="yellow")
    else:
        line.append(f"  skipped: {outcome.cause} failed", style="yellow")
    return line


class RichProgress:
    """A :class:`~declarun.reconcile.executor.ProgressSink` drawing on a rich console.

    Use as a context manager around the walk; safe to call from worker threads.
    """

    def __init__(self, console: Console) -> None:
        self.console = console
        self._lock = threading.Lock()
        self._running: dict[str, tuple[str, str, float]] = {}  # key -> (label, news, start)
        self._finished: list[Outcome] = []
        self._live: Live | None = None

    def __enter__(self) -> RichProgress:
        if self.console.is_terminal:
            self._live = Live(
                self._render(), console=self.console, refresh_per_second=8, transient=False
            )
            self._live.__enter__()
            self._live.update(self)  # rich re-renders us through __rich__ on every refresh
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._live is not None:
            self._live.update(self._render(), refresh=True)
            self._live.__exit__(exc_type, exc, tb)
            self._live = None

    def __rich__(self) -> RenderableType:
        return self._render()

    def _render(self) -> RenderableType:
        with self._lock:
            lines: list[RenderableType] = [outcome_line(o) for o in self._finished]
            now = time.monotonic()
            for label, news, start in self._running.values():
                text = f"{escape(label)}  [dim]{escape(news)} {now - start:.0f}s[/dim]"
                lines.append(Spinner("dots", text=Text.from_markup(text)))
        return Group(*lines)

    def started(self, key: str, label: str) -> None:
        """A change began: show it spinning."""
        with self._lock:
            self._running[key] = (label, "", time.monotonic())

    def update(self, key: str, text: str) -> None:
        """News from a running change."""
        with self._lock:
            if key in self._running:
                label, _, start = self._running[key]
                self._running[key] = (label, text, start)

    def log(self, key: str, line: str) -> None:
        """A line of a running change's output to keep: printed above the live lines."""
        with self._lock:
            label = self._running.get(key, (key, "", 0.0))[0]
        text = Text(f"  {label} ", style="dim")
        text.append(line)
        self.console.print(text)

    def finished(self, outcome: Outcome) -> None:
        """A change ended: mark it (and print it at once when not on a terminal)."""
        with self._lock:
            self._running.pop(outcome.key, None)
            self._finished.append(outcome)
        if self._live is None:
            self.console.print(outcome_line(outcome))
