"""Destruction is confirmed, on each engine: destroy (and an apply that deletes volumes)
shows the plan and asks on a terminal; off a terminal nothing is asked, but deleting
volumes then needs --yes."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine

STACK = """\
stack: {name}
volumes:
  data: {{}}
containers:
  app:
    image: {image}
    command: ["sleep", "3600"]
    volumes: ["data:/data"]
    stop_grace_period: 1s
"""


@pytest.fixture
def applied(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    cli = StackCli(engine, tmp_path, STACK)
    done = cli.run("apply", "stack.yaml")
    assert done.returncode == 0, done.stdout + done.stderr
    yield cli
    cli.clean()


def _volume_exists(cli: StackCli) -> bool:
    names = {v["Name"] for v in cli.engine.client.api.volumes().get("Volumes") or ()}
    return f"{cli.name}-data" in names


def _on_a_terminal(cli: StackCli, answer: bytes, *args: str) -> tuple[int, str]:
    """Run declarun with a pseudo-terminal as stdin/stdout, answer its question."""
    leader, follower = pty.openpty()
    process = subprocess.Popen(
        cli.command(*args), stdin=follower, stdout=follower, stderr=follower,
        cwd=cli.tmp, env=cli.env(),
    )  # fmt: skip
    os.close(follower)
    seen = b""
    deadline = time.monotonic() + 120
    try:
        while b"Only 'yes' goes ahead" not in seen:
            assert time.monotonic() < deadline, seen
            if select.select([leader], [], [], 1)[0]:
                seen += os.read(leader, 4096)
        os.write(leader, answer + b"\n")
        while process.poll() is None or select.select([leader], [], [], 0)[0]:
            assert time.monotonic() < deadline, seen
            if select.select([leader], [], [], 1)[0]:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                seen += chunk
        return process.wait(60), seen.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


def test_destroy_shows_the_plan_and_asks_on_a_terminal(applied: StackCli) -> None:
    code, said = _on_a_terminal(applied, b"no", "destroy", "stack.yaml", "--volumes")
    assert code == 1, said
    assert f"- remove container app ({applied.name}-app)" in said  # the plan came first
    assert "This deletes volume data and the data in them." in said
    assert "Destroy cancelled: nothing was changed" in said
    assert applied.inspect("app") is not None and _volume_exists(applied)
    code, said = _on_a_terminal(applied, b"yes", "destroy", "stack.yaml", "--volumes")
    assert code == 0, said
    assert "Destroy complete" in said
    assert applied.inspect("app") is None and not _volume_exists(applied)


def test_off_a_terminal_deleting_volumes_needs_yes(applied: StackCli) -> None:
    refused = applied.run("destroy", "stack.yaml", "--volumes", input="")
    assert refused.returncode == 1
    assert "Destroy would delete volume data and the data in them" in refused.stderr
    assert "give --yes to confirm" in refused.stderr
    assert applied.inspect("app") is not None and _volume_exists(applied)
    kept = applied.run("destroy", "stack.yaml", input="")  # no volume goes: nothing to ask
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert applied.inspect("app") is None and _volume_exists(applied)


def test_an_apply_that_deletes_volumes_needs_yes_off_a_terminal(applied: StackCli) -> None:
    applied.write(STACK.replace("volumes:\n  data: {{}}\n", "").replace(
        '    volumes: ["data:/data"]\n', ""
    ))  # fmt: skip
    refused = applied.run("apply", "stack.yaml", "--volumes", input="")
    assert refused.returncode == 1
    assert "Apply would delete volume data" in refused.stderr
    assert _volume_exists(applied)
    done = applied.run("apply", "stack.yaml", "--volumes", "--auto-approve", input="")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not _volume_exists(applied)


def test_volumes_deleted_outside_the_plan_are_asked_about_too() -> None:
    # A Swarm's volumes are removed node by node after the plan: even an empty plan then
    # needs --yes off a terminal (pytest's stdin is not one).
    from declarun.cli.confirm import Declined, confirmation
    from declarun.plan.model import Plan

    empty = Plan(stack="s", changes=(), fingerprint="f", created_at="2026-01-01T00:00:00Z")
    confirmation("Destroy", yes=False, always=True)(empty)  # nothing to ask about
    with pytest.raises(Declined, match=r"s-data and the data in them; .* give --yes"):
        confirmation("Destroy", yes=False, always=True, volumes_besides=["s-data"])(empty)
    confirmation("Destroy", yes=True, always=True, volumes_besides=["s-data"])(empty)
