"""The engine commands as a person runs them (``python -m declarun ...``), on each engine
(declarund and a real dockerd): exit codes, output, saved plans, status, logs, exec, watch, and
clean errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import docker.errors
import pytest

from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port
from tests.support.stacks import fetch, unique_stack, wait_until, write_stack


class Cli:
    """Runs declarun against the test engine, in the stack's directory."""

    def __init__(self, engine: Engine, tmp: Path) -> None:
        self.engine = engine
        self.tmp = tmp
        self.name = unique_stack("c")
        self.port = free_port()
        self.stack = write_stack(tmp / "stack.yaml", self.name, engine.image, self.port)

    def command(self, subcommand: str, *args: str) -> list[str]:
        # --host first: after "--" it would belong to the command exec runs.
        return [sys.executable, "-m", "declarun", subcommand, "--host", self.engine.host, *args]

    def env(self) -> dict[str, str]:
        # DECLARUN_HOST too, so no mistake can ever autostart the machine's default daemon.
        return {**os.environ, "NO_COLOR": "1", "COLUMNS": "200", "DECLARUN_HOST": self.engine.host}

    def run(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            self.command(*args),
            capture_output=True,
            text=True,
            check=False,
            cwd=self.tmp,
            env=self.env(),
            timeout=300,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def container_id(self, name: str) -> str | None:
        try:
            return str(self.engine.client.api.inspect_container(f"{self.name}-{name}")["Id"])
        except docker.errors.NotFound:
            return None


@pytest.fixture
def cli(engine: Engine, tmp_path: Path) -> Iterator[Cli]:
    runner = Cli(engine, tmp_path)
    yield runner
    runner.run("destroy", "stack.yaml", "--volumes", "--yes")
    for volume in engine.client.api.volumes().get("Volumes") or ():
        if volume["Name"].startswith(f"{runner.name}-"):
            engine.client.api.remove_volume(volume["Name"])


def test_plan_exit_codes_apply_output_and_no_op(cli: Cli) -> None:
    planned = cli.run("plan", "stack.yaml")
    assert planned.returncode == 2, planned.stderr
    assert "+ create container web" in planned.stdout
    assert "Plan: 6 to create, 0 to recreate, 0 to remove" in planned.stdout

    dry = cli.run("apply", "stack.yaml", "--dry-run")
    assert dry.returncode == 2
    assert cli.container_id("web") is None  # a dry run touches nothing

    applied = cli.run("apply", "stack.yaml")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert "✓ create container db" in applied.stdout
    assert "Apply complete:" in applied.stdout
    assert fetch(cli.port).strip() == "migrated"

    assert cli.run("plan", "stack.yaml").returncode == 0
    again = cli.run("apply", "stack.yaml")
    assert again.returncode == 0
    assert "No changes" in again.stdout and "no action taken" in again.stdout

    as_json = cli.run("plan", "stack.yaml", "--var", "mode=two", "--output", "json")
    assert as_json.returncode == 2
    document = json.loads(as_json.stdout)
    (change,) = [c for c in document["changes"] if c["action"] != "noop"]
    assert change["id"] == "container:web" and change["action"] == "recreate"


def test_plan_errors_exit_1_with_a_message(cli: Cli) -> None:
    broken = cli.tmp / "broken.yaml"
    broken.write_text("stack: x\ncontainers:\n  web: {image: busybox, portz: []}\n")
    invalid = cli.run("plan", "broken.yaml")
    assert invalid.returncode == 1
    assert "portz" in invalid.stderr
    # A name taken by an object declarun does not own is never touched.
    cli.engine.docker("create", "--name", f"{cli.name}-web", cli.engine.image, "true")
    try:
        foreign = cli.run("plan", "stack.yaml")
        assert foreign.returncode == 1
        assert "declarun never touches objects it does not own" in foreign.stdout
        refused = cli.run("apply", "stack.yaml")
        assert refused.returncode == 1
        assert "cannot be made" in refused.stderr
        assert cli.container_id("db") is None
    finally:
        cli.engine.docker("rm", "-f", f"{cli.name}-web")


def test_no_engine_is_a_clean_error(cli: Cli, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "declarun", "plan", "stack.yaml", "--host",
         f"unix://{tmp_path}/nothing.sock"],
        capture_output=True, text=True, check=False, cwd=cli.tmp, env=cli.env(),
    )  # fmt: skip
    assert done.returncode == 1
    assert "error: no engine answers at" in done.stderr
    assert "Traceback" not in done.stderr


def test_saved_plan_is_applied_or_refused_when_stale(cli: Cli) -> None:
    saved = cli.run("plan", "stack.yaml", "-o", "plan.json")
    assert saved.returncode == 2
    assert json.loads((cli.tmp / "plan.json").read_text())["source"]["file"].endswith("stack.yaml")
    cli.engine.docker("volume", "create", "--label", f"dev.declarun.stack={cli.name}",
                              f"{cli.name}-data")  # fmt: skip
    stale = cli.run("apply", "plan.json")
    assert stale.returncode == 1
    assert "the actual state changed since the plan was made" in stale.stderr
    assert f"volume {cli.name}-data appeared" in stale.stderr  # it says what moved
    assert "re-run plan" in stale.stderr
    assert cli.container_id("db") is None
    cli.engine.docker("volume", "rm", f"{cli.name}-data")
    applied = cli.run("apply", "plan.json")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert fetch(cli.port).strip() == "migrated"


