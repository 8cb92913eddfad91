"""A broken deploy is reported as broken, on each engine: ``apply`` exits 1 with the failure
report when a container dies after its start or crash-loops under a restart policy, ``plan``
says it keeps dying instead of proposing the same start forever, ``status`` shows it as a
problem."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine

BROKEN = """\
stack: {name}
containers:
  fine:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
  dies:
    image: {image}
    command: ["sh", "-c", "echo cannot read the config; exit 3"]
  loops:
    image: {image}
    command: ["sh", "-c", "echo looping; exit 4"]
    restart: unless-stopped
"""


@pytest.fixture(autouse=True)
def default_settle(monkeypatch: pytest.MonkeyPatch) -> None:
    """The settle period is what this module tests: its applies run with declarun's own
    default, not the short one of the other tests (``tests.support.settle``)."""
    monkeypatch.delenv("DECLARUN_SETTLE", raising=False)


@pytest.fixture
def broken(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    cli = StackCli(engine, tmp_path, BROKEN)
    yield cli
    cli.clean()


def test_a_broken_deploy_fails_with_the_failure_report(broken: StackCli) -> None:
    applied = broken.run("apply", "stack.yaml")
    assert applied.returncode == 1, applied.stdout + applied.stderr
    out = applied.stdout
    # Whether it died before or after its start was checked, it is told once, with the
    # report: the exit code and its log tail.
    assert "dies is not running: exited with code 3" in out, out
    assert out.count("| cannot read the config") == 1, out
    assert "✗ container loops: loops " in out and "| looping" in out, out
    assert "container fine:" not in out
    assert "Apply complete" not in out

    # The next plan does not propose the same start again: it says why it leaves them.
    planned = broken.run("plan", "stack.yaml")
    assert planned.returncode == 0, planned.stderr
    assert "the container dies at start: it exited with code 3" in planned.stdout
    assert "keeps dying" in planned.stdout
    assert "No changes to make." in planned.stdout
    assert "2 containers keep dying (dies, loops)" in planned.stdout
    assert "~ start" not in planned.stdout

    started = (broken.inspect("dies") or {})["State"]["StartedAt"]
    again = broken.run("apply", "stack.yaml")
    assert again.returncode == 1
    assert "exited with code 3" in again.stdout and "| cannot read the config" in again.stdout
    assert (broken.inspect("dies") or {})["State"]["StartedAt"] == started  # not started again

    status = broken.run("status", "stack.yaml", "--output", "json")
    rows = {r["name"]: r for r in json.loads(status.stdout)["resources"]}
    assert rows["fine"]["problem"] is None
    assert rows["dies"]["problem"] == "dies at start (exit 3)"
    assert rows["loops"]["problem"].startswith("crash-looping (")
    table = broken.run("status", "stack.yaml").stdout
    assert "failing: dies at start (exit 3)" in table
    assert "failing: crash-looping" in table


def test_a_fixed_stack_replaces_the_broken_containers_and_succeeds(broken: StackCli) -> None:
    assert broken.run("apply", "stack.yaml").returncode == 1
    broken.write(BROKEN.replace("exit 3", "exec sleep 3600").replace("exit 4", "exec sleep 3600"))
    fixed = broken.run("apply", "stack.yaml")
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert "Apply complete: 2 recreated" in fixed.stdout
    assert broken.run("plan", "stack.yaml").returncode == 0


NO_HEALTH = """\
stack: {name}
containers:
  db:
    image: {image}
    command: ["sleep", "3600"]
  web:
    image: {image}
    command: ["sleep", "3600"]
    depends_on: {{db: healthy}}
"""


def test_waiting_for_a_health_check_nobody_has_is_refused_before_anything_is_made(
    engine: Engine, tmp_path: Path
) -> None:
    cli = StackCli(engine, tmp_path, NO_HEALTH)
    try:
        assert cli.run("pull", "stack.yaml").returncode == 0  # the image (no HEALTHCHECK) is known
        planned = cli.run("plan", "stack.yaml")
        assert planned.returncode == 1
        assert "web waits for db to be healthy, but db has no health check" in planned.stdout
        applied = cli.run("apply", "stack.yaml")
        assert applied.returncode == 1
        assert "cannot be made" in applied.stderr
        label = {"label": f"dev.declarun.stack={cli.name}"}
        assert engine.client.api.containers(all=True, filters=label) == []
        assert engine.client.api.networks(filters=label) == []
    finally:
        cli.clean()


DIES_LATER = """\
stack: {name}
containers:
  slow-crash:
    image: {image}
    command: ["sh", "-c", "sleep 4; echo gave up; exit 1"]
"""


def test_settle_sets_how_long_a_started_container_must_stay_up(
    engine: Engine, tmp_path: Path
) -> None:
    cli = StackCli(engine, tmp_path, DIES_LATER)
    try:
        # It dies 4 s after its start: a settle period longer than that sees it die.
        longer = cli.run("apply", "stack.yaml", "--settle", "8s")
        assert longer.returncode == 1, longer.stdout + longer.stderr
        assert "slow-crash is not running: exited with code 1" in longer.stdout, longer.stdout
        assert "| gave up" in longer.stdout
        bad = subprocess.run(
            cli.command("apply", "stack.yaml"),
            env=cli.env(DECLARUN_SETTLE="soon"),
            cwd=cli.tmp,
            capture_output=True,
            text=True,
            check=False,
            timeout=120,
        )
        assert bad.returncode == 2, bad.stdout + bad.stderr
        assert "Traceback" not in bad.stderr
        assert "--settle" in bad.stderr and "soon" in bad.stderr, bad.stderr
    finally:
        cli.clean()
