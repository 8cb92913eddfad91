"""``docker run --rm IMG true``: declarund vs dockerd vs bare runc; memory per container; 50 at once.

Run from the repository root as root::

    .venv/bin/python benchmarks/run.py [--repeat 20] [--warmup 3] [--idle 20]
                                       [--concurrent 50] [--rounds 3] [--profile DIR] [--keep]

One run, on one machine, side by side:

1. builds the busybox test image (Debian's ``busybox-static``; ``tests/support/images.py``) as an
   OCI layout, pushes it with skopeo to a private registry on ``127.0.0.1``, pulls it into
   declarund and into dockerd (Debian's ``docker.io``, no bridge), and ``docker save | docker
   load``s it into a second dockerd running with its *default* networking inside a private
   network namespace (bridge, veth, iptables — none of it touches the host's network);
2. unpacks the same layer into an OCI bundle (``runc spec`` + edits) for bare ``runc run``;
3. **latency**: after ``--warmup`` untimed runs of each, ``--repeat`` rounds; each round times
   ``docker run --rm --network none IMG true`` on declarund and dockerd, ``docker run --rm IMG
   true`` on the bridged dockerd, and ``runc run --bundle B <fresh id>``, the order reversed
   every other round; the same docker CLI (``/usr/local/bin/docker``) for every daemon. Then
   a per-request breakdown (create / start / wait / delete over the API socket);
4. **memory**: ``--idle`` detached ``sleep 3600`` containers on each daemon; the engine's
   processes (the daemon's tree, plus every process outside the containers' PID namespaces
   whose command line names the daemon's directory: conmon, containerd-shim) are measured
   before and after, in RSS and PSS (shared library pages split between the processes
   sharing them);
5. **concurrency**: ``--concurrent`` ``docker run -d`` started at once from a thread pool,
   wall time until every one has returned and all are running, ``--rounds`` times each.

``--profile DIR`` then runs declarund under py-spy for ``--repeat`` more runs and prints the
busiest functions (timings skewed while profiling; ``.venv/bin/pip install py-spy``).
Everything started is stopped and removed on exit, normal or not.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    DOCKER_CLI,
    REPO_ROOT,
    BenchError,
    Daemon,
    Harness,
    Registry,
    docker,
    machine_summary,
    run_benchmark,
    tree_rss_kib,
)

sys.path.insert(0, str(REPO_ROOT))
from tests.support.images import OciImage, build_busybox_layout

__all__ = ["main"]

_REPO = "bench/busybox"
_TAG = "1"
_SETTLE_SECONDS = 2.0
_DECLARUND = "declarund"
_DOCKERD = "dockerd"
_BRIDGED = "dockerd-bridge"
_RUNC = "runc"
_CLI = "docker version"


# -- the image and the bundle --------------------------------------------------------------


def _skopeo(*args: str, policy: Path) -> None:
    if shutil.which("skopeo") is None:
        raise BenchError("skopeo not found: apt-get install skopeo")
    command = ["skopeo", "--policy", str(policy), *args]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"skopeo {' '.join(args)} failed: {done.stderr.strip()}")


def prepare_image(harness: Harness, registry: Registry) -> tuple[OciImage, str, Path]:
    """Build the busybox layout, push it; returns (image, reference, docker-archive tar)."""
    image = build_busybox_layout(harness.path("layout"), tag=_TAG)
    policy = harness.root / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    reference = f"{registry.host}/{_REPO}:{_TAG}"
    layout = f"oci:{image.layout}:{_TAG}"
    _skopeo("copy", "--quiet", "--dest-tls-verify=false", layout, f"docker://{reference}",
            policy=policy)  # fmt: skip
    # The bridged dockerd lives in its own network namespace and cannot reach the registry.
    archive = harness.root / "busybox.tar"
    _skopeo("copy", "--quiet", layout, f"docker-archive:{archive}:{reference}", policy=policy)
    return image, reference, archive


def _capped_rlimits(rlimits: list[dict[str, object]]) -> list[dict[str, object]]:
    # Raising a limit above the hard limit needs CAP_SYS_RESOURCE, which these machines refuse.
    capped = []
    for entry in rlimits:
        name = str(entry["type"]).removeprefix("RLIMIT_")
        _soft, hard = resource.getrlimit(getattr(resource, f"RLIMIT_{name}"))
        limit = hard if hard != resource.RLIM_INFINITY else 2**64 - 1
        capped.append(
            {
                "type": entry["type"],
                "hard": min(int(str(entry["hard"])), limit),
                "soft": min(int(str(entry["soft"])), limit),
            }
        )
    return capped


def make_bundle(harness: Harness, image: OciImage) -> Path:
    """An OCI bundle of the image's root filesystem that runs ``true``, for bare runc."""
    bundle = harness.path("bundle")
    rootfs = bundle / "rootfs"
    rootfs.mkdir()
    layer = image.layout / "blobs" / "sha256" / image.layers[0].digest.split(":", 1)[1]
    with tarfile.open(layer, "r:gz") as tar:
        tar.extractall(rootfs, filter="tar")
    done = subprocess.run(["runc", "spec", "--bundle", str(bundle)], capture_output=True, text=True)
    if done.returncode != 0:
        raise BenchError(f"runc spec failed: {done.stderr.strip()}")
    config_path = bundle / "config.json"
    config = json.loads(config_path.read_text())
    config["process"]["args"] = ["true"]
    config["process"]["terminal"] = False
    config["process"]["rlimits"] = _capped_rlimits(config["process"].get("rlimits", []))
    config["root"]["readonly"] = False  # as docker's writable layer
    config["hostname"] = "bench"
    config_path.write_text(json.dumps(config, indent=2))
    return bundle


