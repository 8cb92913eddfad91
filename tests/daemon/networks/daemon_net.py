"""A real declarund for networking tests, and a clean-up that leaves no network state.

:func:`network_daemon` wraps the container tests' daemon fixture: afterwards every
container and user network is removed through the API, and — whatever happened — the
CNI attachments still cached under the data root are deleted through the plugins and the
daemon's bridges removed. :func:`network_leftovers` reports what would have leaked (lease
files, cached attachments, namespaces, bridges and veths, iptables rules naming the ids).
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

from declarun.daemon.networks.cni import CniDriver
from declarun.daemon.networks.cniconf import bridge_name
from tests.daemon.containers.daemon_fixtures import container_daemon
from tests.daemon.images.daemon_support import docker
from tests.support.daemon import DaemonProcess

__all__ = ["iptables_rules", "network_daemon", "network_ids", "network_leftovers"]


def network_ids(data_root: Path) -> list[str]:
    """The ids of every network the daemon stored (in its metadata database)."""
    path = data_root / "metadata.db"
    if not path.exists():
        return []
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        return [row[0] for row in db.execute("SELECT id FROM networks")]
    finally:
        db.close()


def iptables_rules() -> str:
    """Every rule of the filter and nat tables."""
    out = ""
    for table in ("filter", "nat"):
        out += subprocess.run(
            ["iptables", "-w", "-t", table, "-S"], capture_output=True, text=True, check=False
        ).stdout
    return out


def network_leftovers(data_root: Path, container_ids: list[str]) -> dict[str, list[str]]:
    """Network state still present for ``container_ids`` (all empty when nothing leaked).

    ``veths`` are every host-side interface on the daemon's bridges, whoever owns them.
    """
    state = data_root / "network"
    leases = []
    for path in (state / "ipam").glob("*/*"):
        with contextlib.suppress(OSError):
            if (
                path.is_file()
                and path.read_text().split()[:1]
                and any(path.read_text().startswith(cid) for cid in container_ids)
            ):
                leases.append(str(path))
    cached = [str(p) for p in (state / "cache").glob("*/*.json") if p.stem in container_ids]
    namespaces = [str(p) for p in (state / "netns").glob("*") if p.name in container_ids]
    rules = [
        line for line in iptables_rules().splitlines() if any(cid in line for cid in container_ids)
    ]
    veths = []
    for network_id in network_ids(data_root):
        out = subprocess.run(
            ["ip", "-o", "link", "show", "master", bridge_name(network_id)],
            capture_output=True, text=True, check=False,
        ).stdout  # fmt: skip
        veths += [line.split(":")[1].strip() for line in out.splitlines() if ":" in line]
    return {
        "leases": leases,
        "cache": cached,
        "netns": namespaces,
        "iptables": rules,
        "veths": veths,
    }


def _remove_networks(daemon: DaemonProcess) -> None:
    listed = docker(daemon, "network", "ls", "-q", "--filter", "type=custom", check=False)
    ids = listed.stdout.split()
    if ids:
        docker(daemon, "network", "rm", *ids, check=False)


def _force_network_cleanup(data_root: Path) -> None:
    state = data_root / "network"
    if not state.is_dir():
        return
    with contextlib.suppress(Exception):
        asyncio.run(CniDriver(state).cleanup())
    for network_id in network_ids(data_root):
        subprocess.run(["ip", "link", "delete", bridge_name(network_id)],
                       capture_output=True, check=False)  # fmt: skip


@contextlib.contextmanager
def network_daemon(tmp: Path, env: dict[str, str] | None = None) -> Iterator[DaemonProcess]:
    """declarund under ``tmp``; afterwards no container, user network or CNI state is left."""
    data_root = tmp / "declarund-root"
    try:
        with container_daemon(tmp, env=env) as daemon:
            try:
                yield daemon
            finally:
                if daemon.process.poll() is None:
                    from tests.daemon.containers.daemon_fixtures import remove_all

                    remove_all(daemon)
                    _remove_networks(daemon)
    finally:
        _force_network_cleanup(data_root)
