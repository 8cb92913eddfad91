"""Interrupted applies converge: ``declarun apply`` against a real declarund, stopped with
SIGKILL or Ctrl-C (SIGINT) at a step of its plan -- during a pull, between a container's
create and its start, during a health-gated replace (while the new container runs under its
temporary name), during a prune -- then run again: the stack converges, with no duplicate
container, no temporary container left, the volume's data kept, ``declarun plan`` finds
nothing to do and ``declarun daemon check`` nothing wrong.

The daemon is held at the step by a fail point armed to sleep (``NAME=sleep:S``); the test
interrupts the CLI once the daemon's log says it sleeps there.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from declarun.daemon import failpoints
from tests.daemon.containers.daemon_fixtures import needs_runtime
from tests.support.cli import StackCli
from tests.support.daemon import DaemonProcess, arm_failpoints, daemon_check
from tests.support.engine_fixtures import Engine, EngineImage, _api, _client

pytestmark = needs_runtime

STACK = """\
stack: {name}
volumes:
  data: {{}}
containers:
  web:
    image: {image}
    command: ["sh", "-c", "echo {version} >> /data/versions; sleep 1; touch /tmp/ok; exec sleep 3600"]
    volumes: ["data:/data"]
    stop_grace_period: 1s
    healthcheck: {{test: "test -e /tmp/ok", interval: 300ms, retries: 100}}
{extra}"""

EXTRA = """\
  extra:
    image: {image}
    command: ["sleep", "3600"]
    stop_grace_period: 1s
"""


@dataclass(frozen=True)
class Step:
    """Where an apply is interrupted: the fail point that holds it there, and the stack
    the interrupted apply goes to (from the one applied before, if any)."""

    point: str
    before: tuple[str, bool] | None  # (version, with extra) applied first, or nothing
    after: tuple[str, bool]


STEPS: dict[str, Step] = {
    "pull": Step("pull-download", None, ("v1", True)),
    "between-create-and-start": Step("container-record-written", None, ("v1", True)),
    "health-gated-replace": Step("runc-created", ("v1", True), ("v2", True)),
    "prune": Step("rm-midway", ("v1", True), ("v1", False)),
}


@dataclass
class Bench:
    daemon: DaemonProcess
    engine: Engine
    armed: Path


@pytest.fixture(scope="module")
def bench(
    engine_registry: EngineImage, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Bench]:
    from tests.daemon.networks.daemon_net import network_daemon

    tmp = tmp_path_factory.mktemp("interrupted")
    armed = tmp / "failpoints"
    arm_failpoints(armed, "")
    with contextlib.ExitStack() as stack:
        daemon = stack.enter_context(network_daemon(tmp, env={failpoints.ENV: f"@{armed}"}))
        engine = Engine(
            kind="declarund",
            host=daemon.url,
            registry=engine_registry.registry,
            image=engine_registry.reference,
            client=_client(daemon.url, stack),
            log_path=daemon.log_path,
            api=_api(daemon.url, stack),
        )
        yield Bench(daemon, engine, armed)


def _write(cli: StackCli, version: str, extra: bool) -> None:
    text = STACK.replace("{extra}", EXTRA if extra else "")
    cli.write(text, version=version)


def _wait_for_log(daemon: DaemonProcess, needle: str, since: int, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while needle not in daemon.log()[since:]:
        assert time.monotonic() < deadline, f"{needle!r} not in the daemon's log"
        time.sleep(0.05)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT], ids=["SIGKILL", "SIGINT"])
@pytest.mark.parametrize("where", list(STEPS))
def test_interrupted_apply_converges(
    bench: Bench, tmp_path: Path, where: str, sig: signal.Signals
) -> None:
    step = STEPS[where]
    cli = StackCli(bench.engine, tmp_path, "")
    try:
        if step.point.startswith("pull"):
            bench.engine.docker("rmi", "-f", bench.engine.image, check=False)
        if step.before is not None:
            _write(cli, *step.before)
            done = cli.run("apply", "stack.yaml", "--yes")
            assert done.returncode == 0, done.stdout + done.stderr
        _write(cli, *step.after)
        since = len(bench.daemon.log())
        arm_failpoints(bench.armed, f"{step.point}=sleep:3\n")
        applying = cli.popen("apply", "stack.yaml", "--yes")
        try:
            _wait_for_log(bench.daemon, f"fail point {step.point}: sleeping", since, 120)
            arm_failpoints(bench.armed, "")
            applying.send_signal(sig)
            out, err = applying.communicate(timeout=120)
        finally:
            arm_failpoints(bench.armed, "")
            if applying.poll() is None:
                applying.kill()
                applying.communicate()
        assert "Traceback" not in err, err
        # The daemon may still be asleep at the point (on its event loop, deaf to pings):
        # the next apply would find no engine answering.
        _wait_for_log(bench.daemon, f"fail point {step.point}: slept", since, 60)
        expected = -signal.SIGKILL if sig == signal.SIGKILL else 130
        assert applying.returncode in (expected, 0), (applying.returncode, out, err)

        again = cli.run("apply", "stack.yaml", "--yes")
        assert again.returncode == 0, again.stdout + again.stderr
        plan = cli.run("plan", "stack.yaml")
        assert plan.returncode == 0, plan.stdout + plan.stderr
        names = sorted(
            c["Names"][0].lstrip("/")
            for c in bench.engine.client.api.containers(
                all=True, filters={"label": f"dev.declarun.stack={cli.name}"}
            )
        )
        wanted = [f"{cli.name}-web"] + ([f"{cli.name}-extra"] if step.after[1] else [])
        assert names == sorted(wanted), names  # no duplicate, no <name>-next left
        web = cli.inspect("web") or {}
        assert web["State"]["Running"] and web["State"]["Health"]["Status"] == "healthy"
        versions = bench.engine.docker(
            "exec", f"{cli.name}-web", "cat", "/data/versions"
        ).stdout.split()
        # The volume kept what every container that ran wrote into it.
        first = [step.before[0]] if step.before else []
        assert versions[: len(first)] == first and versions[-1] == step.after[0], versions
        checked = daemon_check(bench.daemon)
        assert checked.returncode == 0 and checked.stdout == "", checked.stdout + checked.stderr
    finally:
        arm_failpoints(bench.armed, "")
        cli.clean()
