"""Crash at every fail point of declarund: the daemon SIGKILLs itself there, it is started
again, ``declarun daemon check`` finds nothing wrong, and the interrupted operation, tried
again, succeeds.

One daemon per group of points (its fail points are armed through a file it re-reads, so a
group walks its points one after the other on the same data root); every point of
:data:`declarun.daemon.failpoints.POINTS` belongs to exactly one group.
"""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from declarun.daemon import failpoints
from tests.daemon.builder.support import docker_build
from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime
from tests.daemon.images.daemon_support import docker
from tests.daemon.networks.daemon_net import network_daemon
from tests.support.daemon import DaemonProcess, arm_failpoints, daemon_check

pytestmark = needs_runtime


@dataclass
class Walk:
    """One group's daemon, the file arming its fail points, and what the steps share."""

    daemon: DaemonProcess
    armed: Path
    ref: str
    tmp: Path
    shared: dict[str, str]

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return docker(self.daemon, *args, check=check)


@dataclass(frozen=True)
class Crash:
    """A fail point, the operation that passes it, and how to tell the retry worked."""

    point: str
    act: Callable[[Walk], object]
    #: Runs after the restart, the check and the retry of ``act`` (which must succeed).
    verify: Callable[[Walk], None] = lambda walk: None
    prepare: Callable[[Walk], None] = lambda walk: None
    #: The operation tried again (default: ``act`` itself, checked).
    retry: Callable[[Walk], None] | None = None


def _inspect(walk: Walk, what: str) -> dict[str, object]:
    document: list[dict[str, object]] = json.loads(walk.cli("inspect", what).stdout)
    return document[0]


def _networks_of(walk: Walk, cid: str) -> set[str]:
    settings = _inspect(walk, cid)["NetworkSettings"]
    assert isinstance(settings, dict)
    return set(settings["Networks"])


def _act(args: Callable[[Walk], list[str]]) -> Callable[[Walk], object]:
    return lambda walk: walk.cli(*args(walk), check=False)


def _ok(args: Callable[[Walk], list[str]]) -> Callable[[Walk], None]:
    def run(walk: Walk) -> None:
        walk.cli(*args(walk))

    return run


def _committed(walk: Walk) -> None:
    walk.cli("image", "inspect", "crash-commit:1")
    _running(walk)


def _removed(walk: Walk) -> None:
    assert walk.shared["cid"] not in walk.cli("ps", "-aq", "--no-trunc").stdout


def _network_ready(walk: Walk) -> None:
    walk.cli("network", "create", "crashnet")
    _start_container(walk)
    walk.cli("start", walk.shared["cid"])


def _volume_gone(walk: Walk) -> None:
    assert "crashvol" not in walk.cli("volume", "ls", "-q").stdout.split()


def _load_ok(walk: Walk) -> None:
    done = _load(walk)
    assert done.returncode == 0, done.stderr


def _rmi(walk: Walk) -> None:
    walk.cli("rmi", "-f", walk.ref)


def _save_image(walk: Walk) -> None:
    tar = walk.tmp / "image.tar"
    if not tar.exists():
        walk.cli("save", "-o", str(tar), walk.ref)
    _rmi(walk)


def _load(walk: Walk) -> subprocess.CompletedProcess[str]:
    return walk.cli("load", "-i", str(walk.tmp / "image.tar"), check=False)


def _image_runs(walk: Walk) -> None:
    assert walk.cli("run", "--rm", walk.ref, "echo", "ok").stdout == "ok\n"


def _start_container(walk: Walk) -> None:
    walk.shared["cid"] = walk.cli("create", walk.ref, "sleep", "600").stdout.strip()


def _running(walk: Walk) -> None:
    assert _inspect(walk, walk.shared["cid"])["State"]["Running"] is True  # type: ignore[index]


def _build(walk: Walk) -> None:
    context = walk.tmp / "context"
    context.mkdir(exist_ok=True)
    (context / "Dockerfile").write_text(f"FROM {walk.ref}\nRUN echo built > /built\n")
    walk.shared["context"] = str(context)


def _built(walk: Walk) -> None:
    out = walk.cli("run", "--rm", "crash-built:1", "cat", "/built").stdout
    assert out == "built\n"


def _connect_retry(walk: Walk) -> None:
    done = walk.cli("network", "connect", "crashnet", walk.shared["cid"], check=False)
    # A connect the crash completed (CNI attached, endpoints stored) is already done.
    assert done.returncode == 0 or "already exists in network" in done.stderr, done.stderr
    assert "crashnet" in _networks_of(walk, walk.shared["cid"])