# -- timing --------------------------------------------------------------------------------


@dataclass
class Target:
    """One thing ``docker run --rm IMG true`` (or ``runc run``) is timed against."""

    kind: str
    command: list[str]
    daemon: Daemon | None = None
    times: list[float] = field(default_factory=list)


class Runner:
    """Runs commands with the same environment for every target."""

    def __init__(self, harness: Harness) -> None:
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
        self.env["DOCKER_CONFIG"] = str(harness.docker_config)
        self.runc_root = harness.path("runc-state")
        self._counter = 0

    def command(self, target: Target) -> list[str]:
        """The exact command for one run (runc needs a fresh container id each time)."""
        if target.kind != _RUNC:
            return target.command
        self._counter += 1
        return [*target.command, f"bench-{os.getpid()}-{self._counter}"]

    def timed(self, target: Target) -> float:
        """Run once; seconds of wall time; BenchError on a non-zero exit."""
        command = self.command(target)
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, env=self.env, check=False)
        elapsed = time.perf_counter() - started
        if done.returncode != 0:
            raise BenchError(
                f"{target.kind}: {' '.join(command)} exited {done.returncode}:\n"
                f"{(done.stderr or done.stdout).strip()[-2000:]}"
            )
        return elapsed


def latency(targets: Sequence[Target], runner: Runner, args: argparse.Namespace) -> None:
    """Warm up, then time ``--repeat`` alternating rounds."""
    for target in targets:
        for _ in range(args.warmup):
            runner.timed(target)
    for round_no in range(args.repeat):
        order = list(targets) if round_no % 2 == 0 else list(reversed(targets))
        for target in order:
            target.times.append(runner.timed(target))
        line = "  ".join(f"{t.kind} {t.times[-1] * 1000:6.1f}" for t in targets)
        print(f"  round {round_no + 1:2}: {line} ms", flush=True)


def cpu_ticks() -> tuple[int, int]:
    """Machine-wide (busy, total) CPU ticks from /proc/stat."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_fraction(before: tuple[int, int], after: tuple[int, int]) -> float:
    """Share of all CPUs busy between two :func:`cpu_ticks` readings."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total else 0.0


def p90(values: Sequence[float]) -> float:
    """The 90th percentile (inclusive method; the maximum with fewer than 2 values)."""
    if len(values) < 2:
        return max(values)
    return statistics.quantiles(values, n=10, method="inclusive")[8]


# -- per-request breakdown over the API socket ---------------------------------------------


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(60)
        sock.connect(self._path)
        self.sock = sock


