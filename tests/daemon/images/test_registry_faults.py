"""Registry faults, injected by :class:`tests.support.faultproxy.FaultProxy` in front of the
real registry, against a real declarund pulling and pushing through the docker CLI.

Each scenario scripts faults, runs ``docker pull`` (or ``push``) through the proxy and
expects it to succeed (transient faults: retried with back-off, resumed with ``Range``) or
to fail with a clear error naming the registry, the repository and the cause (permanent
ones). After each: nothing half-stored (no image, no blob that does not hash to its
digest: ``declarun daemon check`` is clean), and -- after a failure -- a pull without
faults succeeds, reusing what the failed one verified.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.daemon.conftest import PushedImage
from tests.daemon.images.daemon_support import ThreadLoop, docker, need_docker
from tests.support.daemon import DaemonProcess, daemon_check, running_daemon
from tests.support.faultproxy import Fault, FaultProxy, running_proxy
from tests.support.registry import RunningRegistry

#: The daemon gives up on a silent registry after this many seconds (the stall is longer).
READ_TIMEOUT = 2.0

LAYER = "LAYER"  # stands for the image's (largest) layer's digest in a path pattern
CONFIG = "CONFIG"  # its config blob's digest


@dataclass(frozen=True)
class Scenario:
    """Faults to inject and what the pull (or push) must do."""

    faults: tuple[Fault, ...]
    #: ``None``: it succeeds; else words its error must contain.
    error: tuple[str, ...] | None = None
    resumed: bool = False
    token: bool = False
    bad_token: bool = False
    push: bool = False
    extra: dict[str, object] = field(default_factory=dict)


def blob(which: str = LAYER) -> str:
    return f"/blobs/{which}$"


SCENARIOS: dict[str, Scenario] = {
    # -- transient: retried, resumed ----------------------------------------------------
    "reset-mid-layer": Scenario((Fault("reset", blob(), times=2, after=64 << 10),), resumed=True),
    "truncated-body": Scenario((Fault("truncate", blob(), after=100 << 10),), resumed=True),
    "short-content-length": Scenario((Fault("short-length", blob(), after=4096),), resumed=True),
    "stall-past-read-timeout": Scenario(
        (Fault("stall", blob(), after=32 << 10, seconds=READ_TIMEOUT + 3),), resumed=True
    ),
    "5xx-bursts": Scenario(
        (
            Fault("status", "/manifests/", status=503, times=2),
            Fault("status", blob(CONFIG), status=500),
            Fault("status", blob(), status=502, times=2),
        )
    ),
    "429-retry-after": Scenario(
        (Fault("status", blob(), status=429, headers={"Retry-After": "1"}),)
    ),
    "redirect-then-503": Scenario((Fault("redirect-fail", blob(), status=503),)),
    "token-then-pull": Scenario((), token=True),
    "token-endpoint-503-once": Scenario((Fault("status", "^/token$", status=503),), token=True),
    # -- permanent: a clear error, nothing half-stored -----------------------------------
    "corrupt-layer": Scenario((Fault("corrupt", blob(), times=10),), error=("digest", "busybox")),
    "manifest-lies-about-size": Scenario(
        (Fault("lie-size", "/manifests/", times=10, after=1000),), error=("busybox",)
    ),
    "layer-500-forever": Scenario(
        (Fault("status", blob(), status=500, times=100),), error=("busybox", "500")
    ),
    "redirect-to-failing-url": Scenario(
        (Fault("redirect-fail", blob(), status=404, times=100),), error=("busybox",)
    ),
    "token-endpoint-fails": Scenario(
        (Fault("status", "^/token$", status=500, times=100),), token=True, error=("token",)
    ),
    "token-refused-401-loop": Scenario((), token=True, bad_token=True, error=("busybox",)),
    # -- push ----------------------------------------------------------------------------
    "push-5xx-and-reset": Scenario(
        (
            Fault("status", "/blobs/uploads/$", method="POST", status=503),
            Fault("reset", "/blobs/uploads/", method="PUT"),
            Fault("status", "/manifests/", method="PUT", status=502),
        ),
        push=True,
    ),
    "push-manifest-refused": Scenario(
        (Fault("status", "/manifests/", method="PUT", status=500, times=100),),
        push=True,
        error=("500",),
    ),
}


@dataclass
class Bench:
    daemon: DaemonProcess
    proxy: FaultProxy
    loop: ThreadLoop
    pushed: PushedImage


@pytest.fixture(scope="module")
def proxy_loop(registry: RunningRegistry) -> Iterator[tuple[FaultProxy, ThreadLoop]]:
    need_docker()
    loop = ThreadLoop()
    served = running_proxy(registry.url)
    try:
        yield loop.run(served.__aenter__()), loop
    finally:
        loop.run(served.__aexit__(None, None, None))
        loop.close()


@pytest.fixture
def bench(
    tmp_path: Path,
    proxy_loop: tuple[FaultProxy, ThreadLoop],
    busybox_image_pushed: PushedImage,
) -> Iterator[Bench]:
    # A daemon of its own per scenario: a failed pull keeps what it verified (for the next
    # pull to reuse), which would hide the next scenario's faults.
    env = {"DECLARUND_REGISTRY_READ_TIMEOUT": str(READ_TIMEOUT)}
    with running_daemon(tmp_path, env=env) as daemon:
        yield Bench(daemon, *proxy_loop, busybox_image_pushed)


def _blobs(daemon: DaemonProcess) -> set[str]:
    return {p.name for p in (daemon.data_root / "content" / "blobs" / "sha256").iterdir()}


def _resolve(pattern: str, layer: str, config: str) -> str:
    return pattern.replace(LAYER, layer).replace(CONFIG, config)


@pytest.mark.parametrize("name", list(SCENARIOS))
def test_registry_fault(bench: Bench, name: str) -> None:
    scenario = SCENARIOS[name]
    daemon, proxy = bench.daemon, bench.proxy
    image = bench.pushed.image
    layer = max(image.layers, key=lambda lay: lay.size)
    faults = [
        Fault(**{**f.__dict__, "path_re": _resolve(f.path_re, layer.digest, image.config.digest)})
        for f in scenario.faults
    ]
    if scenario.push:
        ref = f"{proxy.host}/pushed/{name}:1"
        docker(daemon, "pull", "-q", bench.pushed.reference)
        docker(daemon, "tag", bench.pushed.reference, ref)
        command = ["push", ref]
    else:
        ref = f"{proxy.host}/busybox:test"
        command = ["pull", ref]
    bench.loop.run(_script(proxy, *faults, token=scenario.token, bad_token=scenario.bad_token))
    try:
        done = docker(daemon, *command, check=False, timeout=120)
        output = done.stdout + done.stderr
        assert not [f for f in faults if f.hits == 0], (faults, proxy.log)
        if scenario.error is None:
            assert done.returncode == 0, output + daemon.log()[-3000:]
            if scenario.resumed:
                assert any(line.endswith("-") or "bytes=" in line for line in proxy.log), proxy.log
                ranged = [line for line in proxy.log if "bytes=" in line]
                assert ranged and all(not line.endswith("bytes=0-") for line in ranged), proxy.log
        else:
            assert done.returncode != 0, output
            message = output.lower()
            for word in scenario.error:
                assert word.lower() in message, output
            assert "traceback" not in message, output
            if not scenario.push:
                assert docker(daemon, "images", "-q", ref).stdout == ""
                assert layer.digest[7:] not in _blobs(daemon) or name == "layer-500-forever"
        checked = daemon_check(daemon)
        assert checked.returncode == 0 and checked.stdout == "", checked.stdout + checked.stderr
        if scenario.error is not None:
            # Without faults, it works; what the failed attempt verified is not fetched again.
            seen_before = {line for line in proxy.log if "/blobs/" in line}
            bench.loop.run(_script(proxy, token=scenario.token))
            again = docker(daemon, *command, check=False, timeout=120)
            assert again.returncode == 0, again.stdout + again.stderr
            if name == "layer-500-forever":
                config = f"GET /v2/busybox/blobs/{image.config.digest}"
                assert any(line.startswith(config) for line in seen_before), seen_before
                assert not any(line.startswith(config) for line in proxy.log), proxy.log
            checked = daemon_check(daemon)
            assert checked.returncode == 0 and checked.stdout == "", checked.stdout
    finally:
        bench.loop.run(_script(proxy, token=False))


async def _script(proxy: FaultProxy, *faults: Fault, token: bool, bad_token: bool = False) -> None:
    """Set the proxy's script on its own loop (no request sees half of it)."""
    proxy.script(*faults, token=token, bad_token=bad_token)
