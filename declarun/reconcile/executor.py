"""The parallel, dependency-ordered walk that carries out a plan.

A plan reaches the executor as :class:`Step` values: a key, the keys it needs done first, and
a callable doing the work. The walk runs every step whose needs are met on a bounded thread
pool, so independent work overlaps while dependents wait. When a step fails, every step that
needs it (directly or not) is *skipped* with that failure named as the cause, and everything
else carries on: one broken container never stops unrelated ones (Compose v1's good idea).

Needs that name keys outside the step set count as met: they are resources the plan found
already right. The executor knows nothing of Docker; progress goes to a
:class:`ProgressSink` so the CLI can draw it and tests can record it.

A :class:`Cancellation` (set from a signal handler, say) stops the walk gently: no step
starts after it, the running ones finish (they are named to it once, so the user knows what
is being waited for), and the steps that never started end as ``cancelled``.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from typing import Literal, Protocol

from declarun.errors import DeclarunError

__all__ = [
    "DEFAULT_PARALLEL",
    "ApplyResult",
    "Cancellation",
    "NullProgress",
    "Outcome",
    "ProgressSink",
    "Status",
    "Step",
    "StepContext",
    "StepFailed",
    "StepUnneeded",
    "execute",
]

DEFAULT_PARALLEL = 4
Status = Literal["done", "failed", "skipped", "cancelled"]
_POLL = 0.2  # how often a waiting walk looks at its cancellation


class Cancellation:
    """Asked (from any thread, or a signal handler) to stop starting steps.

    ``on_stopping`` is called once, by the walk, with the labels of the steps it still waits
    for when it first sees the request.
    """

    def __init__(self, on_stopping: Callable[[list[str]], None] | None = None) -> None:
        self._event = threading.Event()
        self._on_stopping = on_stopping

    def cancel(self) -> None:
        """Stop starting steps (safe in a signal handler: it only sets an event)."""
        self._event.set()

    @property
    def requested(self) -> bool:
        """True once :meth:`cancel` was called."""
        return self._event.is_set()

    def wait(self, timeout: float) -> bool:
        """Sleep up to ``timeout`` seconds, or until requested; True when requested."""
        return self._event.wait(timeout)

    def stopping(self, running: list[str]) -> None:
        """Tell whoever asked which steps are still to finish."""
        if self._on_stopping is not None:
            self._on_stopping(running)


class StepFailed(DeclarunError):
    """A step failed in a way the user should read: ``report`` holds the details.

    Raised by actions (a container exited non-zero, a health check failed); its message is the
    one-line cause, ``report`` the longer story (exit code, health output, log tail).
    """

    def __init__(self, message: str, report: str = "") -> None:
        super().__init__(message)
        self.report = report


class StepUnneeded(DeclarunError):
    """Raised by a step that found, once it looked, that nothing needs doing: it counts as
    done, and its message is kept as the outcome's ``note`` (``kept: the build gave the same
    image``)."""


class ProgressSink(Protocol):
    """Where the walk reports what it is doing. Called from worker threads."""

    def started(self, key: str, label: str) -> None:
        """A step began."""

    def update(self, key: str, text: str) -> None:
        """A running step has news (a pull's bytes, a wait's state)."""

    def log(self, key: str, line: str) -> None:
        """A line of a running step's output worth keeping on screen (a build's steps)."""

    def finished(self, outcome: Outcome) -> None:
        """A step ended (done, failed or skipped)."""


class NullProgress:
    """A progress sink that shows nothing."""

    def started(self, key: str, label: str) -> None:
        """Ignore."""

    def update(self, key: str, text: str) -> None:
        """Ignore."""

    def log(self, key: str, line: str) -> None:
        """Ignore."""

    def finished(self, outcome: Outcome) -> None:
        """Ignore."""


@dataclass(frozen=True)
class StepContext:
    """Handed to a running step: lets it report progress under its own key."""

    key: str
    progress: ProgressSink

    def update(self, text: str) -> None:
        """Show ``text`` as this step's current status."""
        self.progress.update(self.key, text)

    def log(self, line: str) -> None:
        """Keep ``line`` of this step's output on screen."""
        self.progress.log(self.key, line)


@dataclass(frozen=True)
class Step:
    """One unit of work: ``run`` is called once, after every step in ``needs`` is done."""

    key: str
    label: str
    run: Callable[[StepContext], None]
    needs: frozenset[str] = frozenset()


@dataclass(frozen=True)
class Outcome:
    """How one step ended. ``cause`` names the failed step a skipped one waited for; ``note``
    says why a done step did nothing (:class:`StepUnneeded`)."""

    key: str
    label: str
    status: Status
    duration: float = 0.0
    error: str | None = None
    report: str = ""
    cause: str | None = None
    note: str = ""


@dataclass(frozen=True)
class ApplyResult:
    """Every step's outcome, in the order they ended."""

    outcomes: tuple[Outcome, ...] = ()
    duration: float = 0.0
    cancelled: bool = False  # the walk was stopped by its Cancellation

    @property
    def ok(self) -> bool:
        """True when every step is done."""
        return not self.cancelled and all(o.status == "done" for o in self.outcomes)

    def by_status(self, status: Status) -> list[Outcome]:
        """The outcomes with ``status``."""
        return [o for o in self.outcomes if o.status == status]

    def outcome(self, key: str) -> Outcome:
        """The outcome of the step ``key``; KeyError when there was none."""
        for candidate in self.outcomes:
            if candidate.key == key:
                return candidate
        raise KeyError(key)


@dataclass
class _Walk:
    """Mutable bookkeeping of one walk; touched only by the coordinating thread."""

    steps: dict[str, Step]
    waiting: dict[str, set[str]]  # key -> needs not yet done
    dependents: dict[str, list[str]]
    outcomes: list[Outcome] = field(default_factory=list)
    settled: set[str] = field(default_factory=set)


