"""Fixtures for container API tests: one declarund per module with busybox pulled into it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import container_daemon, pull_image
from tests.support.daemon import DaemonProcess


@pytest.fixture(scope="module")
def cdaemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """declarund for one test module; every container is removed afterwards."""
    with container_daemon(tmp_path_factory.mktemp("containers-daemon")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def image(cdaemon: DaemonProcess, busybox_image_pushed: PushedImage) -> str:
    """The busybox test image, pulled into ``cdaemon``; its reference."""
    return pull_image(cdaemon, busybox_image_pushed.reference)
