"""Telling a container that keeps dying from one that merely stopped: pure, from the snapshot.

Starting a service again is the right answer to a container someone stopped or that ended
after a long run; it is the wrong answer to one that dies as soon as it starts, which would
die again the same way, apply after apply. Two things give that away:

* the engine is restarting it (``restarting``), or restarted it more than once and it has
  been up for moments only: its restart policy brings it back after each crash, with a
  growing delay (Docker's back-off: 100 ms doubling up to a minute, reset by a run of
  10 s); starting it ourselves would only cut that short;
* it exited, by itself (not by a stop signal), less than :data:`CRASH_WINDOW` seconds after
  it started: it dies at start.

Either way the plan leaves it alone and says why (a ``crashing`` reason on a ``noop``); only
a change to the stack (which replaces it) or an explicit ``declarun start`` tries again.
"""

from __future__ import annotations

from declarun.plan.model import Reason

__all__ = ["CRASH_WINDOW", "STOP_EXIT_CODES", "crash_reason", "describe_exit"]

#: A run shorter than this (seconds) is a crash at start; Docker's restart back-off resets
#: after a run this long too.
CRASH_WINDOW = 10.0
#: Exit codes of a process ended by SIGINT, SIGKILL or SIGTERM: what a stop looks like.
STOP_EXIT_CODES = frozenset({130, 137, 143})


def describe_exit(exit_code: int | None, ran_for: float | None) -> str:
    """``exited with code 1 0.2 s after it started`` (the run's length when known)."""
    text = f"exited with code {exit_code}"
    if ran_for is not None:
        text += f" {ran_for:.1f} s after it started"
    return text


def crash_reason(
    *,
    state: str,
    exit_code: int | None,
    ran_for: float | None,
    restart_count: int,
    restart_policy: str,
) -> Reason | None:
    """A ``crashing`` reason when a service in this state keeps dying, else None."""
    policy = restart_policy or "no"
    restarts = f"{restart_count} restart{'s' if restart_count != 1 else ''} so far"
    if state == "restarting":
        return Reason(
            kind="crashing",
            message=f"the container keeps dying: it {describe_exit(exit_code, ran_for)} and "
            f"the engine restarts it after a growing delay (restart: {policy}, {restarts}); "
            "fix the stack, or read its log with 'declarun logs'",
            field="state",
            before="restarting",
            after="running",
        )
    if state == "running" and restart_count >= 2:
        # The observer reads the restarts of a running container only in its first seconds:
        # brought back twice and up for moments, it is caught between two deaths.
        return Reason(
            kind="crashing",
            message=f"the container keeps dying: the engine restarted it moments ago "
            f"(restart: {policy}, {restarts}); fix the stack, or read its log with "
            "'declarun logs'",
            field="state",
            before="running",
            after="running",
        )
    if state != "exited" or ran_for is None or ran_for >= CRASH_WINDOW:
        return None
    if exit_code in STOP_EXIT_CODES:
        return None  # stopped, not crashed: starting it again is what the stack wants
    why = (
        "a service must keep running (run: once is for jobs)"
        if exit_code == 0
        else "starting it again would fail the same way"
    )
    gave_up = f" (restart: {policy}, {restarts})" if restart_count else ""
    return Reason(
        kind="crashing",
        message=f"the container dies at start: it {describe_exit(exit_code, ran_for)}"
        f"{gave_up}; {why}: fix the stack, or 'declarun start' it to try again",
        field="state",
        before="exited",
        after="running",
    )
