"""``declarun daemon check [--repair]`` on a real declarund: clean when nothing is wrong, one
line per problem planted in its data root (daemon stopped), each repaired without losing a
user's data, and clean again through the running daemon afterwards."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import time
from pathlib import Path

from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime
from tests.daemon.images.daemon_support import docker
from tests.daemon.networks.daemon_net import network_daemon
from tests.support.daemon import DaemonProcess, daemon_check

pytestmark = needs_runtime


def assert_clean(daemon: DaemonProcess) -> None:
    done = daemon_check(daemon)
    assert done.returncode == 0 and done.stdout == "", done.stdout + done.stderr


def plant(root: Path, cid_a: str) -> dict[str, Path]:
    """Problems a crash (or a careless hand) could leave; returns what was planted."""
    planted: dict[str, Path] = {}
    data = b"nobody references this blob"
    blob = root / "content" / "blobs" / "sha256" / hashlib.sha256(data).hexdigest()
    blob.write_bytes(data)
    planted["blob"] = blob
    ref = "pull-sha256:" + "ab" * 32
    ingest = root / "content" / "ingest" / hashlib.sha256(ref.encode()).hexdigest()
    ingest.mkdir()
    (ingest / "ref").write_text(ref)
    (ingest / "data").write_bytes(b"half a layer")
    planted["ingest"] = ingest
    tmp = root / "snapshots" / ".tmp-0123456789abcdef"
    (tmp / "fs").mkdir(parents=True)
    planted["unpack"] = tmp
    ghost = "f" * 64
    (root / "containers" / ghost).mkdir()
    (root / "exits" / ghost).write_text("0")
    planted["bundle"] = root / "containers" / ghost
    lost = root / "volumes" / "lost" / "_data"
    lost.mkdir(parents=True)
    (lost / "precious").write_text("user data")
    planted["volume"] = lost
    # A removal cut short before its transaction committed: the data is set aside.
    os.rename(root / "volumes" / "kept", root / "volumes" / f".removing-{'0' * 16}-kept")
    mount = root / "builder" / "stray-mount"
    mount.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(mount)], check=True)
    planted["mount"] = mount
    db = sqlite3.connect(root / "metadata.db")
    with db:
        db.execute(
            "INSERT INTO leases (id, created, expires) VALUES ('dead-build', ?, ?)",
            (time.time() - 10, None),
        )
    db.close()
    log = root / "containers" / cid_a / "container.log"
    with log.open("ab") as f:
        f.write(b"this is not a log record\n")
    planted["log"] = log
    return planted


def test_check_finds_and_repairs_what_a_crash_leaves(
    tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    ref = busybox_image_pushed.reference
    with network_daemon(tmp_path) as daemon:
        docker(daemon, "pull", "-q", ref)
        docker(daemon, "volume", "create", "kept")
        cid_a = docker(
            daemon, "run", "-d", "-v", "kept:/data", ref, "sh", "-c", "echo hi > /data/f; echo ok"
        ).stdout.strip()
        docker(daemon, "wait", cid_a)
        running = docker(daemon, "run", "-d", "--name", "up", ref, "sleep", "600").stdout.strip()
        assert_clean(daemon)  # through the running daemon

        daemon.stop()
        assert_clean(daemon)  # on the data root: a container running meanwhile is fine
        planted = plant(daemon.data_root, cid_a)
        found = daemon_check(daemon)
        assert found.returncode == 1
        lines = found.stdout.splitlines()
        expected = {
            "content: blob sha256:" + planted["blob"].name,
            f"ingests: ingest pull-sha256:{'ab' * 32}",
            f"snapshots: {planted['unpack']}",
            f"containers: bundle {planted['bundle']}",
            "containers: exit file",
            f"volumes: directory {planted['volume'].parent}",
            f"volumes: {daemon.data_root / 'volumes'}/.removing-",
            f"mounts: {planted['mount']}",
            "leases: lease dead-build: its operation died with the daemon",
            "logs: container ",
        }
        for prefix in expected:
            assert any(line.startswith(prefix) for line in lines), (prefix, found.stdout)
        assert len(lines) == len(expected), found.stdout

        repaired = daemon_check(daemon, repair=True)
        assert repaired.returncode == 1  # a damaged log cannot be repaired
        assert [line for line in repaired.stdout.splitlines() if line.startswith("logs: ")]
        assert sum(line.startswith("repaired: ") for line in repaired.stdout.splitlines()) == 9
        log = planted["log"]
        log.write_bytes(log.read_bytes().replace(b"this is not a log record\n", b""))
        assert_clean(daemon)

        daemon.restart()
        assert_clean(daemon)
        volumes = docker(daemon, "volume", "ls", "-q").stdout.split()
        assert {"kept", "lost"} <= set(volumes)
        assert (planted["volume"] / "precious").read_text() == "user data"
        kept = docker(daemon, "run", "--rm", "-v", "kept:/data", ref, "cat", "/data/f").stdout
        assert kept == "hi\n"
        assert docker(daemon, "inspect", "-f", "{{.State.Running}}", running).stdout == "true\n"
