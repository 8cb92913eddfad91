"""Persistent network namespaces: create, enter, list, remove."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from declarun.daemon.networks import netns
from declarun.daemon.networks.errors import NetnsError
from tests.daemon.networks.conftest import in_ns, needs_real_network, run

pytestmark = [needs_real_network, pytest.mark.root]


@pytest.fixture
def run_dir(tmp_path: Path):  # type: ignore[no-untyped-def]
    yield tmp_path / "run"
    for path in netns.list_netns(tmp_path / "run"):
        netns.remove_netns(path)
    netns.release_netns_dir(tmp_path / "run")


def test_create_enter_list_remove(run_dir: Path) -> None:
    first = netns.create_netns(run_dir, "first")
    second = netns.create_netns(run_dir, "second")
    assert netns.list_netns(run_dir) == [first, second]
    assert os.stat(first).st_ino != os.stat(second).st_ino  # two distinct namespaces
    own = os.stat("/proc/self/ns/net").st_ino
    assert own not in (os.stat(first).st_ino, os.stat(second).st_ino)
    links = run(in_ns(first, "ip", "-o", "link")).stdout
    assert "lo:" in links and "eth0" not in links

    def namespace_of_thread() -> int:
        return os.stat("/proc/thread-self/ns/net").st_ino

    assert netns.run_in_netns(first, namespace_of_thread) == os.stat(first).st_ino
    assert os.stat("/proc/thread-self/ns/net").st_ino == own  # the caller never moved

    # A socket opened inside lives in that namespace: it can bind a port the host holds.
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        port = held.getsockname()[1]

        def bind_same() -> socket.socket:
            sock = socket.socket()
            sock.bind(("127.0.0.1", port))
            return sock

        netns.run_in_netns(first, bind_same).close()

    with pytest.raises(NetnsError, match="already exists"):
        netns.create_netns(run_dir, "first")
    with pytest.raises(NetnsError, match="invalid"):
        netns.create_netns(run_dir, "../escape")

    netns.remove_netns(first)
    netns.remove_netns(first)  # idempotent
    assert netns.list_netns(run_dir) == [second]
    assert str(first) not in Path("/proc/self/mountinfo").read_text()
    with pytest.raises(NetnsError):
        netns.run_in_netns(first, namespace_of_thread)
