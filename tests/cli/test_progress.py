"""Live apply progress: on a terminal (redrawn in place) and off one (a line per change)."""

from __future__ import annotations

import io

from rich.console import Console

from declarun.cli.progress import RichProgress
from declarun.reconcile.executor import Step, StepContext, StepFailed, StepUnneeded, execute


def _steps() -> list[Step]:
    def pull(ctx: StepContext) -> None:
        ctx.update("1/2 layers, 1.0/2.0 MB")

    def broken(_: StepContext) -> None:
        raise StepFailed("db is unhealthy")

    return [
        Step("image:app", "pull example/app:1", pull),
        Step("container:db", "create container db", broken),
        Step("container:web", "create container web", lambda _: None, frozenset({"container:db"})),
    ]


def test_off_a_terminal_each_change_prints_one_line() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=False, no_color=True, width=100)
    with RichProgress(console) as progress:
        execute(_steps(), parallel=1, progress=progress)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("✓ pull example/app:1")
    assert lines[1] == "✗ create container db  failed (why: below)"
    assert lines[2] == "- create container web  skipped: container:db failed"


def test_on_a_terminal_the_final_frame_shows_every_change() -> None:
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=100)
    with RichProgress(console) as progress:
        execute(_steps(), parallel=2, progress=progress)
    text = out.getvalue()
    for label in ("pull example/app:1", "create container db", "create container web"):
        assert label in text
    assert "create container db" in text and "failed (why: below)" in text


def test_kept_lines_print_as_they_come_and_a_note_shows_why_nothing_was_done() -> None:
    def build(ctx: StepContext) -> None:
        ctx.log("Step 1/2 : FROM busybox")
        ctx.update(" ---> Using cache")
        ctx.log("Step 2/2 : COPY . /app")

    def keep(_: StepContext) -> None:
        raise StepUnneeded("kept: the build of app:1 gave the image it runs")

    out = io.StringIO()
    console = Console(file=out, force_terminal=False, no_color=True, width=120)
    steps = [
        Step("image:app", "build app:1", build),
        Step("container:web", "replace container web", keep, frozenset({"image:app"})),
    ]
    with RichProgress(console) as progress:
        result = execute(steps, parallel=1, progress=progress)
    assert result.ok
    lines = out.getvalue().splitlines()
    assert lines[0] == "  build app:1 Step 1/2 : FROM busybox"
    assert lines[1] == "  build app:1 Step 2/2 : COPY . /app"
    assert lines[2].startswith("✓ build app:1")
    assert lines[3].startswith("✓ replace container web")
    assert lines[3].endswith("kept: the build of app:1 gave the image it runs")
    assert result.outcome("container:web").note.startswith("kept:")
