"""Outputs that round-trip, on each engine: a lock file named after its stack file (two stacks
in one directory keep two locks), and ``-o -`` writing a saved plan to standard output."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine

STACK = """\
stack: {name}
containers:
  app:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""


@pytest.fixture
def two(engine: Engine, tmp_path: Path) -> Iterator[tuple[StackCli, StackCli]]:
    web = StackCli(engine, tmp_path, STACK, file="web.yaml")
    jobs = StackCli(engine, tmp_path, STACK, file="jobs.yaml")
    yield web, jobs
    web.clean()
    jobs.clean()


def test_each_stack_file_has_its_own_lock(two: tuple[StackCli, StackCli]) -> None:
    web, jobs = two
    assert web.run("lock", "web.yaml").returncode == 0
    assert jobs.run("lock", "jobs.yaml").returncode == 0
    assert json.loads((web.tmp / "web.lock").read_text())["stack"] == web.name
    assert json.loads((web.tmp / "jobs.lock").read_text())["stack"] == jobs.name
    assert not (web.tmp / "stack.lock").exists()
    applied = web.run("apply", "web.yaml", "--locked")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    digest = next(iter(json.loads((web.tmp / "web.lock").read_text())["images"].values()))
    pinned = next(iter(digest["platforms"].values()))
    assert (web.inspect("app") or {})["Config"]["Image"].endswith(f"@{pinned}")


def test_a_saved_plan_goes_to_stdout_with_dash(two: tuple[StackCli, StackCli]) -> None:
    web, _ = two
    planned = web.run("plan", "web.yaml", "-o", "-")
    assert planned.returncode == 2
    document = json.loads(planned.stdout)
    assert document["stack"] == web.name and document["source"]["file"].endswith("web.yaml")
    assert not (web.tmp / "-").exists()
    (web.tmp / "saved.json").write_text(planned.stdout)
    applied = web.run("apply", "saved.json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