def _api(daemon: Daemon, method: str, path: str, body: object = None) -> tuple[int, bytes]:
    conn = _UnixConnection(daemon.host.removeprefix("unix://"))
    try:
        data = json.dumps(body).encode() if body is not None else None
        headers = {"Content-Type": "application/json"} if data is not None else {}
        conn.request(method, "/v1.41" + path, body=data, headers=headers)
        resp = conn.getresponse()
        return resp.status, resp.read()
    finally:
        conn.close()


_PHASES = ("create", "start", "wait", "delete")


def phase_breakdown(daemon: Daemon, reference: str, runs: int) -> dict[str, float]:
    """Median milliseconds of each request of a create/start/wait/delete cycle."""
    spent: dict[str, list[float]] = {phase: [] for phase in _PHASES}
    body = {"Image": reference, "Cmd": ["true"], "HostConfig": {"NetworkMode": "none"}}
    for _ in range(runs):
        marks = [time.perf_counter()]
        status, out = _api(daemon, "POST", "/containers/create", body)
        if status != 201:
            raise BenchError(f"{daemon.kind} create: {status} {out[:300]!r}")
        cid = json.loads(out)["Id"]
        marks.append(time.perf_counter())
        for method, path in (
            ("POST", f"/containers/{cid}/start"),
            ("POST", f"/containers/{cid}/wait?condition=not-running"),
            ("DELETE", f"/containers/{cid}"),
        ):
            status, out = _api(daemon, method, path)
            if status >= 300:
                raise BenchError(f"{daemon.kind} {method} {path}: {status} {out[:300]!r}")
            marks.append(time.perf_counter())
        for phase, start, end in zip(_PHASES, marks[:-1], marks[1:], strict=True):
            spent[phase].append((end - start) * 1000)
    return {phase: statistics.median(values) for phase, values in spent.items()}


# -- memory --------------------------------------------------------------------------------


def _pid_namespace(pid: int | str) -> str:
    try:
        return os.readlink(f"/proc/{pid}/ns/pid")
    except OSError:
        return ""


def _pss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


@dataclass(frozen=True)
class EngineMemory:
    """The engine's processes at one moment: ``{pid: (name, rss_kib, pss_kib)}``."""

    processes: dict[int, tuple[str, int, int]]

    @property
    def rss(self) -> int:
        """Total VmRSS, KiB."""
        return sum(rss for _n, rss, _p in self.processes.values())

    @property
    def pss(self) -> int:
        """Total PSS, KiB."""
        return sum(pss for _n, _r, pss in self.processes.values())

    def by_name(self) -> dict[str, tuple[int, int, int]]:
        """``{name: (count, rss_kib, pss_kib)}``."""
        out: dict[str, tuple[int, int, int]] = {}
        for name, rss, pss in self.processes.values():
            count, r, p = out.get(name, (0, 0, 0))
            out[name] = (count + 1, r + rss, p + pss)
        return out


def engine_memory(daemon: Daemon) -> EngineMemory:
    """The daemon's process tree plus its per-container helpers, without the containers."""
    ours = _pid_namespace("self")
    pids = set(tree_rss_kib(daemon.measured_pid))
    needle = str(daemon.root).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if needle in Path(f"/proc/{entry}/cmdline").read_bytes():
                pids.add(int(entry))
        except OSError:
            continue
    found: dict[int, tuple[str, int, int]] = {}
    for pid in pids:
        if _pid_namespace(pid) != ours:
            continue  # a container's own process (each container has its PID namespace)
        try:
            name = Path(f"/proc/{pid}/comm").read_text().strip()
        except OSError:
            continue
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                found[pid] = (name, int(line.split()[1]), _pss_kib(pid))
                break
    return EngineMemory(found)


@dataclass(frozen=True)
class MemoryResult:
    """Engine memory with no container and with ``count`` sleeping containers."""

    count: int
    before: EngineMemory
    after: EngineMemory
    container_rss: int


def _docker_out(daemon: Daemon, harness: Harness, *args: str) -> str:
    return docker(daemon.host, *args, config_dir=harness.docker_config).stdout


def remove_all(daemon: Daemon, harness: Harness) -> float:
    """``docker rm -f`` every container; seconds it took."""
    ids = _docker_out(daemon, harness, "ps", "-aq").split()
    started = time.perf_counter()
    if ids:
        docker(daemon.host, "rm", "-f", *ids, config_dir=harness.docker_config)
    return time.perf_counter() - started


