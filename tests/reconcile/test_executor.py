"""The executor's walk, with plain callables for steps (no engine involved)."""

from __future__ import annotations

import threading
from collections.abc import Callable

import pytest

from declarun.reconcile.executor import (
    Cancellation,
    Outcome,
    Step,
    StepContext,
    StepFailed,
    execute,
)


class Recorder:
    """A progress sink remembering every call, and the peak number of running steps."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.running: set[str] = set()
        self.peak = 0
        self.order: list[str] = []
        self.updates: list[tuple[str, str]] = []
        self.finished_outcomes: list[Outcome] = []

    def started(self, key: str, label: str) -> None:
        with self.lock:
            self.running.add(key)
            self.peak = max(self.peak, len(self.running))
            self.order.append(key)

    def update(self, key: str, text: str) -> None:
        with self.lock:
            self.updates.append((key, text))

    def log(self, key: str, line: str) -> None:
        with self.lock:
            self.updates.append((key, line))

    def finished(self, outcome: Outcome) -> None:
        with self.lock:
            self.running.discard(outcome.key)
            self.finished_outcomes.append(outcome)


def ok(_: StepContext) -> None:
    pass


def fail(message: str, report: str = "") -> Callable[[StepContext], None]:
    def run(_: StepContext) -> None:
        raise StepFailed(message, report)

    return run


def test_dependencies_run_before_dependents() -> None:
    finished: list[str] = []
    lock = threading.Lock()

    def record(name: str) -> Callable[[StepContext], None]:
        def run(_: StepContext) -> None:
            with lock:
                finished.append(name)

        return run

    steps = [
        Step("web", "web", record("web"), frozenset({"db", "net"})),
        Step("db", "db", record("db"), frozenset({"net", "vol"})),
        Step("net", "net", record("net")),
        Step("vol", "vol", record("vol")),
    ]
    result = execute(steps, parallel=4)
    assert result.ok
    assert finished.index("web") > finished.index("db") > finished.index("net")
    assert finished.index("db") > finished.index("vol")


def test_independent_steps_overlap_up_to_the_bound() -> None:
    # Each step blocks until three are running at once, proving they truly overlap; the
    # barrier would time out (and the steps fail) if the pool ran them one by one.
    barrier = threading.Barrier(3, timeout=30)

    def meet(_: StepContext) -> None:
        barrier.wait()

    recorder = Recorder()
    steps = [Step(f"s{i}", f"s{i}", meet) for i in range(6)]
    result = execute(steps, parallel=3, progress=recorder)
    assert result.ok, result.outcomes
    assert recorder.peak == 3


def test_parallelism_never_exceeds_the_bound() -> None:
    recorder = Recorder()
    gate = threading.Event()

    def slow(_: StepContext) -> None:
        gate.wait(0.05)

    steps = [Step(f"s{i}", f"s{i}", slow) for i in range(12)]
    result = execute(steps, parallel=2, progress=recorder)
    assert result.ok
    assert recorder.peak <= 2
    assert len(result.outcomes) == 12


def test_failure_skips_dependents_transitively_and_independent_work_continues() -> None:
    steps = [
        Step("db", "create db", fail("db exited with code 3", "log tail")),
        Step("api", "create api", ok, frozenset({"db"})),
        Step("web", "create web", ok, frozenset({"api"})),
        Step("cache", "create cache", ok),
        Step("worker", "create worker", ok, frozenset({"cache"})),
    ]
    result = execute(steps, parallel=2)
    assert not result.ok
    db = result.outcome("db")
    assert (db.status, db.error, db.report) == ("failed", "db exited with code 3", "log tail")
    for key in ("api", "web"):
        skipped = result.outcome(key)
        assert skipped.status == "skipped"
        assert skipped.cause == "db"  # the root cause, even two levels down
    assert result.outcome("cache").status == "done"
    assert result.outcome("worker").status == "done"


def test_an_unexpected_exception_is_a_failure_not_a_crash() -> None:
    def boom(_: StepContext) -> None:
        raise RuntimeError("socket closed")

    result = execute([Step("a", "a", boom), Step("b", "b", ok)])
    assert result.outcome("a").status == "failed"
    assert result.outcome("a").error == "socket closed"
    assert result.outcome("b").status == "done"


def test_needs_outside_the_plan_count_as_met() -> None:
    result = execute([Step("web", "web", ok, frozenset({"image:busybox"}))])
    assert result.ok


def test_progress_updates_carry_the_step_key() -> None:
    recorder = Recorder()

    def pull(ctx: StepContext) -> None:
        ctx.update("1.0/2.0 MB")
        ctx.update("2.0/2.0 MB")

    execute([Step("pull:busybox", "pull busybox", pull)], progress=recorder)
    assert recorder.updates == [("pull:busybox", "1.0/2.0 MB"), ("pull:busybox", "2.0/2.0 MB")]
    assert [o.status for o in recorder.finished_outcomes] == ["done"]


def test_a_step_that_is_both_skipped_and_needed_twice_is_reported_once() -> None:
    steps = [
        Step("a", "a", fail("no")),
        Step("b", "b", ok, frozenset({"a"})),
        Step("c", "c", ok, frozenset({"a", "b"})),
    ]
    result = execute(steps)
    assert sorted(o.key for o in result.outcomes) == ["a", "b", "c"]
    assert result.by_status("skipped")[0].cause == "a"


def test_cycles_and_duplicates_are_refused() -> None:
    with pytest.raises(ValueError, match="cycle"):
        execute([Step("a", "a", ok, frozenset({"b"})), Step("b", "b", ok, frozenset({"a"}))])
    with pytest.raises(ValueError, match="share the key"):
        execute([Step("a", "a", ok), Step("a", "a", ok)])


def test_empty_plan_is_an_empty_result() -> None:
    result = execute([])
    assert result.ok
    assert result.outcomes == ()


def test_a_cancellation_starts_nothing_more_and_lets_running_steps_finish() -> None:
    release = threading.Event()
    told: list[list[str]] = []
    cancel = Cancellation(told.append)

    def slow(_: StepContext) -> None:
        cancel.cancel()  # asked while this step runs
        release.wait(5)

    def never(_: StepContext) -> None:
        pytest.fail("a step started after the cancellation")

    threading.Timer(0.5, release.set).start()
    result = execute(
        [Step("a", "step a", slow), Step("b", "step b", never), Step("c", "step c", never, {"a"})],
        parallel=1,
        cancel=cancel,
    )
    assert result.cancelled and not result.ok
    assert {o.key: o.status for o in result.outcomes} == {
        "a": "done",
        "b": "cancelled",
        "c": "cancelled",
    }
    assert told == [["step a"]]
