"""A real Docker engine for the reconciler's end-to-end tests: ``tests.support.dockerd`` plus
what a stack needs.

``run_dockerd()`` wraps :func:`tests.support.dockerd.running_dockerd` and adds:

* user networks drawn from a 10.x.0.0/16 pool no route on this machine uses yet, so parallel
  test engines never hand out overlapping subnets;
* removal of every container before the engine stops, so docker-proxy processes holding
  published loopback ports go with them;
* a ``docker(...)`` helper on the yielded :class:`RunningDockerd`.
"""

from __future__ import annotations

import contextlib
import random
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.support.dockerd import DockerdUnavailable, docker_cli, running_dockerd

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
    routes = subprocess.run(["ip", "route"], capture_output=True, text=True, check=False).stdout
    for _ in range(50):
        second = random.randint(100, 250)
        if f"10.{second}." not in routes:
            return f"base=10.{second}.0.0/16,size=24"
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
