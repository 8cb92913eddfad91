"""The user's stop and kill against restart policies, the ``restarting`` state, failed starts.

Against the real declarund with runc and the docker CLI; waits are bounded, nothing is
timed.
"""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from declarun.daemon.containers.lifecycle.listeners import Listeners
from declarun.daemon.containers.runtime.exitwatch import ExitStatus
from tests.daemon.containers.extras_support import IMAGE, extras_daemon, run, wait_until
from tests.support.daemon import DaemonProcess

__all__ = ["extras_daemon"]

pytestmark = pytest.mark.timeout(300)


def _inspect(daemon: DaemonProcess, ref: str) -> dict[str, Any]:
    done = run(daemon, "inspect", ref)
    assert done.returncode == 0, done.stderr
    doc: dict[str, Any] = json.loads(done.stdout)[0]
    return doc


def _ps_status(daemon: DaemonProcess, name: str) -> str:
    """The ``docker ps`` (without ``-a``) Status column of ``name``, "" when not listed."""
    done = run(daemon, "ps", "--filter", f"name=^/{name}$", "--format", "{{.Status}}")
    assert done.returncode == 0, done.stderr
    return done.stdout.decode().strip()


def _in_backoff(daemon: DaemonProcess, name: str, min_restarts: int) -> bool:
    doc = _inspect(daemon, name)
    state = doc["State"]
    return bool(state["Restarting"]) and int(doc["RestartCount"]) >= min_restarts


def _pending_delay(restart_count: int) -> float:
    """The longest back-off a restart pending at ``restart_count`` restarts can have."""
    return min(0.1 * 2**restart_count, 60.0)


def test_kill_stops_an_always_container_for_good(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "kill-alw", "--restart", "always",
               IMAGE, "sleep", "300")  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        assert run(extras_daemon, "kill", "kill-alw").returncode == 0
        wait_until(lambda: _inspect(extras_daemon, "kill-alw")["State"]["Running"] is False,
                   60, "the killed container to be recorded as exited")  # fmt: skip
        doc = _inspect(extras_daemon, "kill-alw")
        # Without the user's stop recorded, the policy would be waiting to restart it.
        assert doc["State"]["Restarting"] is False, doc["State"]
        assert doc["State"]["Status"] == "exited"
        assert doc["State"]["ExitCode"] == 137
        time.sleep(_pending_delay(0) + 1.0)  # the first back-off would have ended
        doc = _inspect(extras_daemon, "kill-alw")
        assert doc["State"]["Running"] is False and doc["RestartCount"] == 0
    finally:
        run(extras_daemon, "rm", "-f", "kill-alw")


def test_restarting_is_shown_and_stop_ends_the_backoff(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "flap", "--restart", "always",
               IMAGE, "sh", "-c", "exit 3")  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        wait_until(lambda: _in_backoff(extras_daemon, "flap", 3), 60, "a restart back-off")
        # `docker ps` lists it (no -a), as Docker lists a restarting container.
        wait_until(lambda: _ps_status(extras_daemon, "flap").startswith("Restarting (3) "), 60,
                   "docker ps to show Restarting (3)")  # fmt: skip
        wait_until(lambda: _inspect(extras_daemon, "flap")["State"]["Status"] == "restarting",
                   60, "inspect to show restarting")  # fmt: skip
        wait_until(lambda: bool(run(extras_daemon, "ps", "-a", "--filter", "status=restarting",
                                    "-q").stdout.strip()), 60, "status=restarting to list it")  # fmt: skip
        exited = run(extras_daemon, "ps", "-a", "--filter", "exited=3", "-q")
        assert not exited.stdout.strip(), "a restarting container counts as running in Docker"

        # The next start is pending: stop cancels it (204, not "already stopped").
        wait_until(lambda: _in_backoff(extras_daemon, "flap", 3), 60, "a restart back-off")
        stopped = run(extras_daemon, "stop", "-t", "1", "flap")
        assert stopped.returncode == 0, stopped.stderr
        doc = _inspect(extras_daemon, "flap")
        assert doc["State"]["Restarting"] is False, doc["State"]
        assert doc["State"]["Running"] is False
        assert doc["State"]["Status"] == "exited"
        count = int(doc["RestartCount"])
        time.sleep(_pending_delay(count) + 1.5)  # past the back-off that was pending
        doc = _inspect(extras_daemon, "flap")
        assert doc["State"]["Running"] is False and doc["State"]["Restarting"] is False
        assert int(doc["RestartCount"]) == count
        assert _ps_status(extras_daemon, "flap") == ""
    finally:
        run(extras_daemon, "rm", "-f", "flap")


def test_kill_during_the_backoff_ends_it(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "flap-k", "--restart", "unless-stopped",
               IMAGE, "sh", "-c", "exit 1")  # fmt: skip
    assert done.returncode == 0, done.stderr
    try:
        wait_until(lambda: _in_backoff(extras_daemon, "flap-k", 3), 60, "a restart back-off")
        killed = run(extras_daemon, "kill", "flap-k")
        assert killed.returncode == 0, killed.stderr
        doc = _inspect(extras_daemon, "flap-k")
        assert doc["State"]["Running"] is False and doc["State"]["Restarting"] is False
        count = int(doc["RestartCount"])
        time.sleep(_pending_delay(count) + 1.5)
        assert int(_inspect(extras_daemon, "flap-k")["RestartCount"]) == count
    finally:
        run(extras_daemon, "rm", "-f", "flap-k")


def test_failed_start_of_a_run_rm_ends_attach_and_removes(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "--rm", "--name", "rm-fail", IMAGE, "no-such-command")
    assert done.returncode == 127, (done.returncode, done.stderr)
    assert b"executable file not found" in done.stderr
    wait_until(lambda: run(extras_daemon, "inspect", "rm-fail").returncode != 0, 60,
               "the AutoRemove container to be removed")  # fmt: skip


def test_listeners_report_failures_and_isolate_a_failing_one() -> None:
    seen: list[tuple[str, object]] = []
    listeners = Listeners()

    def broken(_record: Any, _error: BaseException) -> None:
        raise RuntimeError("listener bug")

    listeners.start_failure.append(broken)
    listeners.start_failure.append(lambda record, error: seen.append((record, error)))
    listeners.exit.append(lambda record, status: seen.append((record, status)))
    error = ValueError("boom")
    record: Any = "rec"
    listeners.start_failed(record, error)
    listeners.exited(record, ExitStatus(1, None))
    assert seen == [("rec", error), ("rec", ExitStatus(1, None))]
