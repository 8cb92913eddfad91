"""Scale to 1,000 containers (issue 16, item 3): declarund beside dockerd, one after the other.

Run as root: .venv/bin/python benchmarks/scale.py [--containers 1000] [--repeat 3]

For each engine in turn (declarund, then dockerd unless ``--no-dockerd``), on a fresh daemon
with the busybox test image already pulled from the private registry:

1. ``declarun apply`` of a generated stack of N containers (busybox ``sleep 3600``), 20
   networks, 50 volumes, dependencies (fans: 20 hubs, N/10 containers on one hub each, the
   rest in chains of four hanging off them), timed end to end;
2. with N running: ``docker ps``, ``docker ps -a --filter label=...`` (all N, and a tenth),
   ``docker ps -a --filter name=...``, ``docker inspect`` by name and by ID prefix, ``docker
   events --since T --until now`` (everything since the apply began, and one container's),
   ``docker version`` as the client's own floor; each ``--repeat`` times;
3. the engine's memory with N running: PSS (``/proc/PID/smaps_rollup``) of the daemon's
   processes and of its per-container monitors (conmon; containerd-shim), without the
   containers' own processes, before the apply and with N running;
4. ``declarun apply`` with nothing changed (must say "Nothing to do"), ``--repeat`` times;
5. ``declarun apply`` after changing one container (an environment variable of a leaf, so
   exactly that one is recreated), ``--repeat`` times, with when the new container started;
6. ``declarun destroy --volumes``, timed.

Targets: no-op re-apply under 1.5 s; one change under 2 s; ``docker ps`` at most 0.5x
dockerd's; engine memory at most 1.5 MB PSS per container. ``--profile DIR`` attaches py-spy
(``.venv/bin/pip install py-spy``) to declarund during ``--profile-rounds`` more rounds of the
list and inspect commands and prints the busiest functions. Everything started is stopped,
every container, network and volume removed and the temporary directory deleted on exit,
Ctrl-C included (``--keep`` keeps the directory).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from _harness import (
    DOCKER_CLI,
    BenchError,
    Harness,
    Registry,
    machine_summary,
    run_benchmark,
)
from apply import DECLARUN, Engine, _push_busybox, _safe_wipe, run_timed
from pull import summarise_profiles
from run import EngineMemory, _api, engine_memory

__all__ = ["main", "scale_stack"]

STACK = "scale"
_OWNER_LABEL = f"dev.declarun.stack={STACK}"
#: The container the single-container queries name (engine names are ``<stack>-<name>``).
_PROBE = f"{STACK}-c0003"
#: The daemons' process names: the daemon proper, and its per-container monitor.
_DAEMON_NAMES = {
    "declarund": ("python", "python3", "python3.11"),
    "dockerd": ("dockerd", "containerd"),
}
_MONITOR_NAMES = {
    "declarund": ("conmon",),
    "dockerd": ("containerd-shim", "containerd-shim-runc-v2"),
}
_DAEMON_SHOWN = {"declarund": "declarund's python process", "dockerd": "dockerd + containerd"}


def scale_stack(
    count: int, networks: int, volumes: int, image: str, *, change: int = 0
) -> dict[str, Any]:
    """The stack: ``count`` sleeping containers on ``networks`` networks, every other one
    mounting one of ``volumes`` volumes, every tenth on a second network.

    Dependencies (all ``started``): the first ``networks`` containers are hubs (one per
    network); the next ``count // 10`` each depend on a hub (fans); every other container
    depends on the one before it, except every fourth, which hangs off a fan container
    (chains of four). The last container is a leaf: ``change`` > 0 sets ``BENCH_ROUND`` in
    its environment, so exactly that container differs.
    """
    hubs = min(networks, count)
    fans = min(count - hubs, count // 10)
    containers: dict[str, Any] = {}
    for i in range(count):
        spec: dict[str, Any] = {
            "image": image,
            "command": ["sleep", "3600"],
            # sleep is PID 1 of its container and has no handler for SIGTERM, which the
            # kernel then ignores: every stop would wait out the 10 s grace period.
            "stop_signal": "SIGKILL",
            "networks": [f"net{i % networks}"],
            "labels": {"bench.group": str(i % 10)},
        }
        if i % 10 == 5 and networks > 1:
            spec["networks"].append(f"net{(i + 1) % networks}")
        if i % 2 == 0:
            spec["volumes"] = [f"vol{(i // 2) % volumes}:/data"]
        if hubs <= i < hubs + fans:
            spec["depends_on"] = {f"c{i % hubs:04d}": {"condition": "started"}}
        elif i >= hubs + fans:
            j = i - hubs - fans
            needs = f"c{i - 1:04d}" if j % 4 else f"c{hubs + (j // 4) % max(fans, 1):04d}"
            if fans == 0 and j % 4 == 0:
                needs = f"c{i % hubs:04d}"
            spec["depends_on"] = {needs: {"condition": "started"}}
        if i == count - 1 and change:
            spec["env"] = {"BENCH_ROUND": str(change)}
        containers[f"c{i:04d}"] = spec
    return {
        "stack": STACK,
        "volumes": {f"vol{i}": {} for i in range(volumes)},
        "networks": {f"net{i}": {} for i in range(networks)},
        "containers": containers,
    }


def _leaf(count: int) -> str:
    """The engine name of the container that ``change`` alters."""
    return f"{STACK}-c{count - 1:04d}"


# -- results --------------------------------------------------------------------------------


@dataclass
class Query:
    """One client command measured with N running."""

    label: str
    args: list[str]
    #: Lines of output wanted (None: not checked).
    lines: int | None = None
    walls: list[float] = field(default_factory=list)
    found_lines: int = 0


@dataclass
class EngineResults:
    """What one engine did."""

    kind: str
    count: int
    cold: float | None = None
    cold_engine_cpu: float | None = None
    noop: list[float] = field(default_factory=list)
    #: The client's CPU time (user + system) of each no-op: what a free core would need.
    noop_cpu: list[float] = field(default_factory=list)
    change: list[float] = field(default_factory=list)
    change_started: list[float] = field(default_factory=list)
    destroy: float | None = None
    queries: list[Query] = field(default_factory=list)
    events: dict[str, tuple[float, float, int]] = field(default_factory=dict)
    #: Requests sent straight to the API socket (no CLI): path label -> (walls, bytes).
    api: dict[str, tuple[list[float], int]] = field(default_factory=dict)
    memory_before: EngineMemory | None = None
    memory_after: EngineMemory | None = None
    failed: str = ""
    profile: str = ""
    client_profile: str = ""


# -- the steps ------------------------------------------------------------------------------


def _write(directory: Path, args: argparse.Namespace, reference: str, change: int = 0) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "stack.yaml"
    data = scale_stack(args.containers, args.networks, args.volumes, reference, change=change)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _engine_flags(engine: Engine) -> list[str]:
    # dockerd: DOCKER_HOST in the environment (Engine.env), as apply.py runs it.
    if engine.daemon.kind == "dockerd":
        return ["--engine", "docker"]
    return ["--host", engine.daemon.host]


def _declarun(engine: Engine, verb: str, stack: Path, args: argparse.Namespace) -> list[str]:
    command = [str(DECLARUN), verb, str(stack), "--parallel", str(args.parallel)]
    if verb == "destroy":
        command += ["--yes", "--volumes"]
    return command + _engine_flags(engine)


def _count(engine: Engine, *filters: str, show_all: bool = True) -> int:
    args = ["ps", "-q", "--no-trunc"] + (["-a"] if show_all else [])
    for value in filters:
        args += ["--filter", value]
    return len(engine.cli(*args).split())


def _check_running(engine: Engine, count: int, what: str) -> None:
    running = _count(engine, f"label={_OWNER_LABEL}", "status=running")
    total = _count(engine, f"label={_OWNER_LABEL}")
    if running != count or total != count:
        raise BenchError(f"after {what}: {running} of {total} containers running, {count} wanted")


def _timed_cli(engine: Engine, args: Sequence[str]) -> tuple[float, str]:
    started = time.perf_counter()
    out = engine.cli(*args, timeout=600)
    return time.perf_counter() - started, out


def _docker_env(engine: Engine) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(engine.config_dir)
    return env


def _events(engine: Engine, since: float, until: float, *filters: str) -> tuple[float, float, int]:
    """``docker events --since --until``: (seconds to the first line, to the end, lines)."""
    command = [DOCKER_CLI, "-H", engine.daemon.host, "events", "--format", "{{json .}}"]
    command += ["--since", f"{since:.6f}", "--until", f"{until:.6f}"]
    for value in filters:
        command += ["--filter", value]
    started = time.perf_counter()
    first = 0.0
    lines = 0
    with subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_docker_env(engine)
    ) as process:
        assert process.stdout is not None
        for _line in process.stdout:
            if not lines:
                first = time.perf_counter() - started
            lines += 1
        error = process.stderr.read().decode(errors="replace") if process.stderr else ""
        code = process.wait(timeout=600)
    total = time.perf_counter() - started
    if code != 0:
        raise BenchError(f"{' '.join(command)} failed ({code}): {error.strip()}")
    return first, total, lines


def _queries(count: int, some_id: str) -> list[Query]:
    group = sum(1 for i in range(count) if i % 10 == 3)
    return [
        Query("docker version (the client's floor)", ["version"]),
        Query(f"docker ps ({count} running)", ["ps"], count + 1),
        Query("docker ps -a --filter label=<stack>", ["ps", "-a", "--filter", f"label={_OWNER_LABEL}"], count + 1),
        Query(f"docker ps -a --filter label=bench.group=3 ({group})", ["ps", "-a", "--filter", "label=bench.group=3"], group + 1),
        Query(f"docker ps -a --filter name={_PROBE}", ["ps", "-a", "--filter", f"name={_PROBE}"], 2),
        Query("docker ps -q", ["ps", "-q"], count),
        Query("docker inspect <name>", ["inspect", _PROBE]),
        Query("docker inspect <id prefix>", ["inspect", some_id[:12]]),
    ]  # fmt: skip


def measure_queries(engine: Engine, results: EngineResults, since: float, repeat: int) -> None:
    """The list/inspect/events commands with every container running."""
    some_id = engine.cli("inspect", "--format", "{{.Id}}", _PROBE).strip()
    queries = _queries(results.count, some_id)
    for query in queries:  # one untimed round: the page cache, the CLI's binary
        engine.cli(*query.args)
    for _ in range(repeat):
        for query in queries:
            wall, out = _timed_cli(engine, query.args)
            query.walls.append(wall)
            query.found_lines = len(out.splitlines())
            if query.lines is not None and query.found_lines != query.lines:
                raise BenchError(
                    f"{engine.daemon.kind}: docker {' '.join(query.args)} printed "
                    f"{query.found_lines} lines, {query.lines} wanted"
                )
    results.queries = queries
    measure_api(engine, results, some_id, repeat)
    until = time.time()
    last = _leaf(results.count)
    for label, filters in (
        ("docker events --since <apply> --until <now>", ()),
        # The last container: its events are among the newest, still in either buffer.
        (f"  the same, --filter container={last}", (f"container={last}",)),
    ):
        runs = [_events(engine, since, until, *filters) for _ in range(repeat)]
        results.events[label] = (
            statistics.median(r[0] for r in runs),
            statistics.median(r[1] for r in runs),
            runs[-1][2],
        )
    for label, (first, total, lines) in results.events.items():
        print(f"  {label}: {lines} events, first after {first:.3f} s, all {total:.3f} s")
    for query in queries:
        print(f"  {query.label:48} median {statistics.median(query.walls):.3f} s")


def measure_api(engine: Engine, results: EngineResults, some_id: str, repeat: int) -> None:
    """The same requests straight over the socket: the daemon's share, without the CLI."""
    label_filter = urllib.parse.quote(json.dumps({"label": [_OWNER_LABEL]}))
    requests = {
        "GET /containers/json": "/containers/json",
        "GET /containers/json?all=1&filters=label": f"/containers/json?all=1&filters={label_filter}",
        "GET /containers/<name>/json": f"/containers/{_PROBE}/json",
        "GET /containers/<id prefix>/json": f"/containers/{some_id[:12]}/json",
    }
    for label, path in requests.items():
        walls = []
        size = 0
        for _ in range(max(repeat, 5)):
            started = time.perf_counter()
            status, body = _api(engine.daemon, "GET", path)
            walls.append(time.perf_counter() - started)
            if status != 200:
                raise BenchError(f"{engine.daemon.kind}: GET {path}: {status} {body[:300]!r}")
            size = len(body)
        results.api[label] = (walls, size)


