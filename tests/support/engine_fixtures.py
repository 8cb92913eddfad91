"""pytest fixtures for the reconciler's end-to-end tests, on both engines: import them into a
conftest (``tests/conftest.py`` does, so one of each engine serves the whole session).

``engine_registry`` (session)
    A loopback registry holding a busybox image (``EngineImage.reference``; ``oci`` is the
    image as written, for tests that check digests or push it under another name).
``declarund_engine`` / ``dockerd_engine`` (session)
    The built-in daemon (a real ``declarund`` subprocess on a private socket and data root)
    and a real Docker engine (a private ``dockerd``), each as an :class:`Engine`: ``client``
    is docker-py (for the tests' own checks), ``adapter`` the engine port declarun drives
    (its reads over declarun's own API client, the rest over that docker-py client). Each skips,
    with the reason, when it cannot run here. Afterwards nothing is left behind: every
    container and user network is removed, and for declarund the CNI state and bridges too.
``engine`` (session, parametrised ``declarund`` / ``dockerd``)
    The one the end-to-end tests take, so every such test runs against both engines.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import docker
import pytest

from declarun.engine.apiclient import EngineAPIClient
from declarun.engine.dockerpy import DockerEngine
from tests.support.dockerd import docker_cli
from tests.support.engine import DockerdUnavailable, run_dockerd
from tests.support.images import OciImage, build_busybox_layout, skopeo_push
from tests.support.registry import REGISTRY_BINARY, RunningRegistry, run_registry

__all__ = [
    "ENGINE_KINDS",
    "Engine",
    "EngineImage",
    "declarund_engine",
    "dockerd_engine",
    "engine",
    "engine_registry",
]

EngineKind = Literal["declarund", "dockerd"]
ENGINE_KINDS: tuple[EngineKind, ...] = ("declarund", "dockerd")
_CLIENT_TIMEOUT = 300


@dataclass(frozen=True)
class EngineImage:
    """A registry on loopback and the busybox image pushed to it."""

    registry: RunningRegistry
    reference: str
    oci: OciImage


@dataclass(frozen=True)
class Engine:
    """A running engine the tests started: its kind, ``unix://`` host, image and clients."""

    kind: EngineKind
    host: str
    registry: RunningRegistry
    image: str
    client: Any
    log_path: Path
    api: EngineAPIClient

    @property
    def adapter(self) -> DockerEngine:
        """The engine port as ``declarun`` commands get it: reads over declarun's own API
        client, the rest over the same docker-py client."""
        return DockerEngine(self.client, host=self.host, timeout=_CLIENT_TIMEOUT, api=self.api)

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this engine (asserts success unless ``check`` is False)."""
        return docker_cli(self.host, *args, check=check)

    def read_log(self) -> str:
        """The engine's own log, for failure messages."""
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


@pytest.fixture(scope="session")
def engine_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EngineImage]:
    """A loopback registry with ``busybox:test`` in it; both engines pull from it."""
    for program in (REGISTRY_BINARY, "skopeo", "/bin/busybox"):
        if shutil.which(program) is None and not Path(program).exists():
            pytest.skip(f"{program} is not installed (see scripts/install-deps.sh)")
    tmp = tmp_path_factory.mktemp("engine-registry")
    with run_registry(tmp / "registry") as registry:
        oci = build_busybox_layout(tmp / "layout")
        yield EngineImage(registry, skopeo_push(oci.layout, registry, "busybox:test"), oci)


def _client(host: str, stack: contextlib.ExitStack) -> Any:
    client = docker.DockerClient(base_url=host, timeout=_CLIENT_TIMEOUT)
    stack.callback(client.close)
    return client


def _api(host: str, stack: contextlib.ExitStack) -> EngineAPIClient:
    api = EngineAPIClient(host, timeout=_CLIENT_TIMEOUT)
    stack.callback(api.close)
    return api


def _declarund_unavailable() -> str | None:
    from tests.daemon.containers.conmon_support import RUNC

    if os.geteuid() != 0:
        return "declarund's containers need root"
    for program in (RUNC, "/usr/bin/conmon", "/usr/lib/cni/bridge", "iptables", "nsenter"):
        if shutil.which(program) is None and not Path(program).exists():
            return f"{program} is missing (see scripts/install-deps.sh)"
    if shutil.which("docker") is None:
        return "the docker CLI is not installed (the tests use it on both engines)"
    return None


@pytest.fixture(scope="session")
def declarund_engine(
    engine_registry: EngineImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Engine]:
    """A real declarund on a private socket and data root, cleaned up to the last bridge."""
    reason = _declarund_unavailable()
    if reason:
        pytest.skip(reason)
    # Imported here: it pulls in the daemon's networking code, needed by this fixture only.
    from tests.daemon.networks.daemon_net import network_daemon

    with contextlib.ExitStack() as stack:
        daemon = stack.enter_context(network_daemon(tmp_path_factory.mktemp("declarund")))
        yield Engine(
            kind="declarund",
            host=daemon.url,
            registry=engine_registry.registry,
            image=engine_registry.reference,
            client=_client(daemon.url, stack),
            api=_api(daemon.url, stack),
            log_path=daemon.log_path,
        )


@pytest.fixture(scope="session")
def dockerd_engine(engine_registry: EngineImage) -> Iterator[Engine]:
    """A real, private dockerd (Debian's docker.io); skipped with the reason when it can't run."""
    with contextlib.ExitStack() as stack:
        try:
            dockerd = stack.enter_context(run_dockerd())
        except DockerdUnavailable as exc:
            pytest.skip(str(exc))
        yield Engine(
            kind="dockerd",
            host=dockerd.host,
            registry=engine_registry.registry,
            image=engine_registry.reference,
            client=_client(dockerd.host, stack),
            api=_api(dockerd.host, stack),
            log_path=dockerd.root / "dockerd.log",
        )


@pytest.fixture(scope="session", params=ENGINE_KINDS)
def engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine in turn: a test taking this runs once on declarund, once on dockerd."""
    chosen: Engine = request.getfixturevalue(f"{request.param}_engine")
    return chosen
