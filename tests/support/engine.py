"""A real Docker engine for the reconciler's end-to-end tests: ``tests.support.dockerd`` plus
what a stack needs.

``run_dockerd()`` wraps :func:`tests.support.dockerd.running_dockerd` and adds:

* user networks drawn from a 10.x.0.0/16 block of this test worker's own that no route on
  this machine uses yet (``tests.support.workers``), so parallel test engines never hand out
  overlapping subnets;
* removal of every container before the engine stops, so docker-proxy processes holding
  published loopback ports go with them;
* a ``docker(...)`` helper on the yielded :class:`RunningDockerd`.
"""

from __future__ import annotations

import contextlib
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.networks import ipam_pool
from tests.support.dockerd import DockerdUnavailable, docker_cli, running_dockerd
from tests.support.workers import DOCKERD_BLOCKS, free_blocks

__all__ = ["DockerdUnavailable", "RunningDockerd", "run_dockerd"]


@dataclass(frozen=True)
class RunningDockerd:
    """A dockerd the tests started: its ``unix://`` host and private directory."""

    host: str
    root: Path
    pid: int

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine."""
        return docker_cli(self.host, *args, check=check)

    def read_log(self) -> str:
        """dockerd's own log, for failure messages."""
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""


def _free_pool() -> str:
    """This test worker's own block (``tests.support.workers``), clear of every route."""
    for block in free_blocks(DOCKERD_BLOCKS, ipam_pool.host_routes(), count=1):
        return f"base={block},size=24"
    raise DockerdUnavailable("no free 10.x.0.0/16 address pool for test networks")


@contextlib.contextmanager
def run_dockerd() -> Iterator[RunningDockerd]:
    """Start a private dockerd; remove its containers and stop it afterwards."""
    with running_dockerd("--default-address-pool", _free_pool()) as engine:
        running = RunningDockerd(host=engine.host, root=engine.root, pid=engine.pid)
        try:
            yield running
        finally:
            with contextlib.suppress(Exception):
                ids = running.docker("ps", "-aq", check=False).stdout.split()
                if ids:
                    running.docker("rm", "-f", *ids, check=False)
