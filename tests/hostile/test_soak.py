"""A short soak (``tests/hostile/soak.py``): concurrent docker-py clients for ~45 s with the
realistic mix, no error, nothing left behind, the daemon's memory and descriptors bounded."""

from __future__ import annotations

import time

import docker
import pytest

from tests.hostile.apifuzz import daemon_tracebacks
from tests.hostile.conftest import HostileDaemon
from tests.hostile.soak import _fds, run_soak


@pytest.mark.timeout(400)
def test_short_soak_holds(hostile_daemon: HostileDaemon) -> None:
    daemon = hostile_daemon.daemon
    client = docker.DockerClient(base_url=daemon.url, timeout=120)
    try:
        client.networks.create("fuzz-net-2")
        before = {c.id for c in client.containers.list(all=True)}
        report = run_soak(
            daemon.url,
            daemon.process.pid,
            hostile_daemon.seeded.image,
            seconds=45,
            clients=6,
            subscribers=2,
            network="fuzz-net",
            sample_every=5,
        )
        print(report.summary())
        assert report.errors == []
        assert report.rounds >= 6 and report.events > 0
        assert {c.id for c in client.containers.list(all=True)} == before
    finally:
        client.close()
    first, last = report.samples[0], report.after
    assert last[1] - first[1] < 64 << 20, "RSS grew by more than 64 MiB"
    # The daemon closes a connection once it sees the client's side closed: give it a few
    # seconds to, before counting what is left.
    reference = first[2]
    deadline = time.monotonic() + 15
    while _fds(daemon.process.pid) > reference + 10 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _fds(daemon.process.pid) <= reference + 10, "file descriptors were not released"
    assert daemon_tracebacks(daemon.log()) == []
