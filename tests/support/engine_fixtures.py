"""pytest fixtures for tests that drive a real Docker engine: import them into a conftest.

``docker_engine`` (session): a private dockerd plus a local registry holding a busybox image
(``docker_engine.image``), and a docker-py client. Skips, with the reason, when dockerd
cannot run here.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import pytest

from tests.support.engine import DockerdUnavailable, RunningDockerd, run_dockerd
from tests.support.images import build_busybox_layout, skopeo_push
from tests.support.registry import RunningRegistry, run_registry

__all__ = ["DockerEngine", "docker_engine"]


@dataclass(frozen=True)
class DockerEngine:
    """A running dockerd, a registry with ``image`` in it, and a client for the engine."""

    dockerd: RunningDockerd
    registry: RunningRegistry
    image: str
    client: Any

    @property
    def host(self) -> str:
        """The engine's ``unix://`` address."""
        return self.dockerd.host


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """A real dockerd with a busybox image available from a loopback registry."""
    tmp: Path = tmp_path_factory.mktemp("engine")
    with contextlib.ExitStack() as stack:
        try:
            dockerd = stack.enter_context(run_dockerd())
        except DockerdUnavailable as exc:
            pytest.skip(str(exc))
        registry = stack.enter_context(run_registry(tmp / "registry"))
        layout = tmp / "layout"
        build_busybox_layout(layout)
        image = skopeo_push(layout, registry, "busybox:test")
        client = docker.DockerClient(base_url=dockerd.host, timeout=300)
        stack.callback(client.close)
        yield DockerEngine(dockerd=dockerd, registry=registry, image=image, client=client)
