"""How a build's progress is shown while it runs, and kept for a failure report."""

from __future__ import annotations

from declarun.engine.types import BuildEvent
from declarun.reconcile.builds import TAIL_LINES, BuildOutput
from declarun.reconcile.executor import StepContext


class Sink:
    def __init__(self) -> None:
        self.updates: list[str] = []
        self.logged: list[str] = []

    def started(self, key: str, label: str) -> None:
        pass

    def update(self, key: str, text: str) -> None:
        self.updates.append(text)

    def log(self, key: str, line: str) -> None:
        self.logged.append(line)

    def finished(self, outcome: object) -> None:
        pass


def test_step_lines_are_kept_on_screen_and_chunks_make_whole_lines() -> None:
    sink = Sink()
    output = BuildOutput(StepContext("image:app", sink))
    for chunk in ["Step 1/2 : FROM busybox\n ---> 3f", "a1\nStep 2/2 : RUN make\n", "cc -o app"]:
        output.feed(BuildEvent(output=chunk))
    output.feed(BuildEvent(status="a1b2: Downloading [=>  ]"))
    output.feed(BuildEvent(image_id="sha256:abc"))
    assert sink.logged == ["Step 1/2 : FROM busybox", "Step 2/2 : RUN make"]
    assert sink.updates[:3] == ["Step 1/2 : FROM busybox", "---> 3fa1", "Step 2/2 : RUN make"]
    assert sink.updates[-1] == "a1b2: Downloading [=>  ]"
    assert output.image_id == "sha256:abc"
    report = output.report()  # the line without a newline is flushed into the tail
    assert report.splitlines()[-1] == "  | cc -o app"


def test_the_report_holds_the_last_lines_only() -> None:
    output = BuildOutput(None)
    output.feed(BuildEvent(output="".join(f"line {n}\n" for n in range(50))))
    lines = output.report().splitlines()
    assert lines[0] == f"last {TAIL_LINES} lines of the build's output:"
    assert lines[1] == f"  | line {50 - TAIL_LINES}"
    assert lines[-1] == "  | line 49"
    assert BuildOutput(None).report() == ""
