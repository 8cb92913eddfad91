"""One apply at a time per stack and engine, and Ctrl-C that finishes what runs, on each
engine: a second apply waits for the first (saying for whom) and the stack converges; with
``--lock-timeout 0`` it refuses at once; Ctrl-C starts nothing more, names what it waits for
and reports the state reached."""

from __future__ import annotations

import re
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.reconcile.engine_lock import lock_volume_name
from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port
from tests.support.stacks import fetch, wait_until, write_stack

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


@pytest.fixture
def web(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    cli = StackCli(engine, tmp_path, "")
    cli.port = free_port()  # type: ignore[attr-defined]
    write_stack(cli.path, cli.name, engine.image, cli.port)  # type: ignore[attr-defined]
    yield cli
    cli.clean()


def _lock_exists(cli: StackCli) -> bool:
    names = {v["Name"] for v in cli.engine.client.api.volumes().get("Volumes") or ()}
    return lock_volume_name(cli.name) in names


def test_a_second_apply_waits_for_the_first_and_the_stack_converges(web: StackCli) -> None:
    first = web.popen("apply", "stack.yaml")
    try:
        wait_until("the first apply to take the lock", lambda: _lock_exists(web), 60)
        refused = web.run("apply", "stack.yaml", "--lock-timeout", "0")
        assert refused.returncode == 1
        assert f"stack '{web.name}' is locked on this engine by 'declarun apply'" in (
            refused.stderr
        )
        second = web.run("apply", "stack.yaml", "--lock-timeout", "5m")
        out, err = first.communicate(timeout=300)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert first.returncode == 0, out + err
    assert second.returncode == 0, second.stdout + second.stderr
    assert "is locked by 'declarun apply'" in second.stderr
    assert "waiting for it" in second.stderr
    assert "No changes" in second.stdout  # the first did it all; nothing was undone
    assert fetch(web.port).strip() == "migrated"  # type: ignore[attr-defined]
    assert web.run("plan", "stack.yaml").returncode == 0
    assert not _lock_exists(web)


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
