"""One apply at a time per stack and engine, and Ctrl-C that finishes what runs, on each
engine: a second apply waits for the first (saying for whom) and the stack converges; with
``--lock-timeout 0`` it refuses at once; Ctrl-C starts nothing more, names what it waits for
and reports the state reached."""

from __future__ import annotations

import re
import signal
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest

from declarun.reconcile.engine_lock import lock_volume_name
from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine
from tests.support.stacks import wait_until

SLOW = """\
stack: {name}
containers:
  slow:
    image: {image}
    command: ["sh", "-c", "sleep 4; touch /tmp/ok; exec sleep 3600"]
    stop_grace_period: 1s
    healthcheck: {{test: "test -e /tmp/ok", interval: 300ms, retries: 100}}
  after:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on: {{slow: healthy}}  # the short form of {{condition: healthy}}
"""


GATED = """\
stack: {name}
containers:
  gated:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    volumes: ["{gate}:/gate:ro"]
    # healthy only once the test opens the gate: the first apply holds the lock until then
    healthcheck: {{test: "test -e /gate/open", interval: 200ms, retries: 10000}}
  after:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
    depends_on: {{gated: healthy}}
"""


@pytest.fixture
def gated(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    (tmp_path / "gate").mkdir()
    cli = StackCli(engine, tmp_path, "")
    cli.write(GATED, gate=tmp_path / "gate")
    yield cli
    cli.clean()


def _lock_exists(cli: StackCli) -> bool:
    names = {v["Name"] for v in cli.engine.client.api.volumes().get("Volumes") or ()}
    return lock_volume_name(cli.name) in names


def _read_until(stream: IO[str], text: str, timeout: float) -> str:
    """What ``stream`` printed up to the line holding ``text`` (read in a thread, so a
    process that never prints it fails the test after ``timeout`` instead of hanging it)."""
    seen: list[str] = []
    found = threading.Event()

    def read() -> None:
        for line in stream:
            seen.append(line)
            if text in line:
                found.set()
                return

    threading.Thread(target=read, daemon=True).start()
    assert found.wait(timeout), f"never printed {text!r}: {''.join(seen)}"
    return "".join(seen)


def test_a_second_apply_waits_for_the_first_and_the_stack_converges(gated: StackCli) -> None:
    first = gated.popen("apply", "stack.yaml")
    second = None
    try:
        wait_until("the first apply to take the lock", lambda: _lock_exists(gated), 60)
        refused = gated.run("apply", "stack.yaml", "--lock-timeout", "0")
        assert refused.returncode == 1
        assert f"stack '{gated.name}' is locked on this engine by 'declarun apply'" in (
            refused.stderr
        )
        second = gated.popen("apply", "stack.yaml", "--lock-timeout", "5m")
        assert second.stderr is not None
        waited = _read_until(second.stderr, "waiting for it", 120)
        assert "is locked by 'declarun apply'" in waited
        assert first.poll() is None  # the gate still holds the first apply
        (gated.tmp / "gate" / "open").touch()
        out, err = first.communicate(timeout=300)
        second_out, second_err = second.communicate(timeout=300)
    finally:
        for process in (first, second):
            if process is not None and process.poll() is None:
                process.kill()
                process.communicate()
    assert first.returncode == 0, out + err
    assert second.returncode == 0, second_out + second_err
    assert "No changes" in second_out  # the first did it all; nothing was undone
    assert gated.run("plan", "stack.yaml").returncode == 0
    assert not _lock_exists(gated)


@pytest.fixture
def slow(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    cli = StackCli(engine, tmp_path, SLOW)
    yield cli
    cli.clean()


def test_ctrl_c_finishes_the_running_change_and_reports_the_state(slow: StackCli) -> None:
    applying = slow.popen("apply", "stack.yaml")
    try:
        wait_until(
            "slow to be created",
            lambda: slow.inspect("slow") is not None or applying.poll() is not None,
            120,
        )
        assert applying.poll() is None, applying.communicate()
        applying.send_signal(signal.SIGINT)
        out, err = applying.communicate(timeout=120)
    finally:
        if applying.poll() is None:
            applying.kill()
            applying.communicate()
    assert applying.returncode == 130, out + err
    assert "Aborted!" not in err
    assert (
        "Interrupted: no new change starts; waiting for the running ones to finish: "
        "create container slow (Ctrl-C again to stop waiting)." in out
    )
    assert "✓ create container slow" in out  # the running change finished...
    assert "- create container after  not started: interrupted" in out  # ...nothing new began
    assert re.search(r"Apply interrupted: \d done, 0 failed, 1 not started\.", out), out
    assert "The engine differs from the stack; what is left:" in out
    assert "+ create container after" in out
    assert slow.inspect("after") is None
    state = (slow.inspect("slow") or {})["State"]
    assert state["Running"] and state["Health"]["Status"] == "healthy"
    assert not _lock_exists(slow)  # released on the way out
