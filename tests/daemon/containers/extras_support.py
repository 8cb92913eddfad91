"""Fixtures for the attach/exec/health/restart/volume/archive tests: a real declarund with busybox.

``extras_daemon`` (module scope) starts declarund from this checkout and pulls the
``busybox_image_pushed`` test image into it, tagged ``bb:test``; :func:`run` runs the
docker CLI against it (returning the completed process, never raising on a non-zero exit).
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.daemon.conftest import PushedImage
from tests.daemon.images.daemon_support import DOCKER, docker, need_docker
from tests.support.daemon import DaemonProcess, running_daemon

__all__ = ["IMAGE", "docker_cli", "image_into", "need_runtime", "run", "wait_until"]

IMAGE = "bb:test"


def need_runtime() -> None:
    """Skip unless runc, conmon and the docker CLI are installed and we are root."""
    import os
    import shutil

    need_docker()
    for program in ("runc", "conmon"):
        if shutil.which(program) is None:
            pytest.skip(f"{program} is not installed")
    if os.geteuid() != 0:
        pytest.skip("containers need root")


def image_into(daemon: DaemonProcess, pushed: PushedImage) -> None:
    """Pull the test busybox into ``daemon`` and tag it :data:`IMAGE`."""
    docker(daemon, "pull", pushed.reference)
    docker(daemon, "tag", pushed.reference, IMAGE)


def docker_cli() -> str:
    """The docker CLI binary."""
    return DOCKER if Path(DOCKER).exists() else "docker"


def run(
    daemon: DaemonProcess, *args: str, input: bytes | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[bytes]:
    """The docker CLI against ``daemon``; output as bytes; no check of the exit code."""
    return subprocess.run(
        [docker_cli(), *args],
        input=input,
        capture_output=True,
        env=daemon.env(),
        timeout=timeout,
        check=False,
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 30, what: str = "") -> None:
    """Poll ``predicate`` until true; fail the test (no timing assertion) after ``timeout``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what or predicate}")


@pytest.fixture(scope="module")
def extras_daemon(
    tmp_path_factory: pytest.TempPathFactory, busybox_image_pushed: PushedImage
) -> Iterator[DaemonProcess]:
    """declarund with ``bb:test`` loaded; every container removed afterwards."""
    need_runtime()
    with running_daemon(tmp_path_factory.mktemp("extras")) as daemon:
        image_into(daemon, busybox_image_pushed)
        try:
            yield daemon
        finally:
            ids = run(daemon, "ps", "-aq").stdout.split()
            if ids:
                run(daemon, "rm", "-f", *[i.decode() for i in ids], timeout=120)