def memory(daemon: Daemon, harness: Harness, reference: str, count: int) -> MemoryResult:
    """Start ``count`` sleeping containers; measure the engine before and after."""
    remove_all(daemon, harness)
    time.sleep(_SETTLE_SECONDS)
    before = engine_memory(daemon)
    for _ in range(count):
        docker(daemon.host, "run", "-d", "--network", "none", reference, "sleep", "3600",
               config_dir=harness.docker_config)  # fmt: skip
    running = _docker_out(daemon, harness, "ps", "-q").split()
    if len(running) != count:
        raise BenchError(f"{daemon.kind}: {len(running)} of {count} containers running")
    time.sleep(_SETTLE_SECONDS)
    after = engine_memory(daemon)
    pids = _docker_out(daemon, harness, "inspect", "--format", "{{.State.Pid}}", *running)
    container_rss = sum(sum(k for _n, k in tree_rss_kib(int(p)).values()) for p in pids.split())
    remove_all(daemon, harness)
    return MemoryResult(count, before, after, container_rss)


# -- concurrency ---------------------------------------------------------------------------


def concurrent_start(
    daemon: Daemon, harness: Harness, reference: str, count: int, round_no: int
) -> tuple[float, float]:
    """Start ``count`` containers at once; (seconds until all run, seconds to remove them)."""
    remove_all(daemon, harness)

    def one(index: int) -> None:
        # Explicit names: generated ones may collide under concurrency (see the README).
        name = f"bench-{round_no}-{index}"
        docker(daemon.host, "run", "-d", "--name", name, "--network", "none", reference,
               "sleep", "3600", config_dir=harness.docker_config)  # fmt: skip

    started = time.perf_counter()
    with ThreadPoolExecutor(max_workers=count) as pool:
        list(pool.map(one, range(count)))
    elapsed = time.perf_counter() - started
    states = _docker_out(daemon, harness, "ps", "-aq", "--no-trunc").split()
    running = _docker_out(daemon, harness, "ps", "-q", "--filter", "status=running").split()
    if len(states) != count or len(running) != count:
        raise BenchError(f"{daemon.kind}: {len(running)} of {count} containers running")
    return elapsed, remove_all(daemon, harness)


# -- profile -------------------------------------------------------------------------------


def profile(harness: Harness, runner: Runner, reference: str, args: argparse.Namespace) -> str:
    """py-spy attached to a fresh declarund for ``--repeat`` runs; the busiest functions.

    py-spy attaches after the pull and the warm-up runs, so start-up and imports stay out.
    """
    from pull import summarise_profiles

    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    out = args.profile / "declarund-run.txt"
    daemon = harness.start_declarund("dp", extra_args=_registry_args(args))
    try:
        docker(daemon.host, "pull", reference, config_dir=harness.docker_config)
        target = Target(_DECLARUND, _run_command(daemon, reference, none=True), daemon)
        for _ in range(args.warmup):
            runner.timed(target)
        command = [spy, "record", "--nonblocking", "--format", "raw", "--rate", "1000"]
        command += ["--threads", "--pid", str(daemon.measured_pid), "--output", str(out)]
        spy_process = harness.spawn("py-spy", command, harness.root / "py-spy.log")
        time.sleep(1.0)  # py-spy attaches
        for _ in range(args.repeat):
            target.times.append(runner.timed(target))
        spy_process.popen.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        spy_process.popen.wait(timeout=60)
        print(f"  under py-spy: median {statistics.median(target.times) * 1000:.1f} ms")
    finally:
        remove_all(daemon, harness)
        daemon.stop()
    return summarise_profiles([out])


# -- the run -------------------------------------------------------------------------------


def _registry_args(args: argparse.Namespace) -> list[str]:
    return ["--insecure-registry", args.registry_host]


def _run_command(daemon: Daemon, reference: str, *, none: bool) -> list[str]:
    network = ["--network", "none"] if none else []
    return [DOCKER_CLI, "-H", daemon.host, "run", "--rm", *network, reference, "true"]


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f} ms"


def _mb(kib: float) -> str:
    return f"{kib / 1024:.1f} MB"


