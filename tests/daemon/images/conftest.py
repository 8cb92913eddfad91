"""Fixtures for the image API tests: a real declarund subprocess per test module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon.images.daemon_support import need_docker
from tests.support.daemon import DaemonProcess, running_daemon


@pytest.fixture(scope="module")
def images_daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """declarund on a Unix socket with its own data root, stopped after the module."""
    need_docker()
    with running_daemon(tmp_path_factory.mktemp("images-daemon")) as daemon:
        yield daemon
