"""Fixtures for the hostile-input tests: one declarund of their own, with objects in it.

``hostile_daemon`` (module scope) is a real declarund on a private socket and data root
(``network_daemon``: afterwards no container, network or CNI state is left), with the
session's busybox image pulled and a container, exec instance, network and volume made by
:func:`tests.hostile.apifuzz.seed`. It is never the session's shared engine: the fuzzer
prunes, renames and deletes whatever it can reach.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import docker
import pytest

from tests.hostile.apifuzz import Seeded, seed
from tests.support.daemon import DaemonProcess
from tests.support.engine_fixtures import EngineImage


@dataclass(frozen=True)
class HostileDaemon:
    """The daemon under attack, what exists in it, and the directory around its data root."""

    daemon: DaemonProcess
    seeded: Seeded
    tmp: Path


@pytest.fixture(scope="module")
def hostile_daemon(
    engine_registry: EngineImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HostileDaemon]:
    if os.geteuid() != 0:
        pytest.skip("declarund's containers need root")
    from tests.daemon.networks.daemon_net import network_daemon

    tmp = tmp_path_factory.mktemp("hostile")
    with network_daemon(tmp) as daemon:
        client = docker.DockerClient(base_url=daemon.url, timeout=120)
        try:
            client.images.pull(engine_registry.reference)
            seeded = seed(client, engine_registry.reference)
        finally:
            client.close()
        yield HostileDaemon(daemon, seeded, tmp)
