"""Load and soak: concurrent docker-py clients with a realistic mix, and the daemon watched.

``python -m tests.hostile.soak [--minutes 10] [--clients 20] [--subscribers 5]`` (as root,
from the repository root; ``benchmarks/soak.py`` runs the same) starts a loopback registry
with busybox and a private declarund, then runs :func:`run_soak`: each client loops

    create (sometimes on a user network) -> start -> inspect -> logs -> exec -> list ->
    image inspect -> network connect/disconnect of a second network (every fifth round) -> stop -> remove

while event subscribers read ``/events``. Recorded: requests and errors, p50/p99 latency per
endpoint family, the daemon's RSS and open file descriptors every ``--sample`` seconds,
events received; at the end nothing may be left (containers, runtime state, mounts).
``tests/hostile/test_soak.py`` runs a one-minute version.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import docker

__all__ = ["SoakReport", "main", "run_soak"]


def _rss(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def _fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


@dataclass
class SoakReport:
    """What a soak run did and saw."""

    seconds: float = 0.0
    rounds: int = 0
    requests: int = 0
    errors: list[str] = field(default_factory=list)
    latencies: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, rss, fds) under load
    after: tuple[float, int, int] = (0.0, 0, 0)  # once every client stopped
    events: int = 0

    def percentiles(self) -> dict[str, tuple[int, float, float]]:
        """family -> (count, p50 ms, p99 ms)."""
        out = {}
        for family, values in sorted(self.latencies.items()):
            ordered = sorted(values)
            p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
            out[family] = (len(values), statistics.median(ordered) * 1000, p99 * 1000)
        return out

    def growth_after_warmup(self) -> tuple[float, float]:
        """RSS and fd growth (fractions) under load: from the first sample after a fifth of
        the run (the warm-up) to the last one taken while the clients still ran."""
        if len(self.samples) < 3:
            return 0.0, 0.0
        start = next(s for s in self.samples if s[0] >= self.seconds / 5)
        end = self.samples[-1]
        return (end[1] - start[1]) / start[1], (end[2] - start[2]) / max(start[2], 1)

    def summary(self) -> str:
        """Figures, one line each."""
        lines = [
            f"{self.seconds:.0f} s, {self.rounds} rounds, {self.requests} requests, "
            f"{len(self.errors)} errors, {self.events} events received"
        ]
        for family, (count, p50, p99) in self.percentiles().items():
            lines.append(f"  {family:18} n={count:6}  p50 {p50:8.1f} ms  p99 {p99:8.1f} ms")
        for t, rss, fds in self.samples:
            lines.append(f"  t={t:6.0f} s  RSS {rss / 2**20:7.1f} MiB  fds {fds}")
        t, rss, fds = self.after
        lines.append(f"  after the clients stopped: RSS {rss / 2**20:7.1f} MiB  fds {fds}")
        rss_growth, fd_growth = self.growth_after_warmup()
        lines.append(f"  growth after warm-up: RSS {rss_growth:+.1%}, fds {fd_growth:+.1%}")
        lines.extend(f"  ERROR {e}" for e in self.errors[:20])
        return "\n".join(lines)


class _Client:
    def __init__(self, host: str, report: SoakReport, lock: threading.Lock) -> None:
        self.docker = docker.DockerClient(base_url=host, timeout=120)
        self.report = report
        self.lock = lock

    def timed(self, family: str, call: Callable[[], Any]) -> Any:
        started = time.monotonic()
        try:
            return call()
        finally:
            elapsed = time.monotonic() - started
            with self.lock:
                self.report.requests += 1
                self.report.latencies[family].append(elapsed)

    def round(self, number: int, image: str, network: str | None) -> None:
        api = self.docker.api
        use_net = network is not None and number % 5 == 0
        host_config = api.create_host_config(network_mode=network if use_net else "none")
        created = self.timed(
            "create",
            lambda: api.create_container(
                image, ["sh", "-c", "echo soak; sleep 30"], host_config=host_config
            ),
        )
        cid = created["Id"]
        try:
            self.timed("start", lambda: api.start(cid))
            self.timed("inspect", lambda: api.inspect_container(cid))
            self.timed("logs", lambda: api.logs(cid))
            exec_id = self.timed("exec", lambda: api.exec_create(cid, ["true"])["Id"])
            self.timed("exec", lambda: api.exec_start(exec_id))
            self.timed("list", lambda: api.containers(all=True))
            self.timed("image", lambda: api.inspect_image(image))
            if use_net:
                # A second network, joined and left while running. (Leaving the network named
                # by NetworkMode and joining it again is refused by declarund today: 403
                # "endpoint ... already exists", where dockerd reconnects.)
                extra = f"{network}-2"
                self.timed("network", lambda: api.connect_container_to_network(cid, extra))
                self.timed("network", lambda: api.disconnect_container_from_network(cid, extra))
            self.timed("stop", lambda: api.stop(cid, timeout=1))
        finally:
            self.timed("remove", lambda: api.remove_container(cid, force=True))


def _subscriber(host: str, report: SoakReport, lock: threading.Lock, stop: threading.Event) -> None:
    client = docker.APIClient(base_url=host, timeout=None)
    try:
        while not stop.is_set():
            until = time.time() + 5
            for _event in client.events(since=time.time(), until=until, decode=True):
                with lock:
                    report.events += 1
    except Exception as exc:  # any failure of a subscriber is an error of the run
        if not stop.is_set():
            with lock:
                report.errors.append(f"events: {type(exc).__name__}: {exc}")
    finally:
        client.close()


def run_soak(
    host: str,
    pid: int,
    image: str,
    *,
    seconds: float,
    clients: int,
    subscribers: int,
    network: str | None = None,
    sample_every: float = 10.0,
) -> SoakReport:
    """Run the mix against the daemon at ``host`` (process ``pid``) for ``seconds``."""
    report = SoakReport()
    lock = threading.Lock()
    stop = threading.Event()
    started = time.monotonic()

    def client_loop(index: int) -> None:
        client = _Client(host, report, lock)
        number = index
        try:
            while not stop.is_set():
                try:
                    client.round(number, image, network)
                    with lock:
                        report.rounds += 1
                except Exception as exc:
                    with lock:
                        report.errors.append(f"client {index}: {type(exc).__name__}: {exc}")
                number += 1
        finally:
            client.docker.close()

    threads = [threading.Thread(target=client_loop, args=(i,), daemon=True) for i in range(clients)]
    threads += [
        threading.Thread(target=_subscriber, args=(host, report, lock, stop), daemon=True)
        for _ in range(subscribers)
    ]
    for thread in threads:
        thread.start()
    try:
        while time.monotonic() - started < seconds:
            report.samples.append((time.monotonic() - started, _rss(pid), _fds(pid)))
            time.sleep(min(sample_every, max(0.0, seconds - (time.monotonic() - started))))
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=180)
        report.seconds = time.monotonic() - started
        report.after = (report.seconds, _rss(pid), _fds(pid))
    return report


@contextlib.contextmanager
def soak_target(tmp: Path) -> Iterator[tuple[Any, str]]:
    """A registry with busybox and a private declarund with it pulled: (daemon, image)."""
    from tests.daemon.networks.daemon_net import network_daemon
    from tests.support.images import build_busybox_layout, skopeo_push
    from tests.support.registry import run_registry

    with run_registry(tmp / "registry") as registry, network_daemon(tmp / "d") as daemon:
        reference = skopeo_push(
            build_busybox_layout(tmp / "layout").layout, registry, "busybox:test"
        )
        client = docker.DockerClient(base_url=daemon.url, timeout=120)
        try:
            client.images.pull(reference)
            client.networks.create("soak-net")
            client.networks.create("soak-net-2")
        finally:
            client.close()
        yield daemon, reference


def main(argv: list[str] | None = None) -> int:
    """Run a soak and print its figures; 0 when there was no error and no growth > 10 %."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--subscribers", type=int, default=5)
    parser.add_argument("--sample", type=float, default=30.0, help="seconds between samples")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args(argv)
    with (
        tempfile.TemporaryDirectory(prefix="soak-", dir="/tmp") as raw,
        soak_target(Path(raw)) as (daemon, image),
    ):
        report = run_soak(
            daemon.url,
            daemon.process.pid,
            image,
            seconds=args.minutes * 60,
            clients=args.clients,
            subscribers=args.subscribers,
            network="soak-net",
            sample_every=args.sample,
        )
        left = docker.DockerClient(base_url=daemon.url).containers.list(all=True)
        tracebacks = daemon.log().count("Traceback (most recent call last)")
    print(report.summary())
    print(f"containers left: {len(left)}; tracebacks in the daemon log: {tracebacks}")
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "seconds": report.seconds,
                    "rounds": report.rounds,
                    "requests": report.requests,
                    "errors": report.errors,
                    "percentiles_ms": report.percentiles(),
                    "samples": report.samples,
                    "after": report.after,
                    "events": report.events,
                },
                indent=1,
            )
        )
    rss_growth, fd_growth = report.growth_after_warmup()
    ok = (
        not report.errors and not left and not tracebacks and rss_growth < 0.10 and fd_growth < 0.10
    )
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
