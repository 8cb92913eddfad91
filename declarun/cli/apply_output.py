"""How the result of an apply or destroy reads: a summary line, then every failure in full.

::

    Apply complete: 2 created, 1 replaced (3 changes in 4.2s).
    Apply complete: 1 built, 2 kept as they were (3 changes in 6.0s).

    Apply failed: 1 failed, 1 skipped, 2 done.
    ✗ create container db: db is unhealthy
        shop-db: running, exit code 0
        last health check (exit 1): connection refused
        last 20 lines of its log:
          | starting...
    - create container web: skipped, because container:db failed
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator

from rich.console import Console
from rich.text import Text

from declarun.cli.output import stdout_console
from declarun.cli.progress import RichProgress
from declarun.plan.model import Plan
from declarun.plan.render import render_plan
from declarun.reconcile.apply import ApplyReport, PlanRun
from declarun.reconcile.executor import ProgressSink

__all__ = ["live_runner", "print_report"]

_PAST = {
    "create": "created",
    "recreate": "replaced",
    "update": "updated",
    "start": "started",
    "stop": "stopped",
    "remove": "removed",
    "pull": "pulled",
    "build": "built",
    "kept": "kept as they were",
}


def _done_counts(report: ApplyReport) -> Counter[str]:
    counts: Counter[str] = Counter()
    for round_ in report.rounds:
        for outcome in round_.result.by_status("done"):
            # A change that found nothing to do once it looked (a container whose image's
            # build gave the image it runs) is counted as kept, not as done.
            action = "kept" if outcome.note else round_.plan.change(outcome.key).action
            counts[action] += 1
    return counts


def print_report(report: ApplyReport, console: Console, *, verb: str = "Apply") -> bool:
    """Print the outcome of ``report``; returns True when it succeeded."""
    duration = sum(r.result.duration for r in report.rounds)
    counts = _done_counts(report)
    failed = [o for r in report.rounds for o in r.result.by_status("failed")]
    skipped = [o for r in report.rounds for o in r.result.by_status("skipped")]
    if not failed and not skipped and report.converged:
        parts = [f"{n} {_PAST.get(a, a)}" for a, n in sorted(counts.items())]
        total = sum(counts.values())
        noun = "change" if total == 1 else "changes"
        detail = ", ".join(parts) if parts else "nothing changed"
        console.print(
            Text(f"{verb} complete: {detail} ({total} {noun} in {duration:.1f}s).", style="bold")
        )
        return True
    if failed or skipped:
        done = sum(counts.values())
        console.print(
            Text(
                f"{verb} failed: {len(failed)} failed, {len(skipped)} skipped, {done} done.",
                style="bold red",
            )
        )
        for outcome in failed:
            console.print(Text(f"✗ {outcome.label}: {outcome.error}", style="red"))
            for line in outcome.report.splitlines():
                console.print(Text(f"    {line}"))
        for outcome in skipped:
            console.print(
                Text(f"- {outcome.label}: skipped, because {outcome.cause} failed", style="yellow")
            )
    if not report.converged:
        rounds = len(report.rounds)
        console.print(
            Text(
                f"The engine still differs from the stack after {rounds} "
                f"round{'s' if rounds != 1 else ''}; what is left:",
                style="bold yellow",
            )
        )
        render_plan(report.remaining, console)
    return False


def live_runner() -> PlanRun:
    """Print each plan before it runs, then draw its progress live on standard output."""
    console = stdout_console()
    shown = 0

    @contextlib.contextmanager
    def run(plan: Plan) -> Iterator[ProgressSink]:
        nonlocal shown
        if shown:
            console.print("The engine still differs from the stack; applying again:")
        shown += 1
        render_plan(plan, console)
        console.print()
        with RichProgress(console) as progress:
            yield progress
        console.print()

    return run
