"""The commands on Compose files, as a person runs them: format detection, the Compose options,
warnings, --strict, convert, and the engine commands (plan, saved plans, apply, status, logs,
exec, lock, graph, destroy) on a real dockerd."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port
from tests.support.stacks import fetch, unique_stack

COMPOSE = """\
services:
  web:
    image: ${IMAGE}
    command: ["sh", "-c", "echo $$GREETING > /www/index.html; exec httpd -f -p 80 -h /www"]
    environment:
      GREETING: ${GREETING:-hello}
    ports: ["127.0.0.1:${PORT}:80"]
    volumes: [www:/www]
    depends_on:
      setup: {condition: service_completed_successfully}
    healthcheck: {test: "wget -q -O /dev/null http://127.0.0.1/", interval: 300ms, retries: 20}
    stop_grace_period: 1s
  setup:
    image: ${IMAGE}
    command: ["sh", "-c", "echo setting up"]
    restart: "no"
volumes:
  www:
"""


def declarun(
    *args: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [sys.executable, "-m", "declarun", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200", **(env or {})},
        timeout=300,
        check=False,
    )
    assert "Traceback" not in done.stderr + done.stdout, done.stderr
    return done


def test_a_compose_file_is_detected_by_name_or_content(tmp_path: Path) -> None:
    text = "services:\n  web:\n    image: busybox:1.36\n    privileged: true\n"
    (tmp_path / "compose.yaml").write_text(text)
    (tmp_path / "app.yml").write_text(text)
    for name in ("compose.yaml", "app.yml"):
        done = declarun("validate", name, "-p", "shop", cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        assert f"{name}: valid stack 'shop' (1 container, 1 image" in done.stdout
        assert f"{name}:4:5: services.web.privileged: not supported, ignored" in done.stderr
        assert "1 warning (--strict makes them errors)" in done.stderr
    strict = declarun("validate", "compose.yaml", "--strict", cwd=tmp_path)
    assert strict.returncode == 1 and "(an error with --strict)" in strict.stderr
    as_stack = declarun("validate", "app.yml", "--format", "stack", cwd=tmp_path)
    assert as_stack.returncode == 1 and "unknown field 'services'" in as_stack.stderr
    (tmp_path / "stack.yaml").write_text("stack: s\ncontainers: {web: {image: busybox}}\n")
    misplaced = declarun("validate", "stack.yaml", "-p", "x", cwd=tmp_path)
    assert misplaced.returncode == 1
    assert (
        "-p/--project-name apply to Compose files; stack.yaml is a stack file" in misplaced.stderr
    )
    vars_file = declarun("validate", "compose.yaml", "--vars-file", "v.yaml", cwd=tmp_path)
    assert vars_file.returncode == 1 and "--vars-file applies to stack files" in vars_file.stderr


def test_render_env_files_override_files_and_variables(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        "services:\n  web:\n    image: busybox:${TAG}\n    environment: {A: $A}\n"
    )
    (tmp_path / "compose.override.yaml").write_text("services:\n  web:\n    user: nobody\n")
    (tmp_path / "other.yaml").write_text("services:\n  web:\n    working_dir: /srv\n")
    (tmp_path / ".env").write_text("TAG=1.36\nA=dotenv\n")
    (tmp_path / "ci.env").write_text("TAG=1.37\nA=ci\n")
    rendered = declarun("render", "compose.yaml", "--format", "json", cwd=tmp_path)
    web = json.loads(rendered.stdout)["containers"]["web"]
    assert (web["image"], web["env"], web["user"]) == ("busybox:1.36", {"A": "dotenv"}, "nobody")
    chosen = declarun(
        "render", "compose.yaml", "-f", "other.yaml", "--env-file", "ci.env", "--var", "A=flag",
        "--format", "json", cwd=tmp_path,
    )  # fmt: skip
    data = json.loads(chosen.stdout)
    web = data["containers"]["web"]
    assert (web["image"], web["env"], web.get("user"), web["working_dir"]) == (
        "busybox:1.37",
        {"A": "flag"},
        None,
        "/srv",
    )
    assert data["stack"] == tmp_path.name.lower().replace(".", "")


def test_convert_writes_a_stack_file_that_validates(tmp_path: Path) -> None:
    (tmp_path / "compose.yaml").write_text(
        textwrap.dedent(
            """\
            services:
              db:
                image: busybox
                environment: {POSTGRES_PASSWORD: "${DB_PASSWORD}"}
                container_name: database
            """
        )
    )
    env = {"DB_PASSWORD": "pw"}
    printed = declarun("convert", "compose.yaml", "-p", "shop", cwd=tmp_path, env=env)
    assert printed.returncode == 0, printed.stderr
    assert "pw" not in printed.stdout.replace("PASSWORD", "")
    written = declarun(
        "convert", "compose.yaml", "-p", "shop", "-o", "stack.yaml", cwd=tmp_path, env=env
    )
    assert written.returncode == 0
    assert (
        "Wrote stack.yaml: stack 'shop' with 1 container. Set in the environment before using it: DB_PASSWORD"
        in written.stderr
    )
    assert (tmp_path / "stack.yaml").read_text() == printed.stdout
    assert declarun("validate", "stack.yaml", cwd=tmp_path, env=env).returncode == 0
    broken = declarun("convert", "missing.yaml", cwd=tmp_path)
    assert broken.returncode == 1 and "missing.yaml:1:1: no such file" in broken.stderr


@pytest.mark.root
def test_engine_commands_on_a_compose_file(engine: Engine, tmp_path: Path) -> None:
    project, port = unique_stack("c"), free_port()
    (tmp_path / "compose.yaml").write_text(COMPOSE)
    env = {"IMAGE": engine.image, "PORT": str(port), "DECLARUN_HOST": engine.host}
    kind = ["--engine", "docker"] if engine.kind == "dockerd" else []
    target = [*kind, "--host", engine.host, "-p", project]

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return declarun(*args, cwd=tmp_path, env={**env, **extra})

    (tmp_path / "proxied.yaml").write_text(
        "services: {web: {image: busybox, networks: [proxy]}}\n"
        f"networks: {{proxy: {{external: true, name: {project}-absent}}}}\n"
    )
    absent = run("plan", "proxied.yaml", *target)
    assert absent.returncode == 1
    assert f"the external network {project}-absent does not exist" in absent.stdout
    try:
        planned = run("plan", "compose.yaml", *target, "-o", "plan.json")
        assert planned.returncode == 2, planned.stderr
        assert f"+ create container setup ({project}-setup)" in planned.stdout
        saved = json.loads((tmp_path / "plan.json").read_text())["source"]
        assert saved["project_name"] == project
        applied = run("apply", "plan.json", *kind, "--host", engine.host)
        assert applied.returncode == 0, applied.stdout + applied.stderr
        assert fetch(port).strip() == "hello"
        assert run("plan", "compose.yaml", *target).returncode == 0  # the job stays done
        status = run("status", "compose.yaml", *target, "--output", "json")
        rows = {r["name"]: r for r in json.loads(status.stdout)["resources"]}
        assert rows["setup"]["desired"] == "completed" and rows["web"]["health"] == "healthy"
        logs = run("logs", "compose.yaml", "setup", *target)
        assert "setting up" in logs.stdout
        executed = run("exec", "compose.yaml", *target, "web", "--", "cat", "/www/index.html")
        assert executed.stdout.strip() == "hello"
        changed = run("plan", "compose.yaml", *target, GREETING="bonjour")
        assert changed.returncode == 2 and 'env.GREETING: "hello" → "bonjour"' in changed.stdout
        graph = run("graph", "compose.yaml", "-p", project, "--format", "json")
        assert graph.returncode == 0 and "container:web" in graph.stdout
        locked = run("lock", "compose.yaml", *target)
        assert locked.returncode == 0 and (tmp_path / "compose.lock").is_file()
        pinned = yaml.safe_load((tmp_path / "compose.lock").read_text())
        assert engine.image in json.dumps(pinned)
    finally:
        destroyed = run("destroy", "compose.yaml", *target, "--volumes", "--yes")
        assert destroyed.returncode == 0, destroyed.stdout + destroyed.stderr
    owned = {"label": f"dev.declarun.stack={project}"}
    assert engine.client.api.containers(all=True, filters=owned) == []
