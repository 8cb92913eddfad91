"""The longer API fuzz run: ``python -m tests.hostile.fuzz [--examples 200] [--minutes 30]``.

Starts what the bounded test starts (a loopback registry with busybox, a private
declarund with a container, exec instance, network and volume in it), fuzzes every
implemented operation with ``--examples`` positive and as many negative generated requests
(see ``tests/hostile/apifuzz.py``), then checks the daemon's log for tracebacks and
``/_ping``, and prints the figures. Exit status 1 when anything failed. Run as root from
the repository root; everything it starts is stopped and removed at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import docker

from tests.daemon.networks.daemon_net import network_daemon
from tests.hostile.apifuzz import daemon_tracebacks, run_fuzz, seed
from tests.support.daemon import http_request
from tests.support.images import build_busybox_layout, skopeo_push
from tests.support.registry import run_registry


def main(argv: list[str] | None = None) -> int:
    """Run the fuzzer; print its figures; 0 when nothing failed."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--examples", type=int, default=200, help="per operation and mode")
    parser.add_argument("--minutes", type=float, default=60.0, help="stop generating after")
    parser.add_argument("--seed", type=int, default=int(time.time()))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fuzz-", dir="/tmp") as raw:
        tmp = Path(raw)
        with run_registry(tmp / "registry") as registry, network_daemon(tmp / "d") as daemon:
            reference = skopeo_push(
                build_busybox_layout(tmp / "layout").layout, registry, "busybox:test"
            )
            client = docker.DockerClient(base_url=daemon.url, timeout=120)
            try:
                client.images.pull(reference)
                seeded = seed(client, reference)
            finally:
                client.close()
            log_start = len(daemon.log())

            def progress(method: str, path: str, status: int) -> None:
                progress.count += 1  # type: ignore[attr-defined]
                if progress.count % 500 == 0:  # type: ignore[attr-defined]
                    print(f"  ... {progress.count} requests", flush=True)  # type: ignore[attr-defined]

            progress.count = 0  # type: ignore[attr-defined]
            report = run_fuzz(
                daemon.socket_path,
                examples_per_operation=args.examples,
                seeded=seeded,
                deadline=time.monotonic() + args.minutes * 60,
                seed_value=args.seed,
                on_case=progress,
            )
            tracebacks = daemon_tracebacks(daemon.log()[log_start:])
            ping = http_request(daemon.socket_path, "GET", "/_ping")
    print(f"seed {args.seed}: {report.summary()}")
    print(f"tracebacks in the daemon log: {len(tracebacks)}; /_ping afterwards: {ping.status}")
    slowest = report.seconds_by_operation.most_common(8)
    print("slowest (s waiting):", ", ".join(f"{op} {secs:.1f}" for op, secs in slowest))
    for failure in report.failures[:50]:
        print("FAIL", failure[:600])
    for trace in tracebacks[:5]:
        print(trace)
    if report.ungenerated:
        print("no cases generated for:", ", ".join(report.ungenerated))
    return 0 if not report.failures and not tracebacks and ping.status == 200 else 1


if __name__ == "__main__":
    sys.exit(main())
