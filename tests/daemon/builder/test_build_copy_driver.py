"""Builds on the copy snapshotter (where overlayfs does not work): the same results, each
step's layer applied rather than adopted."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.builder.support import docker, docker_build, write_context
from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime, pull_image
from tests.daemon.networks.daemon_net import network_daemon
from tests.support.daemon import DaemonProcess

pytestmark = [pytest.mark.root, needs_runtime]


@pytest.fixture(scope="module")
def copy_daemon(
    tmp_path_factory: pytest.TempPathFactory, busybox_image_pushed: PushedImage
) -> Iterator[DaemonProcess]:
    """declarund whose data root was first opened with the copy driver."""
    tmp = tmp_path_factory.mktemp("copy-driver")
    driver = tmp / "declarund-root" / "snapshots" / "driver"
    driver.parent.mkdir(parents=True)
    driver.write_text("copy\n")
    with network_daemon(tmp) as daemon:
        pull_image(daemon, busybox_image_pushed.reference)
        yield daemon


def test_a_multi_stage_build_on_the_copy_driver(
    copy_daemon: DaemonProcess, busybox_image_pushed: PushedImage, tmp_path: Path
) -> None:
    base = busybox_image_pushed.reference
    assert "vfs" in docker(copy_daemon.url, "info", "--format", "{{.Driver}}").stdout
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {base} AS tools
RUN echo tool > /tool && rm /etc/group
FROM {base}
WORKDIR /app
COPY src/ ./src/
COPY --from=tools /tool /app/tool
RUN --mount=type=bind,from=tools,source=/tool,target=/mnt/t cat /mnt/t src/a.txt > out
""",
        {"src/a.txt": "a\n"},
    )
    first = docker_build(copy_daemon.url, context, "-t", "copydrv:1").stdout
    assert "Using cache" not in first
    again = docker_build(copy_daemon.url, context, "-t", "copydrv:1").stdout
    assert again.count("---> Using cache") == 5, again
    out = docker(copy_daemon.url, "run", "--rm", "copydrv:1", "cat", "out", "tool").stdout
    assert out == "tool\na\ntool\n"
    missing = docker(
        copy_daemon.url, "run", "--rm", "copydrv:1", "ls", "/mnt", check=False
    ).returncode
    assert missing != 0
