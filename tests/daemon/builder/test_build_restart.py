"""The build cache lives in the metadata database: a restarted daemon still hits it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.daemon.builder.support import docker, docker_build, write_context
from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime, pull_image
from tests.daemon.networks.daemon_net import network_daemon

pytestmark = [pytest.mark.root, needs_runtime]


def test_the_cache_survives_a_daemon_restart(
    tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"FROM {busybox_image_pushed.reference}\nRUN echo kept > /k\nCOPY a.txt /\n",
        {"a.txt": "a\n"},
    )
    with network_daemon(tmp_path / "daemon") as daemon:
        pull_image(daemon, busybox_image_pushed.reference)
        first = docker_build(daemon.url, context, "-t", "restart:1").stdout
        assert "Using cache" not in first
    with network_daemon(tmp_path / "daemon") as daemon:
        again = docker_build(daemon.url, context, "-t", "restart:1").stdout
        assert again.count("---> Using cache") == 2, again
        assert docker(daemon.url, "run", "--rm", "restart:1", "cat", "/k", "/a.txt").stdout == (
            "kept\na\n"
        )
        assert not any((daemon.data_root / "builder" / "builds").iterdir())
