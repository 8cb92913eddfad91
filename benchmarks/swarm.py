"""``declarun apply --engine swarm`` beside ``docker stack deploy`` on one three-node Swarm.

Run as root: .venv/bin/python benchmarks/swarm.py [--services 30] [--replicas 3]
                                                  [--parallel 8] [--repeat 1] [--keep]

The cluster is the tests' (``tests/support/swarm_cluster.py``: three Debian dockerd nodes in
network namespaces of their own, one manager and two workers), the image a static busybox
pushed to a loopback registry every node reaches. The stack: ``--services`` services of
``--replicas`` replicas each (busybox ``httpd``) on one overlay network; the compose file
for ``docker stack deploy`` says the same (replicas, ``update_config`` parallelism 1 /
start-first / rollback / monitor 5 s, as declarun's without a health check,
``endpoint_mode: dnsrr`` — no IPVS here — restart policy ``any``). Per round, each tool in
turn (the order alternating):

(a) **deploy**: from nothing until every replica of every service runs, healthy;
(b) **update**: one field changed on every service (an environment value), until every
    service's rolling update completed.

``declarun apply`` returns once that is so (it waits for each rollout); ``docker stack
deploy`` returns as soon as the specs are sent, so it is timed to its return and, like
declarun, until the Swarm reports convergence (polled every 0.2 s through the manager).
No health checks: ninety containers each checked every second are ninety ``exec``s a second,
which saturate a two-core machine until checks time out — for both tools alike. Everything
is removed between tools (untimed); the cluster, registry and temporary files
go on exit, Ctrl-C included.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

from _harness import REPO_ROOT, BenchError, Harness, docker, machine_summary, run_benchmark

sys.path.insert(0, str(REPO_ROOT))

from declarun.engine.swarm import DockerSwarmEngine
from tests.support.images import build_busybox_layout
from tests.support.swarm_cluster import start_cluster, stop_cluster

__all__ = ["main"]

_POLL = 0.2
_TIMEOUT = 900.0


def _stack(name: str, image: str, services: int, replicas: int, version: str) -> str:
    lines = [f"stack: {name}", "networks:", "  mesh: {}", "containers:"]
    for index in range(services):
        lines += [
            f"  s{index:02d}:",
            f"    image: {image}",
            f"    replicas: {replicas}",
            '    command: ["httpd", "-f", "-p", "8000"]',
            f'    env: {{VERSION: "{version}"}}',
            "    networks: [mesh]",
            "    restart: unless-stopped",
            "    stop_grace_period: 1s",
        ]
    return "\n".join(lines) + "\n"


def _compose(image: str, services: int, replicas: int, version: str) -> str:
    lines = ['version: "3.8"', "networks:", "  mesh: {driver: overlay}", "services:"]
    for index in range(services):
        lines += [
            f"  s{index:02d}:",
            f"    image: {image}",
            '    command: ["httpd", "-f", "-p", "8000"]',
            f'    environment: {{VERSION: "{version}"}}',
            "    networks: [mesh]",
            "    stop_grace_period: 1s",
            "    deploy:",
            f"      replicas: {replicas}",
            "      endpoint_mode: dnsrr",
            "      restart_policy: {condition: any}",
            "      update_config: {parallelism: 1, order: start-first, failure_action: rollback, "
            "monitor: 5s, max_failure_ratio: 0}",
        ]
    return "\n".join(lines) + "\n"


def _converged(engine: DockerSwarmEngine, prefix: str, services: int, replicas: int) -> bool:
    found = [s for s in engine.list_services() if s.name.startswith(prefix)]
    if len(found) != services:
        return False
    if any(s.update_state not in ("", "completed") for s in found):
        return False
    tasks = engine.list_tasks()
    ids = {s.id for s in found}
    running = [
        t
        for t in tasks
        if t.service_id in ids
        and t.current
        and t.state == "running"
        and t.desired_state == "running"
    ]
    return len(running) == services * replicas


def _until_converged(engine: DockerSwarmEngine, prefix: str, services: int, replicas: int) -> None:
    deadline = time.monotonic() + _TIMEOUT
    while not _converged(engine, prefix, services, replicas):
        if time.monotonic() > deadline:
            raise BenchError(f"{prefix}*: did not converge within {_TIMEOUT:.0f} s")
        time.sleep(_POLL)


def _until_gone(engine: DockerSwarmEngine, prefix: str) -> None:
    deadline = time.monotonic() + 300
    while True:
        services = [s for s in engine.list_services() if s.name.startswith(prefix)]
        networks = [n for n in engine.list_networks() if n.name.startswith(prefix)]
        if not services and not networks:
            return
        if time.monotonic() > deadline:
            raise BenchError(f"{prefix}*: not removed within 300 s")
        time.sleep(0.5)


def _declarun(host: str, *args: str) -> None:
    subcommand, *rest = args
    done = subprocess.run(
        [sys.executable, "-m", "declarun", subcommand, "--engine", "swarm", "--host", host, *rest],
        capture_output=True,
        text=True,
        check=False,
        cwd=REPO_ROOT,
        timeout=_TIMEOUT,
    )
    if done.returncode != 0:
        raise BenchError(f"declarun {' '.join(args)} failed:\n{done.stdout[-3000:]}{done.stderr}")


def _timed(action: Callable[[], None]) -> float:
    begin = time.monotonic()
    action()
    return time.monotonic() - begin


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n", 1)[0])
    parser.add_argument("--services", type=int, default=30)
    parser.add_argument("--replicas", type=int, default=3)
    parser.add_argument("--parallel", type=int, default=8, help="declarun apply --parallel")
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    def body() -> None:
        with Harness(prefix="dswb-", keep=args.keep) as harness:
            registry = harness.start_registry()
            layout = build_busybox_layout(harness.path("layout"))
            image = f"{registry.host}/bench/busybox:1"
            subprocess.run(
                ["skopeo", "copy", "--quiet", "--dest-tls-verify=false",
                 f"oci:{layout.layout}:{layout.tag}", f"docker://{image}"],
                check=True, capture_output=True,
            )  # fmt: skip
            port = int(registry.host.rpartition(":")[2])
            cluster = start_cluster(harness.path("cluster"), registry_port=port)
            harness.on_exit(lambda: stop_cluster(cluster.root))
            host = cluster.manager.host
            engine = DockerSwarmEngine.open(host, timeout=120)
            harness.on_exit(engine.close)
            config = harness.path("docker-config")
            work = harness.path("work")
            results: dict[str, dict[str, list[float]]] = {}

            def record(tool: str, what: str, seconds: float) -> None:
                results.setdefault(tool, {}).setdefault(what, []).append(seconds)

            def with_declarun() -> None:
                stack = work / "stack.yaml"
                stack.write_text(_stack("bd", image, args.services, args.replicas, "1"))
                parallel = ("--parallel", str(args.parallel))
                record(
                    "declarun apply",
                    "deploy",
                    _timed(lambda: _declarun(host, "apply", str(stack), *parallel)),
                )
                _until_converged(engine, "bd-", args.services, args.replicas)
                stack.write_text(_stack("bd", image, args.services, args.replicas, "2"))
                record(
                    "declarun apply",
                    "update",
                    _timed(lambda: _declarun(host, "apply", str(stack), *parallel)),
                )
                _until_converged(engine, "bd-", args.services, args.replicas)
                _declarun(host, "destroy", str(stack))
                _until_gone(engine, "bd-")

            def with_stack_deploy() -> None:
                compose = work / "compose.yaml"
                for what, version in (("deploy", "1"), ("update", "2")):
                    compose.write_text(_compose(image, args.services, args.replicas, version))
                    begin = time.monotonic()
                    docker(host, "stack", "deploy", "-c", str(compose), "bc", config_dir=config)
                    returned = time.monotonic() - begin
                    _until_converged(engine, "bc_", args.services, args.replicas)
                    record("docker stack deploy", f"{what} (returns)", returned)
                    record("docker stack deploy", what, time.monotonic() - begin)
                docker(host, "stack", "rm", "bc", config_dir=config)
                _until_gone(engine, "bc_")

            for round_ in range(args.repeat):
                order = [with_declarun, with_stack_deploy]
                for run in order if round_ % 2 == 0 else reversed(order):
                    run()

            print(
                f"{args.services} services x {args.replicas} replicas on 3 Swarm nodes "
                f"(dockerd {engine.version().version}); {machine_summary()}; "
                f"declarun --parallel {args.parallel}; {args.repeat} round(s), median s"
            )
            print(f"{'':24}{'deploy':>12}{'update':>12}")
            for tool, figures in results.items():
                deploy = statistics.median(figures["deploy"])
                update = statistics.median(figures["update"])
                print(f"{tool:24}{deploy:12.1f}{update:12.1f}")
                if "deploy (returns)" in figures:
                    back = statistics.median(figures["deploy (returns)"])
                    back_update = statistics.median(figures["update (returns)"])
                    print(f"{'  (command returns)':24}{back:12.1f}{back_update:12.1f}")

    return run_benchmark(body, needs_root="the Swarm nodes are dockerd in network namespaces")


if __name__ == "__main__":
    sys.exit(main())
