"""declarund SIGKILLed under live containers and started again: the containers keep running,
a container logging a numbered line every 50 ms has no gap and no duplicate in its log, a
published port answers while the daemon is down and after, health checks resume, restart
policies still apply, and the clients that were attached (``docker attach``, ``logs -f``, an
exec session) end instead of hanging; new ones work. ``declarun daemon check`` is clean.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime
from tests.daemon.images.daemon_support import DOCKER, docker
from tests.daemon.networks.daemon_net import network_daemon
from tests.support.daemon import DaemonProcess, daemon_check
from tests.support.registry import free_port
from tests.support.stacks import wait_until

pytestmark = needs_runtime

COUNTER = "i=0; while true; do i=$((i+1)); echo line-$i; sleep 0.05; done"


def _state(daemon: DaemonProcess, name: str) -> dict[str, object]:
    found: dict[str, object] = json.loads(docker(daemon, "inspect", name).stdout)[0]["State"]
    return found


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as response:
            return response.read() == b"up\n"
    except (OSError, urllib.error.URLError):
        return False


def _client(daemon: DaemonProcess, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [DOCKER, *args],
        env=daemon.env(),
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def test_sigkill_under_live_containers(tmp_path: Path, busybox_image_pushed: PushedImage) -> None:
    ref = busybox_image_pushed.reference
    port = free_port()
    with network_daemon(tmp_path) as daemon:
        docker(daemon, "pull", "-q", ref)
        docker(daemon, "run", "-d", "--name", "counter", ref, "sh", "-c", COUNTER)
        docker(daemon, "run", "-d", "--name", "web", "-p", f"127.0.0.1:{port}:80",
               "--health-cmd", "true", "--health-interval", "300ms", ref, "sh", "-c",
               "mkdir /www; echo up > /www/index.html; exec httpd -f -p 80 -h /www")  # fmt: skip
        docker(daemon, "run", "-d", "--name", "always", "--restart", "always", ref,
               "sleep", "600")  # fmt: skip
        wait_until("the port to answer", lambda: _answers(port), 30)
        wait_until(
            "web to be healthy",
            lambda: _state(daemon, "web").get("Health", {}).get("Status") == "healthy",  # type: ignore[union-attr]
            30,
        )
        pids = {name: _state(daemon, name)["Pid"] for name in ("counter", "web", "always")}
        clients = [
            _client(daemon, "attach", "counter"),
            _client(daemon, "logs", "-f", "counter"),
            _client(daemon, "exec", "-i", "web", "cat"),
        ]
        time.sleep(0.5)  # the clients are connected (they only have to be open at the kill)

        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        down_answers = [_answers(port) for _ in range(5)]
        for pid in pids.values():
            os.kill(int(str(pid)), 0)  # still running
        for client in clients:  # each ends now its daemon is gone: none hangs
            assert client.wait(timeout=30) is not None
            if client.stdin is not None:
                client.stdin.close()

        daemon.restart()
        started = time.monotonic()
        wait_until("the port to answer again", lambda: _answers(port), 30)
        answered_after = time.monotonic() - started
        for name, pid in pids.items():
            state = _state(daemon, name)
            assert state["Running"] is True and state["Pid"] == pid, (name, state)
        # Health checks resume: a new result after the restart.
        before = len(_state(daemon, "web")["Health"]["Log"])  # type: ignore[index]
        wait_until(
            "a health check after the restart",
            lambda: (
                _state(daemon, "web")["Health"]["Log"][-1]["Start"]  # type: ignore[index]
                > time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(started - 1))
            ),
            30,
        )
        assert before > 0
        # Restart policies still apply.
        os.kill(int(str(pids["always"])), signal.SIGKILL)
        wait_until(
            "always to be restarted",
            lambda: (
                _state(daemon, "always")["Pid"] not in (0, pids["always"])
                and _state(daemon, "always")["Running"] is True
            ),
            30,
        )
        # New clients work; the counter's log has every line once, in order.
        assert docker(daemon, "exec", "web", "cat", "/www/index.html").stdout == "up\n"
        time.sleep(0.3)
        lines = docker(daemon, "logs", "counter").stdout.split()
        numbers = [int(line.removeprefix("line-")) for line in lines]
        assert numbers == list(range(1, len(numbers) + 1)), numbers[:5]
        checked = daemon_check(daemon)
        assert checked.returncode == 0 and checked.stdout == "", checked.stdout + checked.stderr
        docker(daemon, "rm", "-f", "counter", "web", "always")
    print(f"port answered while down: {down_answers}; again {answered_after:.2f} s after start")
