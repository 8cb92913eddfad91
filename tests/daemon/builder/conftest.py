"""Fixtures of the builder tests: a declarund of their own (real runc, conmon, CNI) with the
test registry's busybox pulled, cleaned up to the last container and bridge afterwards."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime, pull_image
from tests.daemon.networks.daemon_net import network_daemon
from tests.support.daemon import DaemonProcess

__all__ = ["BuildDaemon", "build_daemon"]


class BuildDaemon:
    """A running declarund and the base image its tests build ``FROM``."""

    def __init__(self, daemon: DaemonProcess, base: str) -> None:
        self.daemon = daemon
        self.base = base

    @property
    def host(self) -> str:
        """The ``unix://`` address."""
        return self.daemon.url


@pytest.fixture(scope="module")
def build_daemon(
    tmp_path_factory: pytest.TempPathFactory, busybox_image_pushed: PushedImage
) -> Iterator[BuildDaemon]:
    """declarund with ``busybox:test`` pulled (module-scoped)."""
    if needs_runtime.args[0]:
        pytest.skip(needs_runtime.kwargs["reason"])
    with network_daemon(tmp_path_factory.mktemp("builder")) as daemon:
        pull_image(daemon, busybox_image_pushed.reference)
        yield BuildDaemon(daemon, busybox_image_pushed.reference)
