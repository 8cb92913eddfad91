"""The three-node Swarm the end-to-end tests of ``--engine swarm`` run on.

``swarm`` (session) starts the cluster of ``tests.support.swarm_cluster`` once, the first
time a test asks for it, with the session's loopback registry reachable from every node
(also at ``127.0.0.1:5000``, the examples' registry address, which holds
``declarun/busybox:1.35`` too), and tears it all down at the end. It skips, with the
reason, where such a cluster cannot run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from declarun.engine.swarm import DockerSwarmEngine
from tests.support.engine_fixtures import EngineImage
from tests.support.images import skopeo_push
from tests.support.swarm_cluster import Cluster, ClusterUnavailable, start_cluster, stop_cluster

__all__ = ["Swarm", "swarm"]

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Swarm:
    """The running cluster, the registry its nodes pull from, and ways to drive it."""

    cluster: Cluster
    registry: str  # 127.0.0.1:<port>
    image: str  # <registry>/busybox:test

    @property
    def host(self) -> str:
        """The manager's address: ``declarun --engine swarm --host``."""
        return self.cluster.manager.host

    def engine(self) -> DockerSwarmEngine:
        """The Swarm adapter on the manager (close it when done)."""
        return DockerSwarmEngine.open(self.host, timeout=120)

    def declarun(
        self, *args: str, cwd: Path | None = None, timeout: float = 400
    ) -> subprocess.CompletedProcess[str]:
        """Run ``declarun SUBCOMMAND --engine swarm --host MANAGER ARGS...``."""
        subcommand, *rest = args
        done = subprocess.run(
            [sys.executable, "-m", "declarun", subcommand, "--engine", "swarm",
             "--host", self.host, *rest],
            capture_output=True,
            text=True,
            check=False,
            cwd=cwd or REPO,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "200"},
            timeout=timeout,
        )  # fmt: skip
        assert "Traceback" not in done.stderr, done.stderr
        return done


@pytest.fixture(scope="session")
def swarm(engine_registry: EngineImage) -> Iterator[Swarm]:
    """A three-node Swarm for the session (see the module docstring)."""
    registry = engine_registry.registry
    skopeo_push(engine_registry.oci.layout, registry, "declarun/busybox:1.35")
    try:
        cluster = start_cluster(registry_port=registry.port)
    except ClusterUnavailable as exc:
        pytest.skip(f"no Swarm cluster here: {exc}")
    try:
        yield Swarm(cluster, registry.host, engine_registry.reference)
    finally:
        stop_cluster(cluster.root)