def report_latency(targets: Sequence[Target], phases: dict[str, dict[str, float]]) -> None:
    """Latency table, ratios and verdicts."""
    print(f"\n{'target':16} {'median':>10} {'p90':>10} {'min':>10} {'max':>10}")
    for t in targets:
        print(
            f"{t.kind:16} {_ms(statistics.median(t.times)):>10} {_ms(p90(t.times)):>10} "
            f"{_ms(min(t.times)):>10} {_ms(max(t.times)):>10}"
        )
    by = {t.kind: statistics.median(t.times) for t in targets}
    if _DECLARUND in by and _DOCKERD in by:
        ratio = by[_DECLARUND] / by[_DOCKERD]
        verdict = "meets" if ratio <= 0.5 else "MISSES"
        print(f"ratio declarund/dockerd (median, both --network none): {ratio:.2f} "
              f"({verdict} target <= 0.5)")  # fmt: skip
    if _DECLARUND in by and _RUNC in by:
        ratio = by[_DECLARUND] / by[_RUNC]
        verdict = "meets" if ratio <= 3.0 else "misses"
        print(f"ratio declarund/bare runc: {ratio:.1f}x ({verdict} stretch target <= 3x)")
    if phases:
        print("\nAPI requests, median ms (create / start / wait not-running / delete):")
        for kind, values in phases.items():
            cells = " / ".join(f"{values[p]:.1f}" for p in _PHASES)
            print(f"  {kind:10} {cells}   total {sum(values.values()):.1f}")


def report_memory(results: dict[str, MemoryResult]) -> None:
    """Memory per container."""
    print("\nmemory with N sleeping containers (engine processes only; PSS splits shared pages):")
    for kind, r in results.items():
        n = r.count
        print(
            f"  {kind:10} N={n}: engine RSS {_mb(r.before.rss)} -> {_mb(r.after.rss)}, "
            f"PSS {_mb(r.before.pss)} -> {_mb(r.after.pss)}; containers' own RSS "
            f"{_mb(r.container_rss)}"
        )
        print(
            f"  {'':10} per container: added RSS {_mb((r.after.rss - r.before.rss) / n)}, "
            f"added PSS {_mb((r.after.pss - r.before.pss) / n)}; whole engine / N: "
            f"RSS {_mb(r.after.rss / n)}, PSS {_mb(r.after.pss / n)}"
        )
        parts = ", ".join(
            f"{name} x{count} RSS {_mb(rss)} PSS {_mb(pss)}"
            for name, (count, rss, pss) in sorted(r.after.by_name().items())
        )
        print(f"  {'':10} processes: {parts}")
    if _DECLARUND in results:
        r = results[_DECLARUND]
        added = (r.after.rss - r.before.rss) / r.count
        verdict = "meets" if added <= 3 * 1024 else "MISSES"
        print(f"declarund added RSS per container: {_mb(added)} ({verdict} target <= 3 MB)")


