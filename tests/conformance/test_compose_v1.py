"""Debian's docker-compose v1 (1.29, docker-py 5) as a client, on declarund and on dockerd.

One multi-service file with two networks, a named volume, a link and health checks (``web``
waits for ``db`` to be healthy); the flow people run: ``up -d``, ``ps``, ``logs``, ``exec``,
``down -v``. Both engines must give the same observable outcome.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conformance.conftest import Pair, Side, unique

COMPOSE = "/usr/bin/docker-compose"

_FILE = """\
version: "2.4"
services:
  db:
    image: {image}
    command: ["sh", "-c", "echo db-ready > /data/ready; echo db started; exec sleep 300"]
    volumes: ["data:/data"]
    networks: [back]
    healthcheck:
      test: ["CMD", "test", "-f", "/data/ready"]
      interval: 1s
      timeout: 2s
      retries: 30
  web:
    image: {image}
    command: ["sh", "-c", "echo web started; exec sleep 300"]
    depends_on:
      db: {{condition: service_healthy}}
    links: ["db:database"]
    networks: [front, back]
  edge:
    image: {image}
    command: ["sleep", "300"]
    networks: [front]
networks:
  front: {{}}
  back: {{}}
volumes:
  data: {{}}
"""


def _compose(
    side: Side, project: Path, *args: str, check: bool = True
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": side.engine.host, "COMPOSE_INTERACTIVE_NO_CLI": "1"}
    done = subprocess.run([COMPOSE, "--no-ansi", "-p", project.name, "-f", str(project / "docker-compose.yml"), *args],
                          env=env, capture_output=True, text=True, timeout=240, check=False)  # fmt: skip
    if check and done.returncode != 0:
        raise AssertionError(f"{side.kind}: docker-compose {' '.join(args)}: {done.stderr}")
    return done


def _flow(side: Side, project: Path) -> list[object]:
    project.mkdir()
    (project / "docker-compose.yml").write_text(_FILE.format(image=side.image))
    side.later(lambda: _compose(side, project, "down", "-v", "-t", "0", check=False))
    _compose(side, project, "up", "-d")
    ps = _compose(side, project, "ps").stdout
    states = sorted(
        (line.split()[0].removeprefix(project.name + "_"), "Up" in line, "healthy" in line)
        for line in ps.splitlines()[2:]
    )
    logs = _compose(side, project, "logs", "--no-color").stdout
    by_link = _compose(side, project, "exec", "-T", "web", "cat", "/data/ready", check=False)
    reach = [
        _compose(side, project, "exec", "-T", service, "ping", "-c", "1", "-W", "2", peer,
                 check=False).returncode == 0
        for service, peer in (("web", "database"), ("web", "db"), ("web", "edge"), ("edge", "db"))
    ]  # fmt: skip
    volume = _compose(side, project, "exec", "-T", "db", "cat", "/data/ready").stdout
    _compose(side, project, "down", "-v", "-t", "1")
    left = side.api.containers(
        all=True, filters={"label": f"com.docker.compose.project={project.name}"}
    )
    networks = side.api.networks(filters={"label": f"com.docker.compose.project={project.name}"})
    volumes = side.api.volumes(filters={"label": f"com.docker.compose.project={project.name}"})
    return [
        states,
        "db started" in logs and "web started" in logs,
        by_link.returncode != 0,  # web has no volume of its own
        reach,
        volume,
        [left, networks, volumes["Volumes"] or []],
    ]


@pytest.mark.skipif(
    shutil.which(COMPOSE) is None, reason="Debian's docker-compose is not installed"
)
def test_up_ps_logs_exec_down(pair: Pair, tmp_path: Path) -> None:
    results = {side.kind: _flow(side, tmp_path / unique(side.kind)) for side in pair.both}
    assert results["declarund"] == results["dockerd"]
    states = results["declarund"][0]
    assert [name for name, _, _ in states] == ["db_1", "edge_1", "web_1"]
    assert all(up for _, up, _ in states) and states[0][2]  # db healthy
    assert results["declarund"][3] == [True, True, True, False]  # edge is not on db's network
    assert results["declarund"][4] == "db-ready\n"
