"""A daemon killed with SIGKILL while containers run loses nothing when it comes back.

Containers are supervised by conmon, not by the daemon: they keep running while it is
down, an exit in that time is found from conmon's exit file (its mtime is the exit time),
and the restarted daemon watches the survivors again (a later stop is seen at once).
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import (
    force_cleanup,
    leftovers,
    needs_runtime,
    pull_image,
    remove_all,
)
from tests.daemon.images.daemon_support import docker, need_docker
from tests.support.daemon import DaemonProcess, running_daemon

pytestmark = needs_runtime
# Generous: only bounds how long a broken daemon can hang the test, never asserts speed.
_DEADLINE = 60.0


def _state(daemon: DaemonProcess, ref: str) -> dict:  # type: ignore[type-arg]
    doc: dict = json.loads(docker(daemon, "inspect", ref).stdout)[0]["State"]  # type: ignore[type-arg]
    return doc


def _wait_for(path: Path) -> None:
    deadline = time.monotonic() + _DEADLINE
    while not path.exists():
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_sigkilled_daemon_restarts_with_every_container(
    tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    need_docker()
    ctl = tmp_path / "ctl"
    ctl.mkdir()
    data_root = tmp_path / "declarund-root"
    try:
        with running_daemon(tmp_path) as first:
            image = pull_image(first, busybox_image_pushed.reference)
            docker(first, "run", "-d", "--name", "runner", image, "sh", "-c",
                            "echo runner-up; exec sleep 600").stdout.strip()  # fmt: skip
            waiter = docker(first, "run", "-d", "--name", "waiter", "-v", f"{ctl}:/ctl", image,
                            "sh", "-c", "echo waiting; while [ ! -e /ctl/go ]; do sleep 0.05; done;"
                            " echo bye; exit 42").stdout.strip()  # fmt: skip
            done = docker(
                first, "run", "-d", "--name", "done", image, "sh", "-c", "echo early; exit 5"
            )
            docker(first, "wait", done.stdout.strip())
            docker(first, "create", "--name", "never-started", image, "true")
            runner_pid = _state(first, "runner")["Pid"]
            assert runner_pid > 0
            first.stop(signal.SIGKILL)
            assert first.process.returncode == -signal.SIGKILL
            # While no daemon runs: the runner lives on, the waiter ends.
            os.kill(runner_pid, 0)
            (ctl / "go").touch()
            exit_file = data_root / "exits" / waiter
            _wait_for(exit_file)
            exited_at = exit_file.stat().st_mtime
        with running_daemon(tmp_path) as second:
            try:
                names = docker(second, "ps", "-a", "--format", "{{.Names}}").stdout.split()
                assert sorted(names) == ["done", "never-started", "runner", "waiter"]
                state = _state(second, "runner")
                assert state["Running"] is True and state["Pid"] == runner_pid
                os.kill(runner_pid, 0)
                state = _state(second, "waiter")
                assert state["Status"] == "exited" and state["ExitCode"] == 42
                finished = state["FinishedAt"]
                assert finished.startswith(
                    time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(int(exited_at)))
                )
                assert _state(second, "done")["ExitCode"] == 5
                assert _state(second, "never-started")["Status"] == "created"
                assert docker(second, "logs", "runner").stdout == "runner-up\n"
                assert docker(second, "logs", "waiter").stdout == "waiting\nbye\n"
                assert docker(second, "logs", "done").stdout == "early\n"
                # The exit watch is armed again: a kill is recorded.
                docker(second, "kill", "runner")
                assert docker(second, "wait", "runner").stdout.strip() == "137"
                # A recovered container starts again normally.
                docker(second, "start", "done")
                assert docker(second, "wait", "done").stdout.strip() == "5"
                assert docker(second, "logs", "done").stdout == "early\nearly\n"
            finally:
                remove_all(second)
            assert leftovers(data_root) == {"runtime": [], "processes": [], "mounts": []}
            assert not [p for p in (data_root / "containers").iterdir()]
    finally:
        force_cleanup(data_root)


def test_unfinished_create_is_swept_at_start(tmp_path: Path) -> None:
    need_docker()
    data_root = tmp_path / "declarund-root"
    orphan = "0" * 63 + "a"
    try:
        with running_daemon(tmp_path):
            pass
        # What a daemon killed between preparing files and storing the record leaves.
        (data_root / "containers" / orphan).mkdir(parents=True)
        (data_root / "containers" / orphan / "hosts").write_text("x")
        (data_root / "snapshots" / "containers" / orphan / "upper").mkdir(parents=True)
        with running_daemon(tmp_path) as again:
            assert docker(again, "ps", "-aq").stdout.strip() == ""
        assert not (data_root / "containers" / orphan).exists()
        assert not (data_root / "snapshots" / "containers" / orphan).exists()
    finally:
        force_cleanup(data_root)