def test_status_logs_and_exec(cli: Cli) -> None:
    assert cli.run("apply", "stack.yaml").returncode == 0
    status = cli.run("status", "stack.yaml", "--output", "json")
    assert status.returncode == 0
    rows = {(r["kind"], r["name"]): r for r in json.loads(status.stdout)["resources"]}
    assert rows[("container", "db")]["health"] == "healthy"
    assert rows[("container", "migrate")]["actual"] == "exited (0)"
    assert rows[("container", "web")]["ports"] == [f"127.0.0.1:{cli.port}->80/tcp"]
    assert all(r["action"] == "noop" for r in rows.values())
    table = cli.run("status", "stack.yaml")
    assert "container web" in table.stdout and "healthy" in table.stdout

    logs = cli.run("logs", "stack.yaml")
    assert logs.returncode == 0
    assert "db      | db up" in logs.stdout
    assert "migrate | migration done" in logs.stdout
    only = cli.run("logs", "stack.yaml", "migrate", "--timestamps", "--tail", "1")
    assert only.stdout.startswith("migrate | 20")  # the engine's timestamp follows the prefix
    assert "db up" not in only.stdout

    ran = cli.run("exec", "stack.yaml", "web", "--", "sh", "-c", "echo $MODE; exit 7")
    assert ran.returncode == 7
    assert ran.stdout == "one\n"
    unknown = cli.run("exec", "stack.yaml", "nope", "--", "true")
    assert unknown.returncode == 1
    assert "no container nope in the stack" in unknown.stderr


def test_watch_heals_removal_and_follows_the_file(cli: Cli) -> None:
    watcher = subprocess.Popen(
        cli.command("watch", "stack.yaml"),
        cwd=cli.tmp,
        env=cli.env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        wait_until("the first apply", lambda: cli.container_id("web") is not None, 120)
        wait_until("web to serve", lambda: _serves(cli.port), 60)
        first = cli.container_id("web")
        cli.engine.docker("rm", "-f", f"{cli.name}-web")
        wait_until(
            "watch to recreate web",
            lambda: cli.container_id("web") not in (None, first) and _serves(cli.port),
            60,
        )
        healed = cli.container_id("web")
        text = cli.stack.read_text().replace("mode: one", "mode: edited")
        cli.stack.write_text(text)
        wait_until("watch to apply the edited file", lambda: _mode(cli) == "MODE=edited", 60)
        assert cli.container_id("web") != healed
    finally:
        watcher.send_signal(signal.SIGINT)
        out, err = watcher.communicate(timeout=60)
    assert watcher.returncode == 0, err
    assert "Traceback" not in err
    assert "Stopped watching." in out
    assert "env.MODE" in out


def _serves(port: int) -> bool:
    try:
        return fetch(port).strip() == "migrated"
    except OSError:
        return False


def _mode(cli: Cli) -> str | None:
    try:
        env = cli.engine.client.api.inspect_container(f"{cli.name}-web")["Config"]["Env"]
    except docker.errors.NotFound:
        return None
    return next((e for e in env if e.startswith("MODE=")), None)


def test_lock_pins_digests_and_locked_requires_a_fresh_lock(cli: Cli) -> None:
    missing = cli.run("apply", "stack.yaml", "--locked")
    assert missing.returncode == 1
    assert "no lock file" in missing.stderr
    locked = cli.run("lock", "stack.yaml")
    assert locked.returncode == 0, locked.stderr
    document = json.loads((cli.tmp / "stack.lock").read_text())
    (entry,) = document["images"].values()
    (digest,) = entry["platforms"].values()
    assert digest.startswith("sha256:")
    applied = cli.run("apply", "stack.yaml", "--locked")
    assert applied.returncode == 0, applied.stdout + applied.stderr
    image = cli.engine.client.api.inspect_container(f"{cli.name}-web")["Config"]["Image"]
    assert image.endswith(f"@{digest}")  # the locked digest runs, not the moving tag
    # A lock for another stack is stale: --locked refuses, naming why.
    document["stack"] = "other"
    (cli.tmp / "stack.lock").write_text(json.dumps(document))
    stale = cli.run("plan", "stack.yaml", "--locked")
    assert stale.returncode == 1
    assert "is stale" in stale.stderr and "not 'c" in stale.stderr


def test_engine_docker_follows_docker_host(cli: Cli) -> None:
    env = {**cli.env(), "DOCKER_HOST": cli.engine.host, "DECLARUN_HOST": "unix:///nonexistent"}
    done = subprocess.run(
        [sys.executable, "-m", "declarun", "plan", "--engine", "docker", "stack.yaml"],
        capture_output=True, text=True, check=False, cwd=cli.tmp, env=env,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "+ create container web" in done.stdout
