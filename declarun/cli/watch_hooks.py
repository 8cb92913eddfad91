"""How ``declarun watch`` reports, on one engine and on a Swarm alike: each wake-up's plans
drawn live (a fresh runner a wake-up), errors in red on standard error, and what woke it.
"""

from __future__ import annotations

from collections.abc import Callable

from rich.console import Console

from declarun.cli.apply_output import live_runner
from declarun.errors import DeclarunError
from declarun.reconcile.apply import ApplyReport
from declarun.reconcile.watch import WatchHooks

__all__ = ["watch_hooks"]


def watch_hooks(
    console: Console,
    errors: Console,
    on_report: Callable[[ApplyReport], None],
    *,
    quiet_wakes: tuple[str, ...],
) -> WatchHooks:
    """The hooks of a watch that reports on ``console`` (``errors`` for its errors) with
    ``on_report``; a wake-up for one of ``quiet_wakes`` is not announced."""

    def on_error(error: DeclarunError) -> None:
        errors.print(f"[red]error:[/red] {error}", highlight=False)

    def on_wake(why: str) -> None:
        hooks.on_plan = live_runner()  # a fresh runner: "applying again" is per wake-up
        if why not in quiet_wakes:
            console.print(f"Woken by {why}: checking.", markup=False, highlight=False)

    hooks = WatchHooks(
        on_plan=live_runner(), on_report=on_report, on_error=on_error, on_wake=on_wake
    )
    return hooks
