"""Engine selection, declarund autostart, and ``declarun daemon status|stop``, for real."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.config import DEFAULT_HOST
from declarun.engine.connect import (
    DOCKER_DEFAULT_HOST,
    EngineChoice,
    choose_engine,
    connect,
    daemon_pid,
    ping,
    start_daemon,
    stop_daemon,
)
from declarun.errors import EngineError

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="declarund needs root")


def test_default_is_the_builtin_daemon_with_autostart() -> None:
    choice = choose_engine(environ={})
    assert choice == EngineChoice("declarun", DEFAULT_HOST, autostart=True)


def test_host_flag_beats_the_environment_and_never_autostarts() -> None:
    env = {"DECLARUN_HOST": "unix:///tmp/env.sock"}
    assert choose_engine(environ=env) == EngineChoice("declarun", "unix:///tmp/env.sock")
    flagged = choose_engine("unix:///tmp/flag.sock", environ=env)
    assert flagged == EngineChoice("declarun", "unix:///tmp/flag.sock")


def test_docker_engine_uses_docker_host_or_its_default_socket() -> None:
    assert choose_engine(engine="docker", environ={}).host == DOCKER_DEFAULT_HOST
    env = {"DOCKER_HOST": "unix:///tmp/docker.sock"}
    assert choose_engine(engine="docker", environ=env).host == "unix:///tmp/docker.sock"


def test_a_malformed_address_is_refused() -> None:
    with pytest.raises(EngineError, match="expected unix:///path"):
        choose_engine("tcp://1.2.3.4:2375", environ={})


def test_nothing_listening_is_a_clear_error(tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/none.sock"
    assert not ping(host)
    with pytest.raises(EngineError, match="no engine answers at"):
        connect(EngineChoice("declarun", host))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # Unix socket paths are limited to ~108 bytes; pytest's tmp_path can be longer.
    path = Path(tempfile.mkdtemp(prefix="dc-", dir="/tmp"))
    yield path
    subprocess.run(["rm", "-rf", str(path)], check=False)


@needs_root
def test_autostart_then_status_and_stop(short_dir: Path) -> None:
    host = f"unix://{short_dir}/d.sock"
    log = start_daemon(host, data_root=short_dir / "root", log_path=short_dir / "d.log")
    pid = daemon_pid(host)
    try:
        assert ping(host)
        assert pid is not None
        engine = connect(EngineChoice("declarun", host))
        assert engine.version().version
        engine.close()
        status = subprocess.run(
            [sys.executable, "-m", "declarun", "daemon", "status", "--host", host],
            capture_output=True,
            text=True,
            check=False,
        )
        assert status.returncode == 0, status.stderr
        assert f"is running at {host}, pid {pid}" in status.stdout
        stopped = subprocess.run(
            [sys.executable, "-m", "declarun", "daemon", "stop", "--host", host],
            capture_output=True,
            text=True,
            check=False,
        )
        assert stopped.returncode == 0, stopped.stderr
        assert f"(pid {pid}) stopped" in stopped.stdout
        assert not ping(host)
        assert "declarund stopped" in log.read_text()
        again = subprocess.run(
            [sys.executable, "-m", "declarun", "daemon", "status", "--host", host],
            capture_output=True,
            text=True,
            check=False,
        )
        assert again.returncode == 1
        assert "not running" in again.stdout
    finally:
        if pid is not None and Path(f"/proc/{pid}").exists():
            os.kill(pid, signal.SIGKILL)


@needs_root
def test_a_daemon_that_cannot_start_is_reported_with_its_log(short_dir: Path) -> None:
    data_root = short_dir / "root"
    data_root.write_text("a file, not a directory")
    with pytest.raises(EngineError, match="exited before answering") as failure:
        start_daemon(
            f"unix://{short_dir}/d.sock",
            data_root=data_root,
            log_path=short_dir / "d.log",
            timeout=20,
        )
    assert "is a file" in str(failure.value)


def test_stop_when_nothing_runs_is_a_no_op(tmp_path: Path) -> None:
    assert stop_daemon(f"unix://{tmp_path}/none.sock") is None


def test_the_swarm_engine_follows_docker_host() -> None:
    env = {"DOCKER_HOST": "unix:///tmp/manager.sock", "DECLARUN_HOST": "unix:///tmp/x.sock"}
    assert choose_engine(engine="swarm", environ=env) == EngineChoice(
        "swarm", "unix:///tmp/manager.sock"
    )


@needs_root
def test_an_engine_outside_a_swarm_is_refused_with_a_message(
    dockerd_engine: object, tmp_path: Path
) -> None:
    from declarun.engine.connect import connect_swarm

    host = dockerd_engine.host  # type: ignore[attr-defined]
    with pytest.raises(EngineError, match="is not part of a swarm: --engine swarm needs"):
        connect_swarm(EngineChoice("swarm", host))
    stack = tmp_path / "stack.yaml"
    stack.write_text("stack: s\ncontainers:\n  a: {image: busybox}\n")
    done = subprocess.run(
        [sys.executable, "-m", "declarun", "plan", str(stack), "--engine", "swarm", "--host", host],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 1
    assert "is not part of a swarm" in done.stderr
    assert "Traceback" not in done.stderr
