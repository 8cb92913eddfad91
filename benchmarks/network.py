"""Networking: ``docker run --rm --network NET IMG true`` and TCP through a published port.

Run from the repository root as root::

    .venv/bin/python benchmarks/network.py [--repeat 20] [--warmup 3] [--transfers 5]
                                           [--mbytes 1024] [--proxy] [--keep]

One run, on one machine, declarund and dockerd side by side, **each in a private network
namespace** of its own (``ip netns add`` + ``nsenter --net``), so their bridges, veth pairs
and iptables rules never touch the host's network and both are measured on the same footing
(dockerd with its default networking: bridge, iptables, ``docker-proxy`` for loopback):

1. builds the busybox test image (Debian's ``busybox-static``, ``tests/support/images.py``)
   and ``docker load``s the same ``docker-archive`` tar (``skopeo copy``) into both daemons
   (neither can reach a registry on the host's loopback from its namespace);
2. ``docker network create bench-net`` on each;
3. **latency**: ``--warmup`` untimed runs each, then ``--repeat`` rounds; each round times
   ``docker -H unix://SOCK run --rm --network bench-net IMG true`` against declarund and
   dockerd, the order reversed every other round (same docker CLI). Target: declarund's
   median at most half of dockerd's;
4. **throughput**: one busybox container per daemon on ``bench-net`` publishing
   ``127.0.0.1:18001:5001`` (``nc -ll -p 5001 -e sh -c 'cat >/dev/null; echo ok'``: a
   persistent sink that answers ``ok`` once it has read everything) and
   ``127.0.0.1:18002:5002`` (busybox ``httpd`` serving an ``--mbytes`` file of zeros). A
   client (this script, ``--client``, run with ``nsenter --net`` in the daemon's namespace
   so it reaches that daemon's published port on *its* loopback) **uploads** ``--mbytes``
   MiB (1 MiB ``sendall`` calls, then ``shutdown(SHUT_WR)``, timed until the sink's ``ok``
   and close: every byte was read in the container) and **downloads** the file (``GET``,
   timed until the last byte). One untimed transfer each, then ``--transfers`` rounds,
   alternating the daemons. Target: declarund's median MB/s at least 0.8x dockerd's.

   The paths differ: dockerd sends loopback connections to ``docker-proxy`` (a userland
   copy), while declarund's ``portmap`` rules DNAT them in the kernel (``route_localnet``),
   so its proxy is not on that path. ``--proxy`` adds a third series, ``declarund-proxy``,
   with portmap's ``OUTPUT`` jump taken out of declarund's namespace during its transfers
   (``iptables -t nat -D OUTPUT -m addrtype --dst-type LOCAL -j CNI-HOSTPORT-DNAT``, put
   back afterwards), so the same connections go through declarund's splice proxy: proxy
   against proxy.

Everything is removed on exit — containers and networks through each daemon's API before
it stops, then the namespaces (with whatever was left in them) and the temporary directory —
normal end, error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    DOCKER_CLI,
    REPO_ROOT,
    BenchError,
    Daemon,
    Harness,
    docker,
    machine_summary,
    run_benchmark,
    tree_cpu_seconds,
)
from run import Runner, Target, busy_fraction, cpu_ticks, latency, p90

sys.path.insert(0, str(REPO_ROOT))
from tests.support.images import build_busybox_layout

__all__ = ["main"]

_NETWORK = "bench-net"
_SINK = "bench-sink"
_REFERENCE = "bench/busybox:1"
_UPLOAD_PORT = 18001
_DOWNLOAD_PORT = 18002
_CHUNK = 1 << 20
_READY_TIMEOUT = 60.0
_DECLARUND = "declarund"
_DOCKERD = "dockerd"


# -- the client, run inside a daemon's namespace -------------------------------------------


def _upload(port: int, total: int) -> float:
    """Send ``total`` bytes, half-close, wait for the sink's ``ok``; seconds taken."""
    chunk = memoryview(bytes(_CHUNK))
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        started = time.perf_counter()
        left = total
        while left > 0:
            part = chunk[: min(left, _CHUNK)]
            sock.sendall(part)
            left -= len(part)
        sock.shutdown(socket.SHUT_WR)
        reply = b""
        while data := sock.recv(64):
            reply += data
        elapsed = time.perf_counter() - started
    if reply.strip() != b"ok":
        raise BenchError(f"the sink answered {reply[:80]!r}, not ok: the upload was cut short")
    return elapsed