def profile_queries(
    harness: Harness, engine: Engine, results: EngineResults, args: argparse.Namespace
) -> None:
    """py-spy attached to declarund while the list and inspect commands run again."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    out = args.profile / f"{engine.daemon.kind}-queries.txt"
    command = [spy, "record", "--nonblocking", "--format", "raw", "--rate", "500"]
    command += ["--pid", str(engine.daemon.measured_pid), "--output", str(out)]
    spy_process = harness.spawn("py-spy", command, harness.root / "py-spy.log")
    time.sleep(1.0)  # py-spy attaches
    some_id = engine.cli("inspect", "--format", "{{.Id}}", _PROBE).strip()
    queries = [q for q in _queries(results.count, some_id) if q.args[0] != "version"]
    for _ in range(args.profile_rounds):
        for query in queries:
            engine.cli(*query.args)
    spy_process.popen.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
    spy_process.popen.wait(timeout=120)
    results.profile = summarise_profiles([out])


def _started_at(engine: Engine, name: str) -> float:
    """The container's ``State.StartedAt`` as a Unix time."""
    text = engine.cli("inspect", "--format", "{{.State.StartedAt}}", name).strip()
    # RFC 3339 with nanoseconds: keep microseconds for datetime.
    head, _, rest = text.partition(".")
    fraction = "".join(c for c in rest if c.isdigit())[:6] or "0"
    moment = datetime.strptime(head, "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
    return moment.timestamp() + int(fraction.ljust(6, "0")) / 1e6


def run_engine(
    harness: Harness, engine: Engine, reference: str, args: argparse.Namespace
) -> EngineResults:
    """Every step on one engine (see the module docstring)."""
    kind = engine.daemon.kind
    results = EngineResults(kind, args.containers)
    directory = harness.root / f"stack-{kind}"
    log = directory / "commands.log"
    stack = _write(directory, args, reference)
    # One untimed plan: the bytecode cache and the page cache are filled (as apply.py does).
    run_timed(engine, [str(DECLARUN), "plan", str(stack), *_engine_flags(engine)], log,
              ok_codes=(0, 2))  # fmt: skip
    time.sleep(2)
    results.memory_before = engine_memory(engine.daemon)
    print(f"{kind}: cold apply of {args.containers} containers", flush=True)
    since = time.time() - 1
    cold = run_timed(engine, _declarun(engine, "apply", stack, args), log, expect="Apply complete")
    results.cold, results.cold_engine_cpu = cold.wall, cold.engine_cpu
    print(f"  {cold.wall:.1f} s (engine CPU {cold.engine_cpu:.1f} s)", flush=True)
    _check_running(engine, args.containers, "the cold apply")
    time.sleep(args.quiet)  # memory once the last starts' transient allocations are gone
    results.memory_after = engine_memory(engine.daemon)
    measure_queries(engine, results, since, args.repeat)
    if args.profile is not None and kind == "declarund":
        profile_queries(harness, engine, results, args)
    for _ in range(args.repeat):
        timing = run_timed(
            engine, _declarun(engine, "apply", stack, args), log, expect="Nothing to do"
        )
        results.noop.append(timing.wall)
        results.noop_cpu.append(timing.client_cpu)
        print(f"  no-op re-apply {timing.wall:.3f} s (client CPU {timing.client_cpu:.2f} s)",
              flush=True)  # fmt: skip
    if args.profile is not None:
        # One more, under py-spy: where the client's time goes (not counted above).
        noop = _declarun(engine, "apply", stack, args)
        run_timed(engine, noop, log, profile=args.profile, name=f"noop-{kind}",
                  expect="Nothing to do")  # fmt: skip
        results.client_profile = summarise_profiles([args.profile / f"noop-{kind}.txt"])
    for round_no in range(1, args.repeat + 1):
        changed = _write(directory, args, reference, change=round_no)
        before = time.time()
        timing = run_timed(
            engine, _declarun(engine, "apply", changed, args), log, expect="Apply complete"
        )
        results.change.append(timing.wall)
        results.change_started.append(_started_at(engine, _leaf(args.containers)) - before)
        print(
            f"  one container changed {timing.wall:.3f} s (the new one started after "
            f"{results.change_started[-1]:.3f} s)",
            flush=True,
        )
    _check_running(engine, args.containers, "the changes")
    timing = run_timed(engine, _declarun(engine, "destroy", stack, args), log)
    results.destroy = timing.wall
    print(f"  destroy {timing.wall:.1f} s", flush=True)
    if _count(engine, f"label={_OWNER_LABEL}"):
        raise BenchError(f"{kind}: containers left after destroy")
    return results


# -- report ---------------------------------------------------------------------------------


def _med(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _mb(kib: float) -> str:
    return f"{kib / 1024:.1f} MB"


def _memory_lines(results: EngineResults) -> list[str]:
    before, after = results.memory_before, results.memory_after
    if before is None or after is None:
        return []
    n = results.count
    names = after.by_name()
    daemon = [v for k, v in names.items() if k in _DAEMON_NAMES[results.kind]]
    monitors = [v for k, v in names.items() if k in _MONITOR_NAMES[results.kind]]
    others = {k: v for k, v in names.items()
              if k not in _DAEMON_NAMES[results.kind] + _MONITOR_NAMES[results.kind]}  # fmt: skip
    daemon_pss = sum(p for _c, _r, p in daemon)
    monitor_pss = sum(p for _c, _r, p in monitors)
    monitor_count = sum(c for c, _r, _p in monitors)
    lines = [
        f"  engine PSS before the apply {_mb(before.pss)} (RSS {_mb(before.rss)}); with {n} "
        f"running {_mb(after.pss)} (RSS {_mb(after.rss)})",
        f"  daemon alone ({_DAEMON_SHOWN[results.kind]}): PSS {_mb(daemon_pss)} "
        f"= {_mb(daemon_pss / n)} per container",
        f"  {monitor_count} monitors ({'/'.join(_MONITOR_NAMES[results.kind])}): PSS "
        f"{_mb(monitor_pss)} = {_mb(monitor_pss / max(monitor_count, 1))} each",
        f"  daemon + monitors per container: PSS {_mb(after.pss / n)} (target <= 1.5 MB); "
        f"added by the {n}: {_mb((after.pss - before.pss) / n)} each",
    ]
    if others:
        shown = ", ".join(f"{k} x{c} PSS {_mb(p)}" for k, (c, _r, p) in sorted(others.items()))
        lines.append(f"  other engine processes: {shown}")
    return lines


def report(all_results: list[EngineResults], args: argparse.Namespace, load: float) -> None:
    """Print every figure collected."""
    print()
    print(f"date     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"machine  {machine_summary()}")
    print(f"load     1-min load average {load:.2f} at start, {os.getloadavg()[0]:.2f} at end")
    print(f"command  {' '.join([Path(sys.executable).name, *sys.argv])}")
    by_kind = {r.kind: r for r in all_results}
    for results in all_results:
        print(f"\n{results.kind}: {results.count} containers, {args.networks} networks, "
              f"{args.volumes} volumes, --parallel {args.parallel}")  # fmt: skip
        if results.failed:
            print(f"  not completed: {results.failed}")
        if results.cold is not None:
            print(f"  cold apply                                  {results.cold:8.2f} s "
                  f"(engine CPU {results.cold_engine_cpu or 0:.1f} s)")  # fmt: skip
        if results.noop:
            print(f"  no-op re-apply, median (min)                {_med(results.noop):8.3f} s "
                  f"({min(results.noop):.3f} s)  target < 1.5 s")  # fmt: skip
            print(f"    client CPU, median                        {_med(results.noop_cpu):8.3f} s")
        if results.change:
            print(f"  one container changed, median (min)         {_med(results.change):8.3f} s "
                  f"({min(results.change):.3f} s)  target < 2 s")  # fmt: skip
            print(
                f"    of which until the new container started  {_med(results.change_started):8.3f} s"
            )
        if results.destroy is not None:
            print(f"  destroy                                     {results.destroy:8.2f} s")
        for query in results.queries:
            print(f"  {query.label:44} {_med(query.walls):8.3f} s  (min {min(query.walls):.3f} s)")
        for label, (first, total, lines) in results.events.items():
            print(f"  {label:44} {total:8.3f} s  ({lines} events, first after {first:.3f} s)")
        for label, (walls, size) in results.api.items():
            print(f"  {label:44} {_med(walls):8.4f} s  (min {min(walls):.4f} s, "
                  f"{size / 1024:.0f} KiB)")  # fmt: skip
        for line in _memory_lines(results):
            print(line)
    ours, theirs = by_kind.get("declarund"), by_kind.get("dockerd")
    if ours and theirs and ours.queries and theirs.queries:
        print("\nratios declarund / dockerd (medians)")
        for mine, other in zip(ours.queries, theirs.queries, strict=True):
            target = "  target <= 0.5" if mine.args == ["ps"] else ""
            print(f"  {mine.label:44} {_med(mine.walls) / _med(other.walls):6.2f}{target}")
        for label, (walls, _size) in ours.api.items():
            other = theirs.api.get(label)
            if other:
                print(f"  {label:44} {_med(walls) / _med(other[0]):6.2f}")
        if ours.cold and theirs.cold:
            print(f"  {'cold apply':44} {ours.cold / theirs.cold:6.2f}")
    for results in all_results:
        if results.client_profile:
            print(f"\nprofile of a no-op `declarun apply` on {results.kind} (py-spy):\n"
                  f"{results.client_profile}")  # fmt: skip
    if ours is not None and ours.profile:
        print(f"\nprofile of declarund during {args.profile_rounds} rounds of the list and "
              f"inspect commands (py-spy):\n{ours.profile}")  # fmt: skip


# -- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    """The whole benchmark inside one harness."""
    load = os.getloadavg()[0]
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    all_results: list[EngineResults] = []
    try:
        with Harness(prefix="dscale-", keep=args.keep) as harness:
            registry = harness.start_registry()
            reference = _push_busybox(harness, registry)
            for kind in ("declarund", "dockerd"):
                if kind == "dockerd" and args.no_dockerd:
                    continue
                engine = _start(harness, registry, reference, kind)
                try:
                    all_results.append(run_engine(harness, engine, reference, args))
                except BenchError as exc:
                    failed = EngineResults(kind, args.containers, failed=str(exc)[-2000:])
                    all_results.append(failed)
                    print(f"{kind}: {exc}", file=sys.stderr, flush=True)
                finally:
                    # Free the machine before the next engine: its containers go now.
                    _safe_wipe(engine)()
    finally:
        if all_results:
            report(all_results, args, load)
    failed = [r.kind for r in all_results if r.failed]
    if failed:
        raise BenchError(f"not completed on {', '.join(failed)} (see above)")


def _start(harness: Harness, registry: Registry, reference: str, kind: str) -> Engine:
    pycache = harness.path("pycache")
    if kind == "dockerd":
        daemon = harness.start_dockerd("dk", insecure_registries=[registry.host])
    else:
        daemon = harness.start_declarund("du", extra_args=["--insecure-registry", registry.host])
    engine = Engine(daemon, harness.docker_config, pycache)
    harness.on_exit(_safe_wipe(engine))
    engine.cli("pull", reference)
    return engine


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--containers", type=int, default=1000)
    parser.add_argument("--networks", type=int, default=20)
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--parallel", type=int, default=8, help="declarun apply --parallel")
    parser.add_argument("--quiet", type=float, default=5.0, help="seconds before memory is read")
    parser.add_argument("--no-dockerd", action="store_true", help="declarund only")
    parser.add_argument("--profile", type=Path, help="py-spy output into DIR")
    parser.add_argument("--profile-rounds", type=int, default=10)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.containers < 25 or args.networks < 1 or args.volumes < 1 or args.repeat < 1:
        parser.error("at least 25 containers, 1 network, 1 volume and 1 repeat")
    if args.parallel < 1:
        parser.error("--parallel must be positive")
    return run_benchmark(lambda: run(args), needs_root="dockerd, runc and conmon need it")


if __name__ == "__main__":
    sys.exit(main())
