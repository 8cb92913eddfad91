"""Health checks and restart policies against the real declarund (bounded waits, no timings)."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.extras_support import (
    IMAGE,
    extras_daemon,
    image_into,
    need_runtime,
    run,
    wait_until,
)
from tests.support.daemon import DaemonProcess, running_daemon

__all__ = ["extras_daemon"]

pytestmark = pytest.mark.timeout(300)


def _inspect(daemon: DaemonProcess, ref: str) -> dict[str, object]:
    done = run(daemon, "inspect", ref)
    assert done.returncode == 0, done.stderr
    doc: dict[str, object] = json.loads(done.stdout)[0]
    return doc


def _state(daemon: DaemonProcess, ref: str) -> dict[str, object]:
    state = _inspect(daemon, ref)["State"]
    assert isinstance(state, dict)
    return state


def _health(daemon: DaemonProcess, ref: str) -> str:
    health = _state(daemon, ref).get("Health")
    return str(health["Status"]) if isinstance(health, dict) else ""


def test_health_goes_unhealthy_then_healthy(extras_daemon: DaemonProcess) -> None:
    since = str(int(time.time()) - 1)
    done = run(extras_daemon, "run", "-d", "--name", "hc", "--health-cmd", "test -f /tmp/ok",
               "--health-interval", "1s", "--health-retries", "2", "--health-timeout", "5s",
               IMAGE, "sleep", "300")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _health(extras_daemon, "hc") in ("starting", "unhealthy")
    wait_until(lambda: _health(extras_daemon, "hc") == "unhealthy", 60, "unhealthy")
    health = _state(extras_daemon, "hc")["Health"]
    assert isinstance(health, dict)
    assert int(health["FailingStreak"]) >= 2
    assert health["Log"] and all(entry["ExitCode"] == 1 for entry in health["Log"])
    assert len(health["Log"]) <= 5
    assert run(extras_daemon, "exec", "hc", "touch", "/tmp/ok").returncode == 0
    wait_until(lambda: _health(extras_daemon, "hc") == "healthy", 60, "healthy")
    health = _state(extras_daemon, "hc")["Health"]
    assert isinstance(health, dict) and health["FailingStreak"] == 0
    assert health["Log"][-1]["ExitCode"] == 0
    listed = run(extras_daemon, "ps", "--filter", "health=healthy", "--format", "{{.Names}}")
    assert b"hc" in listed.stdout
    until = str(int(time.time()) + 1)
    events = run(extras_daemon, "events", "--since", since, "--until", until, "--filter",
                 "container=hc", "--format", "{{.Action}}").stdout.split(b"\n")  # fmt: skip
    assert b"health_status: unhealthy" in events and b"health_status: healthy" in events
    run(extras_daemon, "rm", "-f", "hc")


def test_health_timeout_and_start_period(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "hc-slow", "--health-cmd", "sleep 5",
               "--health-interval", "1s", "--health-timeout", "200ms", "--health-retries", "1",
               IMAGE, "sleep", "300")  # fmt: skip
    assert done.returncode == 0, done.stderr
    wait_until(lambda: _health(extras_daemon, "hc-slow") == "unhealthy", 60, "unhealthy")
    health = _state(extras_daemon, "hc-slow")["Health"]
    assert isinstance(health, dict)
    entry = health["Log"][-1]
    assert entry["ExitCode"] == -1
    assert "Health check exceeded timeout (200ms)" in entry["Output"]
    run(extras_daemon, "rm", "-f", "hc-slow")
    # Failures inside the start period do not count.
    done = run(extras_daemon, "run", "-d", "--name", "hc-start", "--health-cmd", "false",
               "--health-interval", "1s", "--health-retries", "1", "--health-start-period", "1h",
               IMAGE, "sleep", "300")  # fmt: skip
    assert done.returncode == 0
    wait_until(
        lambda: len((_state(extras_daemon, "hc-start").get("Health") or {}).get("Log") or []) >= 2,  # type: ignore[union-attr]
        60, "two probes",
    )  # fmt: skip
    assert _health(extras_daemon, "hc-start") == "starting"
    run(extras_daemon, "rm", "-f", "hc-start")


def test_on_failure_restarts_up_to_the_limit(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "of", "--restart", "on-failure:2",
               IMAGE, "sh", "-c", "echo run; exit 1")  # fmt: skip
    assert done.returncode == 0, done.stderr

    def settled() -> bool:
        doc = _inspect(extras_daemon, "of")
        state = doc["State"]
        assert isinstance(state, dict)
        return doc["RestartCount"] == 2 and not state["Running"] and not state["Restarting"]

    wait_until(settled, 60, "two restarts")
    state = _state(extras_daemon, "of")
    assert state["ExitCode"] == 1
    logs = run(extras_daemon, "logs", "of").stdout
    assert logs.count(b"run") == 3
    run(extras_daemon, "rm", "-f", "of")


def test_user_stop_stays_stopped(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "alw", "--restart", "always",
               IMAGE, "sleep", "300")  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert run(extras_daemon, "stop", "-t", "1", "alw").returncode == 0
    state = _state(extras_daemon, "alw")
    assert state["Running"] is False and state["Restarting"] is False
    # Nothing restarts it afterwards either (checked after a later, unrelated exit).
    assert run(extras_daemon, "run", "--rm", IMAGE, "true").returncode == 0
    assert _state(extras_daemon, "alw")["Running"] is False
    run(extras_daemon, "rm", "-f", "alw")


def test_always_restarts_after_exit(extras_daemon: DaemonProcess) -> None:
    done = run(extras_daemon, "run", "-d", "--name", "alw2", "--restart", "always",
               IMAGE, "sh", "-c", "sleep 0.2")  # fmt: skip
    assert done.returncode == 0, done.stderr
    wait_until(lambda: int(_inspect(extras_daemon, "alw2")["RestartCount"]) >= 2, 60,  # type: ignore[call-overload]
               "restarts")  # fmt: skip
    run(extras_daemon, "rm", "-f", "alw2")


@pytest.fixture()
def own_daemon(tmp_path: Path, busybox_image_pushed: PushedImage) -> Iterator[DaemonProcess]:
    """A declarund of this test alone, with ``bb:test`` (the test restarts it)."""
    need_runtime()
    with running_daemon(tmp_path) as daemon:
        image_into(daemon, busybox_image_pushed)
        yield daemon


def test_restart_policies_at_daemon_restart(own_daemon: DaemonProcess, tmp_path: Path) -> None:
    daemon = own_daemon
    names = {"always-c": "always", "unless-c": "unless-stopped",
             "stopped-c": "unless-stopped", "none-c": "no"}  # fmt: skip
    for name, policy in names.items():
        done = run(daemon, "run", "-d", "--name", name, "--restart", policy, "-v",
                   f"vol-{name}:/data", IMAGE, "sh", "-c", "echo x >> /data/runs; sleep 300")  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert run(daemon, "stop", "-t", "1", "stopped-c").returncode == 0
    pids = {name: int(_state(daemon, name)["Pid"]) for name in ("always-c", "unless-c", "none-c")}  # type: ignore[call-overload]
    daemon.stop()
    # With the daemon down, the containers end (killed behind its back, by their own pids).
    for pid in pids.values():
        os.kill(pid, signal.SIGKILL)
    for pid in pids.values():
        wait_until(lambda pid=pid: not Path(f"/proc/{pid}").exists(), 120, f"pid {pid} to end")  # type: ignore[misc]
    socket_path = daemon.socket_path
    with running_daemon(tmp_path, socket_path=socket_path) as again:
        try:
            for name in ("always-c", "unless-c"):
                try:
                    # Generous: a loaded machine may take long to restore and start them.
                    wait_until(lambda name=name: _state(again, name)["Running"] is True, 180,  # type: ignore[misc]
                               f"{name} to run again")  # fmt: skip
                except AssertionError as exc:
                    raise AssertionError(f"{exc}\n--- daemon log ---\n{again.log()}") from None
                runs = run(again, "exec", name, "cat", "/data/runs").stdout
                assert runs == b"x\nx\n", runs
            assert _state(again, "stopped-c")["Running"] is False
            none_state = _state(again, "none-c")
            assert none_state["Running"] is False and none_state["ExitCode"] == 137
        finally:
            ids = run(again, "ps", "-aq").stdout.split()
            if ids:
                run(again, "rm", "-f", *[i.decode() for i in ids], timeout=120)