def _download(port: int, total: int) -> float:
    """``GET /blob`` and read to the end; seconds taken; the body must be ``total`` bytes."""
    buffer = bytearray(_CHUNK)
    with socket.create_connection(("127.0.0.1", port), timeout=120) as sock:
        started = time.perf_counter()
        sock.sendall(b"GET /blob HTTP/1.0\r\nHost: bench\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            size = sock.recv_into(buffer)
            if not size:
                break
            head += bytes(buffer[:size])
        head, _, body = head.partition(b"\r\n\r\n")
        received = len(body)
        while size := sock.recv_into(buffer):
            received += size
        elapsed = time.perf_counter() - started
    if b" 200 " not in head.split(b"\r\n", 1)[0] or received != total:
        raise BenchError(f"download: {head[:40]!r}, {received} of {total} bytes")
    return elapsed


def client(direction: str, port: int, total: int) -> int:
    """``--client``: one transfer; prints ``{"seconds": S}``; exit status 0 or 1."""
    try:
        seconds = _upload(port, total) if direction == "upload" else _download(port, total)
    except (BenchError, OSError) as exc:
        print(f"client {direction}: {exc}", file=sys.stderr)
        return 1
    print(json.dumps({"seconds": seconds}))
    return 0


# -- the daemons ---------------------------------------------------------------------------


@dataclass
class Side:
    """One daemon in its namespace, with its transfer figures."""

    daemon: Daemon
    netns: str
    #: declarund through its userland proxy: portmap's OUTPUT jump is taken out meanwhile.
    proxy: bool = False
    upload: list[float] = field(default_factory=list)
    download: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=lambda: {"upload": [], "download": []})

    @property
    def kind(self) -> str:
        """``declarund``, ``declarund-proxy`` or ``dockerd``."""
        return f"{self.daemon.kind}-proxy" if self.proxy else self.daemon.kind


def build_archive(harness: Harness) -> Path:
    """The busybox test image as a ``docker-archive`` tar named ``bench/busybox:1``."""
    layout = harness.path("layout")
    build_busybox_layout(layout, tag="1")
    policy = harness.root / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    archive = harness.root / "busybox.tar"
    command = ["skopeo", "--policy", str(policy), "copy", "--quiet", f"oci:{layout}:1",
               f"docker-archive:{archive}:{_REFERENCE}"]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed: {done.stderr.strip()}")
    return archive


def clean(daemon: Daemon, harness: Harness) -> None:
    """Remove every container, then the benchmark network (errors are only reported)."""
    if not daemon.process.alive():
        return
    try:
        ids = docker(daemon.host, "ps", "-aq", config_dir=harness.docker_config).stdout.split()
        if ids:
            docker(daemon.host, "rm", "-f", *ids, config_dir=harness.docker_config)
        names = docker(daemon.host, "network", "ls", "--format", "{{.Name}}",
                       config_dir=harness.docker_config).stdout.split()  # fmt: skip
        if _NETWORK in names:
            docker(daemon.host, "network", "rm", _NETWORK, config_dir=harness.docker_config)
    except BenchError as exc:
        print(f"cleanup of {daemon.kind}: {exc}", file=sys.stderr)


def start_side(harness: Harness, kind: str, archive: Path) -> Side:
    """Start one daemon in a fresh namespace, load the image, create the network."""
    netns = harness.network_namespace(kind)
    if kind == _DECLARUND:
        daemon = harness.start_declarund("de", wrapper=["nsenter", f"--net=/run/netns/{netns}"])
    else:
        daemon = harness.start_dockerd("dd", netns=netns)
    # Runs before the daemon and the namespace are stopped (the harness unwinds LIFO).
    harness.on_exit(lambda: clean(daemon, harness))
    docker(daemon.host, "load", "-i", str(archive), config_dir=harness.docker_config)
    docker(daemon.host, "network", "create", _NETWORK, config_dir=harness.docker_config)
    return Side(daemon, netns)


def _run_command(daemon: Daemon) -> list[str]:
    return [DOCKER_CLI, "-H", daemon.host, "run", "--rm", "--network", _NETWORK, _REFERENCE,
            "true"]  # fmt: skip


# -- throughput ----------------------------------------------------------------------------


def _sink_script(total: int) -> str:
    return (
        f"mkdir -p /www && head -c {total} /dev/zero > /www/blob && echo ok > /www/ready && "
        "httpd -p 5002 -h /www && "
        "exec nc -ll -p 5001 -e sh -c 'cat >/dev/null; echo ok'"
    )