def _check_steps(steps: Sequence[Step]) -> dict[str, Step]:
    by_key: dict[str, Step] = {}
    for step in steps:
        if step.key in by_key:
            raise ValueError(f"two steps share the key {step.key!r}")
        by_key[step.key] = step
    # Kahn's algorithm: whatever is left unvisited sits on a cycle.
    indegree = {k: len(s.needs & by_key.keys()) for k, s in by_key.items()}
    users: dict[str, list[str]] = {k: [] for k in by_key}
    for key, step in by_key.items():
        for need in step.needs & by_key.keys():
            users[need].append(key)
    ready = [k for k, n in indegree.items() if n == 0]
    seen = 0
    while ready:
        key = ready.pop()
        seen += 1
        for user in users[key]:
            indegree[user] -= 1
            if indegree[user] == 0:
                ready.append(user)
    if seen != len(by_key):
        cycle = sorted(k for k, n in indegree.items() if n > 0)
        raise ValueError(f"the steps depend on each other in a cycle: {', '.join(cycle)}")
    return by_key


def _run_one(step: Step, progress: ProgressSink) -> Outcome:
    progress.started(step.key, step.label)
    begin = time.monotonic()
    try:
        step.run(StepContext(step.key, progress))
    except StepFailed as exc:
        return Outcome(
            step.key, step.label, "failed", time.monotonic() - begin, str(exc), exc.report
        )
    except StepUnneeded as exc:
        return Outcome(step.key, step.label, "done", time.monotonic() - begin, note=str(exc))
    except Exception as exc:  # any failure of one step must not stop the others
        message = str(exc) or type(exc).__name__
        return Outcome(step.key, step.label, "failed", time.monotonic() - begin, message)
    return Outcome(step.key, step.label, "done", time.monotonic() - begin)


def _skip_dependents(walk: _Walk, failed: str, progress: ProgressSink) -> None:
    # The root cause travels down: a skip three levels below names the step that broke.
    stack = list(walk.dependents[failed])
    while stack:
        key = stack.pop()
        if key in walk.settled:
            continue
        walk.settled.add(key)
        step = walk.steps[key]
        outcome = Outcome(key, step.label, "skipped", cause=failed)
        walk.outcomes.append(outcome)
        progress.finished(outcome)
        stack.extend(walk.dependents[key])


def _ready(walk: _Walk, keys: Iterable[str]) -> list[str]:
    return [k for k in keys if not walk.waiting[k] and k not in walk.settled]


def _cancel_rest(walk: _Walk, queue: list[str], progress: ProgressSink) -> None:
    """Every step not started yet ends ``cancelled``."""
    queue.clear()
    for key, step in walk.steps.items():
        if key in walk.settled:
            continue
        walk.settled.add(key)
        outcome = Outcome(key, step.label, "cancelled")
        walk.outcomes.append(outcome)
        progress.finished(outcome)


def execute(
    steps: Sequence[Step],
    *,
    parallel: int = DEFAULT_PARALLEL,
    progress: ProgressSink | None = None,
    cancel: Cancellation | None = None,
) -> ApplyResult:
    """Run ``steps`` in dependency order, at most ``parallel`` at a time.

    Never raises for a failing step: failures and the skips they cause are in the result.
    Raises ValueError for a malformed step set (duplicate keys, a cycle). Once ``cancel`` is
    requested no new step starts, running ones finish, the others end ``cancelled`` and the
    result says ``cancelled``. On KeyboardInterrupt no new step starts and it propagates at
    once, without waiting for the running ones (they are abandoned, not stopped).
    """
    if parallel < 1:
        raise ValueError("parallel must be at least 1")
    sink: ProgressSink = progress if progress is not None else NullProgress()
    by_key = _check_steps(steps)
    walk = _Walk(
        steps=by_key,
        waiting={k: set(s.needs & by_key.keys()) for k, s in by_key.items()},
        dependents={k: [] for k in by_key},
    )
    for key, step in by_key.items():
        for need in step.needs & by_key.keys():
            walk.dependents[need].append(key)
    begin = time.monotonic()
    # Ready steps start in the order given, so a caller's ordering (e.g. by name) shows.
    queue = _ready(walk, by_key)
    running: dict[Future[Outcome], str] = {}
    cancelled = False
    pool = ThreadPoolExecutor(max_workers=parallel, thread_name_prefix="declarun-step")
    try:
        while queue or running:
            if cancel is not None and cancel.requested and not cancelled:
                cancelled = True
                _cancel_rest(walk, queue, sink)
                cancel.stopping([by_key[k].label for k in running.values()])
            while queue and len(running) < parallel:
                key = queue.pop(0)
                walk.settled.add(key)
                running[pool.submit(_run_one, by_key[key], sink)] = key
            if not running:
                break
            # A bounded wait: a signal handler runs only between bytecodes of the main
            # thread, and a wait with no end would hold it off until a step ends.
            done, _ = wait(running, timeout=_POLL, return_when=FIRST_COMPLETED)
            for future in done:
                key = running.pop(future)
                outcome = future.result()
                walk.outcomes.append(outcome)
                sink.finished(outcome)
                if outcome.status != "done":
                    _skip_dependents(walk, key, sink)
                    continue
                for user in walk.dependents[key]:
                    walk.waiting[user].discard(key)
                if not cancelled:
                    queue.extend(k for k in _ready(walk, walk.dependents[key]) if k not in queue)
    except KeyboardInterrupt:
        pool.shutdown(wait=False, cancel_futures=True)
        raise
    pool.shutdown(wait=True)
    return ApplyResult(tuple(walk.outcomes), time.monotonic() - begin, cancelled)
