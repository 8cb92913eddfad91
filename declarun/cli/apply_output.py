"""How the result of an apply or destroy reads: a summary line, then every failure in full.

::

    Apply complete: 2 created, 1 recreated (3 changes in 4.2s).
    Apply complete: 1 built, 2 kept as they were (3 changes in 6.0s).

    Apply failed: 1 failed, 1 skipped, 2 done.
    ✗ create container db: db is unhealthy
        shop-db: running (unhealthy)
        last health check (exit 1): connection refused
        last 20 lines of its log:
          | starting...
    - create container web: skipped, because container:db failed

    Apply failed: 1 container is not running as the stack wants it.
    ✗ container worker: worker is not running: exited with code 1 0.2 s after it started
        shop-worker: exited with code 1 0.2 s after it started
        last 20 lines of its log:
          | cannot open /etc/worker.conf
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Callable, Iterator

from rich.console import Console
from rich.text import Text

from declarun.cli.output import stdout_console
from declarun.cli.progress import RichProgress
from declarun.plan.model import Plan
from declarun.plan.render import render_plan
from declarun.reconcile.apply import ApplyReport, PlanRun
from declarun.reconcile.executor import Outcome, ProgressSink

__all__ = ["live_runner", "print_failing", "print_failure", "print_report"]

_PAST = {
    "create": "created",
    "recreate": "recreated",
    "update": "updated",
    "start": "started",
    "stop": "stopped",
    "remove": "removed",
    "pull": "pulled",
    "build": "built",
    "kept": "kept as they were",
}


def print_failure(console: Console, headline: str, error: str, report: str) -> None:
    """``✗ headline: error``, then the report indented, without the lines that only repeat
    the error (an engine's refusal is also the container's ``State.Error``)."""
    console.print(Text(f"✗ {headline}: {error}", style="red"))
    for line in report.splitlines():
        if line.startswith("error: ") and line.removeprefix("error: ") in error:
            continue
        console.print(Text(f"    {line}"))


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
    if report.cancelled:
        _print_interrupted(report, console, verb, failed, skipped)
        return False
    if not failed and not skipped and report.converged and not report.failing:
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
            print_failure(console, outcome.label, outcome.error or "", outcome.report)
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
    if report.failing:
        print_failing(report, console, verb=verb)
    return False


def _print_interrupted(
    report: ApplyReport,
    console: Console,
    verb: str,
    failed: list[Outcome],
    skipped: list[Outcome],
) -> None:
    """The state an interrupted apply reached: what was done, what failed, what is left."""
    done = sum(_done_counts(report).values())
    cancelled = sum(len(r.result.by_status("cancelled")) for r in report.rounds)
    console.print(
        Text(
            f"{verb} interrupted: {done} done, {len(failed)} failed, "
            f"{cancelled + len(skipped)} not started.",
            style="bold yellow",
        )
    )
    for outcome in failed:
        print_failure(console, outcome.label, outcome.error or "", outcome.report)
    if report.converged:
        console.print(Text("The engine matches the stack nonetheless.", style="bold"))
        return
    console.print(Text("The engine differs from the stack; what is left:", style="bold yellow"))
    render_plan(report.remaining, console)


def print_failing(report: ApplyReport, console: Console, *, verb: str = "Apply") -> None:
    """The containers that are not running (healthy) or did not complete, each with its
    failure report."""
    count = len(report.failing)
    noun = "container is" if count == 1 else "containers are"
    console.print(
        Text(f"{verb} failed: {count} {noun} not running as the stack wants.", style="bold red")
    )
    for failing in report.failing:
        print_failure(console, f"container {failing.name}", failing.message, failing.report)


def live_runner(confirm: Callable[[Plan], None] | None = None) -> PlanRun:
    """Print each plan before it runs, then draw its progress live on standard output;
    ``confirm`` (which raises to refuse) sees each plan once it is shown."""
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
        if confirm is not None:
            confirm(plan)
        with RichProgress(console) as progress:
            yield progress
        console.print()

    return run