def start_sink(side: Side, harness: Harness, total: int) -> None:
    """The sink and file server container, published on the namespace's loopback."""
    docker(side.daemon.host, "run", "-d", "--name", _SINK, "--network", _NETWORK,
           "-p", f"127.0.0.1:{_UPLOAD_PORT}:5001", "-p", f"127.0.0.1:{_DOWNLOAD_PORT}:5002",
           _REFERENCE, "sh", "-c", _sink_script(total),
           config_dir=harness.docker_config)  # fmt: skip
    deadline = time.monotonic() + _READY_TIMEOUT
    while True:
        try:
            transfer(side, "upload", 0)
            return
        except BenchError:
            if time.monotonic() > deadline:
                logs = subprocess.run([DOCKER_CLI, "-H", side.daemon.host, "logs", _SINK],
                                      capture_output=True, text=True, check=False)  # fmt: skip
                raise BenchError(
                    f"{side.kind}: the sink did not answer on 127.0.0.1:{_UPLOAD_PORT}: "
                    f"{(logs.stdout + logs.stderr).strip()[-1000:]}"
                ) from None
            time.sleep(0.3)


def client_command(netns: str, direction: str, total: int) -> list[str]:
    """The exact client command for one transfer inside ``netns``."""
    port = _UPLOAD_PORT if direction == "upload" else _DOWNLOAD_PORT
    return ["nsenter", f"--net=/run/netns/{netns}", sys.executable, str(Path(__file__).resolve()),
            "--client", direction, str(port), str(total)]  # fmt: skip


# portmap's jump for connections made in the namespace itself (loopback included).
_OUTPUT_JUMP = ("OUTPUT", "-m", "addrtype", "--dst-type", "LOCAL", "-j", "CNI-HOSTPORT-DNAT")


def _output_jump(netns: str, present: bool) -> None:
    """Put portmap's ``OUTPUT`` jump in ``netns`` back, or take it out (idempotent)."""
    base = ["nsenter", f"--net=/run/netns/{netns}", "iptables", "-w", "-t", "nat"]
    there = subprocess.run([*base, "-C", *_OUTPUT_JUMP], capture_output=True).returncode == 0
    if there == present:
        return
    done = subprocess.run([*base, "-A" if present else "-D", *_OUTPUT_JUMP],
                          capture_output=True, text=True, check=False)  # fmt: skip
    if done.returncode != 0:
        raise BenchError(f"iptables in {netns}: {done.stderr.strip()}")


def transfer(side: Side, direction: str, total: int) -> tuple[float, float]:
    """One transfer; (seconds, CPU seconds of the daemon's process tree meanwhile)."""
    if side.daemon.kind == _DECLARUND:
        _output_jump(side.netns, present=not side.proxy)
    cpu_before = tree_cpu_seconds(side.daemon.measured_pid)
    done = subprocess.run(client_command(side.netns, direction, total), capture_output=True,
                          text=True, check=False, timeout=600)  # fmt: skip
    cpu = tree_cpu_seconds(side.daemon.measured_pid) - cpu_before
    if done.returncode != 0:
        raise BenchError(f"{side.kind}: {done.stderr.strip()[-1000:]}")
    return float(json.loads(done.stdout)["seconds"]), cpu


def throughput(sides: Sequence[Side], harness: Harness, args: argparse.Namespace) -> None:
    """One untimed transfer each way per daemon, then ``--transfers`` alternating rounds."""
    total = args.mbytes << 20
    for side in sides:
        if not side.proxy:
            start_sink(side, harness, total)
        for direction in ("upload", "download"):
            transfer(side, direction, total)
    for round_no in range(args.transfers):
        order = list(sides) if round_no % 2 == 0 else list(reversed(sides))
        cells = []
        for direction in ("upload", "download"):
            for side in order:
                seconds, cpu = transfer(side, direction, total)
                getattr(side, direction).append(seconds)
                side.cpu[direction].append(cpu)
                cells.append(f"{side.kind} {direction} {args.mbytes / seconds:6.0f}")
        print(f"  round {round_no + 1}: {'  '.join(cells)} MiB/s", flush=True)