def run(args: argparse.Namespace) -> None:
    """The whole benchmark inside one harness."""
    load_before = os.getloadavg()
    with Harness(prefix="drun-", keep=args.keep) as harness:
        registry = harness.start_registry()
        args.registry_host = registry.host
        image, reference, archive = prepare_image(harness, registry)
        bundle = make_bundle(harness, image)
        print(f"image {reference} ({image.config.digest[:19]}), bundle {bundle}", flush=True)
        declarund = harness.start_declarund("de", extra_args=_registry_args(args))
        dockerd = harness.start_dockerd("dd", insecure_registries=[registry.host])
        bridged = None
        if not args.no_bridge:
            netns = harness.network_namespace("net")
            bridged = harness.start_dockerd("db", netns=netns)
        try:
            for daemon in (declarund, dockerd):
                docker(daemon.host, "pull", reference, config_dir=harness.docker_config)
            if bridged is not None:
                docker(bridged.host, "load", "-i", str(archive), config_dir=harness.docker_config)
            runner = Runner(harness)
            targets = [
                Target(_DECLARUND, _run_command(declarund, reference, none=True), declarund),
                Target(_DOCKERD, _run_command(dockerd, reference, none=True), dockerd),
            ]
            if bridged is not None:
                targets.append(
                    Target(_BRIDGED, _run_command(bridged, reference, none=False), bridged)
                )
            runc_cmd = ["runc", "--root", str(runner.runc_root), "run", "--bundle", str(bundle)]
            targets.append(Target(_RUNC, runc_cmd))
            # The client's own share: one docker CLI process making one request.
            cli = [DOCKER_CLI, "-H", declarund.host, "version", "--format", "{{.Server.Os}}"]
            targets.append(Target(_CLI, cli, declarund))
            print(f"latency: {args.warmup} warm-up + {args.repeat} timed runs each", flush=True)
            busy_before = cpu_ticks()
            latency(targets, runner, args)
            args.cpu_busy = busy_fraction(busy_before, cpu_ticks())
            phases = {
                d.kind: phase_breakdown(d, reference, args.phase_runs) for d in (declarund, dockerd)
            }
            report_latency(targets, phases)
            if bridged is not None:
                bridged.stop()  # idle from here on; it must not weigh on what follows
            mem: dict[str, MemoryResult] = {}
            if args.idle:
                print(f"\nmemory: {args.idle} sleeping containers each", flush=True)
                for daemon in (declarund, dockerd):
                    mem[daemon.kind] = memory(daemon, harness, reference, args.idle)
                report_memory(mem)
            if args.concurrent:
                print(f"\nconcurrency: {args.concurrent} x docker run -d at once, "
                      f"{args.rounds} rounds", flush=True)  # fmt: skip
                walls: dict[str, list[float]] = {_DECLARUND: [], _DOCKERD: []}
                removes: dict[str, list[float]] = {_DECLARUND: [], _DOCKERD: []}
                for round_no in range(args.rounds):
                    order = [declarund, dockerd] if round_no % 2 == 0 else [dockerd, declarund]
                    for daemon in order:
                        wall, remove = concurrent_start(daemon, harness, reference,
                                                        args.concurrent, round_no)  # fmt: skip
                        walls[daemon.kind].append(wall)
                        removes[daemon.kind].append(remove)
                        print(f"  round {round_no + 1} {daemon.kind:10} all running after "
                              f"{wall:.2f} s, rm -f took {remove:.2f} s", flush=True)  # fmt: skip
                for kind in walls:
                    print(f"  {kind:10} median {statistics.median(walls[kind]):.2f} s to all "
                          f"running; rm -f median {statistics.median(removes[kind]):.2f} s")  # fmt: skip
            if args.profile is not None:
                args.profile.mkdir(parents=True, exist_ok=True)
                print("\nprofile: declarund under py-spy", flush=True)
                print(profile(harness, runner, reference, args))
        finally:
            for started in (declarund, dockerd, bridged):
                if started is not None and started.process.alive():
                    try:
                        remove_all(started, harness)
                    except BenchError as exc:
                        print(f"cleanup: {exc}", file=sys.stderr)
        load_after = os.getloadavg()
        print(f"\ndate     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
        print(f"machine  {machine_summary()}")
        print(f"load     1/5-min {load_before[0]:.2f}/{load_before[1]:.2f} at start, "
              f"{load_after[0]:.2f}/{load_after[1]:.2f} at end; all CPUs "
              f"{100 * getattr(args, 'cpu_busy', 0.0):.0f} % busy during the latency rounds "
              "(this benchmark included)")  # fmt: skip


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=20, help="timed runs per target")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs per target first")
    parser.add_argument("--phase-runs", type=int, default=10, help="API breakdown cycles")
    parser.add_argument("--idle", type=int, default=20, help="sleeping containers (0: skip)")
    parser.add_argument("--concurrent", type=int, default=50, help="parallel starts (0: skip)")
    parser.add_argument("--rounds", type=int, default=3, help="concurrent-start rounds")
    parser.add_argument("--no-bridge", action="store_true", help="skip the bridged dockerd")
    parser.add_argument("--profile", type=Path, help="py-spy profile of declarund into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.warmup < 0 or args.idle < 0 or args.concurrent < 0:
        parser.error("--repeat must be positive; --warmup, --idle, --concurrent not negative")
    if args.rounds < 1 or args.phase_runs < 1:
        parser.error("--rounds and --phase-runs must be positive")
    return run_benchmark(lambda: run(args), needs_root="runc, dockerd")


if __name__ == "__main__":
    sys.exit(main())
