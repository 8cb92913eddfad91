"""A real declarund for container tests, an image in it, and a cleanup that leaves nothing.

Containers outlive the daemon by design, so stopping the daemon is not enough: the
cleanup removes every container through the API, then deletes whatever the runtime still
knows under the data root, kills leftover conmon processes and unmounts what is mounted
there. :func:`leftovers` reports what would have leaked, for tests that assert on it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.daemon.containers.conmon_support import RUNC, processes_mentioning
from tests.daemon.images.daemon_support import docker, need_docker
from tests.support.daemon import DaemonProcess, running_daemon

__all__ = [
    "container_daemon",
    "force_cleanup",
    "leftovers",
    "mounts_under",
    "needs_runtime",
    "pull_image",
]

needs_runtime = pytest.mark.skipif(
    not (os.path.exists(RUNC) and os.path.exists("/usr/bin/conmon")) or os.geteuid() != 0,
    reason="needs runc, conmon and root",
)


def mounts_under(root: Path) -> list[str]:
    """Mount points below ``root`` (from /proc/self/mountinfo)."""
    found = []
    prefix = str(root)
    with open("/proc/self/mountinfo") as f:
        for line in f:
            point = line.split()[4]
            if point.startswith(prefix):
                found.append(point)
    return found


def _runtime_ids(data_root: Path) -> dict[Path, list[str]]:
    ids: dict[Path, list[str]] = {}
    base = data_root / "runtime"
    if not base.is_dir():
        return ids
    for root in base.iterdir():
        done = subprocess.run([RUNC, f"--root={root}", "list", "--format", "json"],
                              capture_output=True, text=True, check=False)  # fmt: skip
        ids[root] = [doc["id"] for doc in json.loads(done.stdout or "null") or []]
    return ids


def leftovers(data_root: Path) -> dict[str, list[str]]:
    """Runtime containers, monitor processes and mounts still present under ``data_root``."""
    return {
        "runtime": [cid for ids in _runtime_ids(data_root).values() for cid in ids],
        "processes": [
            cmd
            for _pid, cmd in processes_mentioning(str(data_root))
            if "-m declarun.daemon" not in cmd
        ],
        "mounts": mounts_under(data_root),
    }


def force_cleanup(data_root: Path) -> None:
    """Delete every runtime container, kill monitors, unmount everything under ``data_root``."""
    runtime = _runtime_ids(data_root)
    for root, ids in runtime.items():
        for cid in ids:
            subprocess.run([RUNC, f"--root={root}", "delete", "--force", cid],
                           capture_output=True, check=False)  # fmt: skip
    for pid, _ in processes_mentioning(str(data_root)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for point in sorted(mounts_under(data_root), key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)
    # This daemon's containers' cgroups only: another daemon (a parallel test worker) may
    # have just made one of its own, still empty, that runc is about to move a process into.
    own = {cid for ids in runtime.values() for cid in ids}
    containers = data_root / "containers"
    if containers.is_dir():
        own.update(entry.name for entry in containers.iterdir())
    for parent in Path("/sys/fs/cgroup").glob("*/declarun"):
        for cid in own:
            with contextlib.suppress(OSError):
                (parent / cid).rmdir()


def remove_all(daemon: DaemonProcess) -> None:
    """``docker rm -f`` every container of ``daemon`` (errors ignored)."""
    listed = docker(daemon, "ps", "-aq", "--no-trunc", check=False)
    ids = listed.stdout.split()
    if ids:
        docker(daemon, "rm", "-f", *ids, check=False)


@contextlib.contextmanager
def container_daemon(
    tmp: Path, *extra: str, env: dict[str, str] | None = None
) -> Iterator[DaemonProcess]:
    """declarund under ``tmp``; afterwards every container is gone, whatever happened.

    When the tests using it passed, ``declarun daemon check`` must then find nothing wrong
    on the daemon (the issue-14 invariants hold after every test module that uses one).
    """
    need_docker()
    data_root = tmp / "declarund-root"
    try:
        with running_daemon(tmp, *extra, env=env) as daemon:
            passed = False
            try:
                yield daemon
                passed = True
            finally:
                if daemon.process.poll() is None:
                    remove_all(daemon)
                    if passed:
                        _assert_check_clean(daemon)
    finally:
        force_cleanup(data_root)


def _assert_check_clean(daemon: DaemonProcess) -> None:
    from tests.support.daemon import daemon_check

    checked = daemon_check(daemon)
    assert checked.returncode == 0 and checked.stdout == "", (
        f"declarun daemon check after the tests:\n{checked.stdout}{checked.stderr}"
    )


def pull_image(daemon: DaemonProcess, reference: str) -> str:
    """``docker pull`` ``reference`` into ``daemon``; returns the reference."""
    docker(daemon, "pull", "-q", reference)
    return reference