# -- report --------------------------------------------------------------------------------


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def report_latency(targets: Sequence[Target]) -> None:
    """Latency table and the verdict."""
    print(f"\n{'target':16} {'median':>10} {'p90':>10} {'min':>10} {'max':>10}")
    for t in targets:
        print(
            f"{t.kind:16} {_ms(statistics.median(t.times)):>10} {_ms(p90(t.times)):>10} "
            f"{_ms(min(t.times)):>10} {_ms(max(t.times)):>10}"
        )
    by = {t.kind: statistics.median(t.times) for t in targets}
    ratio = by[_DECLARUND] / by[_DOCKERD]
    verdict = "meets" if ratio <= 0.5 else "MISSES"
    print(f"ratio declarund/dockerd (median, --network {_NETWORK}): {ratio:.2f} "
          f"({verdict} target <= 0.5)")  # fmt: skip


def report_throughput(sides: Sequence[Side], mbytes: int) -> None:
    """Throughput table (MiB/s of the medians of the times) and the verdicts."""
    print(f"\nthroughput, {mbytes} MiB through 127.0.0.1 published ports (MiB/s):")
    medians: dict[tuple[str, str], float] = {}
    for direction in ("upload", "download"):
        for side in sides:
            times: list[float] = getattr(side, direction)
            rates = sorted(mbytes / t for t in times)
            medians[(side.kind, direction)] = mbytes / statistics.median(times)
            print(
                f"  {direction:8} {side.kind:15} median {medians[(side.kind, direction)]:7.0f}"
                f"  min {rates[0]:7.0f}  max {rates[-1]:7.0f}   daemon CPU/transfer "
                f"{statistics.median(side.cpu[direction]):.2f} s"
            )
    for side in sides:
        if side.kind == _DOCKERD:
            continue
        for direction in ("upload", "download"):
            ratio = medians[(side.kind, direction)] / medians[(_DOCKERD, direction)]
            verdict = "meets" if ratio >= 0.8 else "MISSES"
            print(f"ratio {side.kind}/dockerd {direction}: {ratio:.2f} "
                  f"({verdict} target >= 0.8)")  # fmt: skip


def run(args: argparse.Namespace) -> None:
    """The whole benchmark inside one harness."""
    load_before = os.getloadavg()
    with Harness(prefix="dnet-", keep=args.keep) as harness:
        archive = build_archive(harness)
        sides = [start_side(harness, kind, archive) for kind in (_DECLARUND, _DOCKERD)]
        runner = Runner(harness)
        targets = [Target(s.kind, _run_command(s.daemon), s.daemon) for s in sides]
        if args.repeat:
            print(f"latency: {args.warmup} warm-up + {args.repeat} timed runs each", flush=True)
            busy_before = cpu_ticks()
            latency(targets, runner, args)
            busy = busy_fraction(busy_before, cpu_ticks())
            report_latency(targets)
            print(f"all CPUs {100 * busy:.0f} % busy during the latency rounds")
        if args.transfers:
            if args.proxy:
                sides.insert(1, Side(sides[0].daemon, sides[0].netns, proxy=True))
            print(f"\nthroughput: 1 warm-up + {args.transfers} rounds of {args.mbytes} MiB "
                  "each way", flush=True)  # fmt: skip
            busy_before = cpu_ticks()
            throughput(sides, harness, args)
            busy = busy_fraction(busy_before, cpu_ticks())
            report_throughput(sides, args.mbytes)
            print(f"all CPUs {100 * busy:.0f} % busy during the transfers")
        load_after = os.getloadavg()
        print(f"\ndate     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
        print(f"machine  {machine_summary()}")
        print(f"load     1/5-min {load_before[0]:.2f}/{load_before[1]:.2f} at start, "
              f"{load_after[0]:.2f}/{load_after[1]:.2f} at end")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs each (0: skip)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs each first")
    parser.add_argument("--transfers", type=int, default=5, help="timed transfers (0: skip)")
    parser.add_argument("--mbytes", type=int, default=1024, help="MiB per transfer")
    parser.add_argument("--proxy", action="store_true",
                        help="also time declarund's userland proxy (portmap's OUTPUT jump "
                             "taken out of its namespace meanwhile)")  # fmt: skip
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument("--client", nargs=3, metavar=("DIR", "PORT", "BYTES"),
                        help=argparse.SUPPRESS)  # fmt: skip
    args = parser.parse_args(argv)
    if args.client:
        direction, port, total = args.client
        return client(direction, int(port), int(total))
    if args.repeat < 0 or args.warmup < 0 or args.transfers < 0 or args.mbytes < 1:
        parser.error("--repeat, --warmup, --transfers must not be negative; --mbytes positive")
    return run_benchmark(lambda: run(args), needs_root="namespaces, dockerd")


if __name__ == "__main__":
    sys.exit(main())