def _disconnect_retry(walk: Walk) -> None:
    done = walk.cli("network", "disconnect", "crashnet", walk.shared["cid"], check=False)
    assert done.returncode == 0 or "is not connected" in done.stderr, done.stderr
    assert "crashnet" not in _networks_of(walk, walk.shared["cid"])


GROUPS: dict[str, list[Crash]] = {
    "pull": [
        Crash(
            "pull-download",
            _act(lambda w: ["pull", w.ref]),
            verify=_image_runs,
        ),
        Crash(
            "pull-blob-before-commit",
            _act(lambda w: ["pull", w.ref]),
            prepare=_rmi,
            verify=_image_runs,
        ),
        Crash(
            "unpack-midway",
            _act(lambda w: ["pull", w.ref]),
            prepare=_rmi,
            verify=_image_runs,
        ),
        Crash(
            "image-before-unpack",
            _load,
            prepare=_save_image,
            retry=_load_ok,
            verify=_image_runs,
        ),
    ],
    "containers": [
        Crash(
            "container-record-written",
            _act(lambda w: ["create", "--name", "crash-created", w.ref, "true"]),
            # The record was written: the container exists; creating it again is a conflict,
            # so the retry is a create of another one, and the first one must start.
            retry=_ok(lambda w: ["create", w.ref, "true"]),
            verify=_ok(lambda w: ["start", "-a", "crash-created"]),
        ),
        Crash(
            "runc-created",
            _act(lambda w: ["start", w.shared["cid"]]),
            prepare=_start_container,
            verify=_running,
        ),
        Crash(
            "commit-midway",
            _act(lambda w: ["commit", w.shared["cid"], "crash-commit:1"]),
            verify=_committed,
        ),
        Crash(
            "rm-midway",
            _act(lambda w: ["rm", "-f", w.shared["cid"]]),
            verify=_removed,
        ),
    ],
    "networks": [
        Crash(
            "network-connect-midway",
            _act(lambda w: ["network", "connect", "crashnet", w.shared["cid"]]),
            prepare=_network_ready,
            retry=_connect_retry,
        ),
        Crash(
            "network-disconnect-midway",
            _act(lambda w: ["network", "disconnect", "crashnet", w.shared["cid"]]),
            retry=_disconnect_retry,
            verify=_ok(lambda w: ["network", "rm", "crashnet"]),
        ),
    ],
    "volumes-build": [
        Crash(
            "volume-remove-midway",
            _act(lambda w: ["volume", "rm", "crashvol"]),
            prepare=_ok(lambda w: ["volume", "create", "crashvol"]),
            verify=_volume_gone,
        ),
        Crash(
            "build-run-before-commit",
            lambda w: docker_build(
                w.daemon.url, w.shared["context"], "-t", "crash-built:1", check=False
            ),
            prepare=_build,
            verify=_built,
        ),
    ],
}


def test_every_fail_point_is_walked() -> None:
    walked = [crash.point for group in GROUPS.values() for crash in group]
    assert sorted(walked) == sorted(failpoints.POINTS)


@pytest.mark.parametrize("group", sorted(GROUPS))
def test_crash_restart_check_retry(
    group: str, tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    armed = tmp_path / "failpoints"
    arm_failpoints(armed, "")
    with network_daemon(tmp_path, env={failpoints.ENV: f"@{armed}"}) as daemon:
        walk = Walk(daemon, armed, busybox_image_pushed.reference, tmp_path, {})
        if group != "pull":
            walk.cli("pull", "-q", walk.ref)
        for crash in GROUPS[group]:
            crash.prepare(walk)
            arm_failpoints(armed, crash.point + "\n")
            crash.act(walk)
            try:
                status = daemon.wait_exit(timeout=60)
            except subprocess.TimeoutExpired:
                pytest.fail(f"{crash.point}: the daemon did not crash\n{daemon.log()[-3000:]}")
            assert status == -signal.SIGKILL, (crash.point, daemon.log()[-3000:])
            assert f"fail point {crash.point} reached" in daemon.log()
            arm_failpoints(armed, "")
            # On the data root as the crash left it: what the start will settle, listed.
            left = daemon_check(daemon)
            assert left.returncode in (0, 1) and "Traceback" not in left.stderr, left.stderr
            daemon.restart()
            checked = daemon_check(daemon)
            assert checked.returncode == 0 and checked.stdout == "", (
                crash.point,
                checked.stdout + checked.stderr,
            )
            if crash.retry is not None:
                crash.retry(walk)
            else:
                done = crash.act(walk)
                assert getattr(done, "returncode", 0) == 0, (crash.point, done)
            crash.verify(walk)
        checked = daemon_check(daemon)
        assert checked.returncode == 0 and checked.stdout == "", checked.stdout + checked.stderr
