"""``declarun apply`` and ``plan`` speed (issue 6's benchmarks), beside Docker Compose v1.

Run as root: .venv/bin/python benchmarks/apply.py [--only a,b,c] [--repeat 3]

(a) cold apply of a generated 50-container stack (busybox ``sleep 3600``; a tier with health
    checks, a tier depending on it being healthy, the rest on the second tier having started;
    one network, two volumes): ``docker-compose up -d`` (Compose v1, Debian's
    ``docker-compose``) on dockerd, ``declarun apply --engine docker`` on the same dockerd,
    and ``declarun apply --host`` on declarund when it can run the stack (it needs the
    ``/networks`` endpoints) — side by side in one run, the order rotating every round, the
    image already pulled into each engine, everything removed between rounds (untimed).
    Target: declarun on declarund at most half of Compose's time.
(b) re-apply with no changes of a 200-container stack: ``declarun apply`` end to end as a user
    runs it (a new process each time), and in process the load, observe and plan steps apart.
    Target: under 1 s. ``docker-compose up -d`` of the unchanged stack is timed beside it.
(c) plan of a 2,000-container stack (``stack_load.py``'s, with 200 images, 20 networks, 50
    volumes, ports, health checks, dependencies) against a snapshot that matches it, in
    process: ``diff()`` alone. Target: under 1 s.

``--profile DIR`` runs the timed ``declarun`` commands under py-spy (``.venv/bin/pip install
py-spy``) and prints the busiest functions; timings are then skewed. Everything started is
stopped, every container, network and volume removed, and the temporary directory deleted on
exit, Ctrl-C included (``--keep`` keeps the directory).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import yaml
from _apply_stacks import STACK, compose_file, matching_snapshot, stack_file
from _harness import (
    REPO_ROOT,
    BenchError,
    Daemon,
    Harness,
    Registry,
    docker,
    free_subnet,
    machine_summary,
    run_benchmark,
    tree_cpu_seconds,
)
from pull import summarise_profiles
from stack_load import generate

__all__ = ["main"]

# tests.support builds the busybox image; the repository root is not on the path of a script.
sys.path.insert(0, str(REPO_ROOT))

from tests.support.images import build_busybox_layout

DECLARUN = REPO_ROOT / ".venv" / "bin" / "declarun"
COMPOSE = "docker-compose"
_IMAGE_REPO = "bench/busybox"
_IMAGE_TAG = "1.35"
_SIDES = ("compose@dockerd", "declarun@dockerd", "declarun@declarund")


@dataclass
class Timing:
    """Wall and client CPU seconds of one command, and the engine's CPU meanwhile."""

    wall: float
    client_cpu: float
    engine_cpu: float


@dataclass
class Results:
    """Everything printed at the end."""

    load_before: float
    a: dict[str, list[Timing]] = field(default_factory=dict)
    a_skipped: dict[str, str] = field(default_factory=dict)
    b: dict[str, list[float]] = field(default_factory=dict)
    b_notes: list[str] = field(default_factory=list)
    c: dict[str, list[float]] = field(default_factory=dict)
    c_notes: list[str] = field(default_factory=list)


# -- the engines ----------------------------------------------------------------------------


@dataclass
class Engine:
    """A daemon and how each client reaches it."""

    daemon: Daemon
    config_dir: Path
    pycache: Path
    stuck: set[str] = field(default_factory=set)  # networks dockerd would not remove

    def env(self, *, declarun: bool = False, bytecode: bool = True) -> dict[str, str]:
        """The environment for docker-compose and ``declarun --engine docker``."""
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DECLARUN_"))}
        env["DOCKER_HOST"] = self.daemon.host
        env["DOCKER_CONFIG"] = str(self.config_dir)
        env["COLUMNS"] = "200"
        # As installed from a wheel: modules load from bytecode, not compiled on every start
        # (this environment sets PYTHONDONTWRITEBYTECODE, so the cache lives in our temp dir).
        # (Debian's docker-compose ships its bytecode.)
        if declarun and bytecode:
            env.pop("PYTHONDONTWRITEBYTECODE", None)
            env["PYTHONPYCACHEPREFIX"] = str(self.pycache)
        elif declarun:
            env["PYTHONDONTWRITEBYTECODE"] = "1"
            env.pop("PYTHONPYCACHEPREFIX", None)
        return env

    def cli(self, *args: str, timeout: float = 900) -> str:
        """The docker CLI against this engine; its standard output."""
        return docker(self.daemon.host, *args, config_dir=self.config_dir, timeout=timeout).stdout

    def wipe(self, attempts: int = 5) -> None:
        """Remove every container, user network and volume (the daemon is ours alone).

        Retried: a client killed mid-apply may still have creates in flight, whose
        containers appear after the first listing and keep the network busy.
        """
        for attempt in range(attempts):
            try:
                self._wipe_once()
                return
            except BenchError:
                if attempt == attempts - 1:
                    raise
                time.sleep(1)

    def _wipe_once(self) -> None:
        ids = self.cli("ps", "-aq").split()
        if ids:
            self.cli("rm", "-f", "-v", *ids)
        if self.cli("ps", "-aq").split():
            raise BenchError("containers still listed after rm -f")
        for network_id in self.user_networks():
            if network_id in self.stuck:
                continue
            try:
                self.cli("network", "rm", network_id)
            except BenchError as exc:
                # dockerd 20.10 now and then keeps a stale endpoint of a force-removed
                # container ("has active endpoints") until it restarts. Rounds use fresh
                # names, so the network is left; its bridge is deleted on exit.
                if "active endpoints" not in str(exc):
                    raise
                self.stuck.add(network_id)
        volumes = self.cli("volume", "ls", "-q").split()
        if volumes:
            self.cli("volume", "rm", "-f", *volumes)

    def user_networks(self) -> list[str]:
        """Full IDs of the networks a client created (not bridge, host, none)."""
        listed = self.cli("network", "ls", "--no-trunc", "--format", "{{.ID}} {{.Name}}")
        pairs = [line.split() for line in listed.splitlines() if line.strip()]
        return [p[0] for p in pairs if len(p) == 2 and p[1] not in ("bridge", "host", "none")]

    def running(self, label: str) -> tuple[int, int]:
        """(running, total) containers carrying ``label``."""
        states = self.cli("ps", "-a", "--filter", f"label={label}", "--format", "{{.State}}")
        found = states.split()
        return sum(1 for s in found if s == "running"), len(found)


def _safe_wipe(engine: Engine) -> Callable[[], None]:
    def wipe() -> None:
        try:
            engine.wipe()
        except BenchError as exc:
            print(f"clean-up of {engine.daemon.kind}: {exc}", file=sys.stderr)
        if engine.daemon.kind == "dockerd":
            # Its bridges live in the host's network namespace: never leave one behind.
            with contextlib.suppress(BenchError):
                for network_id in {*engine.stuck, *engine.user_networks()}:
                    subprocess.run(
                        ["ip", "link", "delete", f"br-{network_id[:12]}"],
                        capture_output=True,
                        check=False,
                    )

    return wipe


def _push_busybox(harness: Harness, registry: Registry) -> str:
    layout = harness.path("layout")
    build_busybox_layout(layout, tag=_IMAGE_TAG)
    policy = harness.root / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    reference = f"{registry.host}/{_IMAGE_REPO}:{_IMAGE_TAG}"
    command = ["skopeo", "--policy", str(policy), "copy", "--quiet", "--dest-tls-verify=false"]
    command += ["--preserve-digests", f"oci:{layout}:{_IMAGE_TAG}", f"docker://{reference}"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"skopeo copy failed: {done.stderr.strip()}")
    return reference


def _start_engines(
    harness: Harness, registry: Registry, reference: str, want_declarund: bool
) -> tuple[Engine, Engine | None, str]:
    """dockerd (always) and declarund (when wanted and it can hold a stack's network)."""
    pycache = harness.path("pycache")
    dockerd = Engine(harness.start_dockerd("dk"), harness.docker_config, pycache)
    harness.on_exit(_safe_wipe(dockerd))
    dockerd.cli("pull", reference)
    if not want_declarund:
        return dockerd, None, "not asked for (--no-declarund)"
    try:
        daemon = harness.start_declarund("du", extra_args=["--insecure-registry", registry.host])
    except BenchError as exc:
        last = str(exc).strip().splitlines()[-1]
        return dockerd, None, f"declarund did not start ({last})"
    declarund = Engine(daemon, harness.docker_config, pycache)
    try:
        declarund.cli("network", "ls", timeout=30)
    except BenchError as exc:
        first = str(exc).strip().splitlines()[-1]
        return dockerd, None, f"declarund has no /networks endpoints yet ({first})"
    harness.on_exit(_safe_wipe(declarund))
    try:
        declarund.cli("pull", reference)
        declarund.cli("run", "--rm", "--network", "none", reference, "true", timeout=120)
    except BenchError as exc:
        return dockerd, None, f"declarund cannot run a container yet ({exc})"
    return dockerd, declarund, ""


# -- running the clients --------------------------------------------------------------------


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _profiled(command: list[str], profile: Path | None, name: str) -> list[str]:
    if profile is None or Path(command[0]).name != "declarun":
        return command
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(spy).exists():
        raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
    out = profile / f"{name}.txt"
    python = str(Path(sys.executable).parent / "python")
    spy_args = ["record", "--format", "raw", "--rate", "250", "--output", str(out), "--"]
    return [spy, *spy_args, python, str(DECLARUN), *command[1:]]


def run_timed(
    engine: Engine,
    command: list[str],
    log: Path,
    *,
    profile: Path | None = None,
    name: str = "",
    expect: str | None = None,
    ok_codes: tuple[int, ...] = (0,),
    bytecode: bool = True,
    extra_env: dict[str, str] | None = None,
) -> Timing:
    """Run a client command against ``engine``; time it; raise BenchError when it fails."""
    command = _profiled(command, profile, name)
    cpu_before = _children_cpu()
    engine_before = tree_cpu_seconds(engine.daemon.measured_pid)
    started = time.perf_counter()
    env = engine.env(declarun=str(DECLARUN) in command, bytecode=bytecode)
    env.update(extra_env or {})
    done = subprocess.run(
        command, capture_output=True, text=True, env=env, check=False, timeout=1800
    )
    wall = time.perf_counter() - started
    timing = Timing(
        wall,
        _children_cpu() - cpu_before,
        tree_cpu_seconds(engine.daemon.measured_pid) - engine_before,
    )
    with open(log, "a") as out:
        out.write(f"$ {' '.join(command)}\n{done.stdout}{done.stderr}\n")
    if done.returncode not in ok_codes:
        tail = (done.stdout + done.stderr)[-3000:]
        raise BenchError(f"{' '.join(command)} failed ({done.returncode}):\n{tail}")
    if expect is not None and expect not in done.stdout:
        raise BenchError(f"{' '.join(command)} did not say {expect!r}:\n{done.stdout[-2000:]}")
    return timing


def _declarun_apply(
    engine: Engine, stack: Path, parallel: int | None = None, settle: str | None = None
) -> list[str]:
    command = [str(DECLARUN), "apply", str(stack)]
    if settle is not None:
        command += ["--settle", settle]
    if engine.daemon.kind == "dockerd":
        command += ["--engine", "docker"]
    else:
        command += ["--host", engine.daemon.host]
    if parallel is not None:
        command += ["--parallel", str(parallel)]
    return command


def _sides(engines: dict[str, Engine], parallels: list[int | None]) -> list[tuple[str, int | None]]:
    """(side name, --parallel) for every client/engine pair measured in (a)."""
    sides: list[tuple[str, int | None]] = []
    for side in _SIDES:
        client, engine = side.split("@")
        if engine not in engines:
            continue
        if client == "compose":
            sides.append((side, None))
            continue
        for parallel in parallels:
            shown = side if parallel is None else f"{side} --parallel {parallel}"
            sides.append((shown, parallel))
    return sides


def warm_up(engine: Engine, stack: Path, compose: Path, log: Path, name: str) -> None:
    """One untimed ``declarun plan`` and ``docker-compose config``: caches are filled (the
    bytecode, the page cache) before anything is timed, for both clients alike."""
    command = [str(DECLARUN), "plan", str(stack)]
    if engine.daemon.kind == "dockerd":
        command += ["--engine", "docker"]
    else:
        command += ["--host", engine.daemon.host]
    run_timed(engine, command, log, ok_codes=(0, 2))
    run_timed(engine, [COMPOSE, "-p", name, "-f", str(compose), "config", "-q"], log)


def _compose_up(compose: Path, name: str) -> list[str]:
    return [COMPOSE, "--no-ansi", "-p", name, "-f", str(compose), "up", "-d"]


#: Compose v1 stalls for ever when a project has more services than its parallel limit (64
#: by default): project-level tasks hold every slot while they wait for service-level tasks
#: that need one (docker/compose#5864, #8161). Above that size the limit is raised.
def _compose_env(count: int) -> dict[str, str]:
    return {"COMPOSE_PARALLEL_LIMIT": str(max(64, 2 * count + 16))} if count > 60 else {}


def _check_up(engine: Engine, label: str, count: int, what: str) -> None:
    running, total = engine.running(label)
    if running != count or total != count:
        raise BenchError(f"after {what}: {running} of {total} containers running, {count} wanted")


def _write_stacks(
    directory: Path, count: int, reference: str, name: str = STACK
) -> tuple[Path, Path]:
    directory.mkdir(parents=True, exist_ok=True)
    stack = directory / "stack.yaml"
    compose = directory / "docker-compose.yml"
    document = stack_file(count, reference, name)
    # A subnet of its own: the default address pools may all be taken on a shared machine.
    document["networks"]["net"] = {"subnet": free_subnet()}
    stack.write_text(yaml.safe_dump(document, sort_keys=False))
    compose.write_text(yaml.safe_dump(compose_file(count, reference), sort_keys=False))
    return stack, compose


# -- (a) cold apply -------------------------------------------------------------------------


def bench_cold(
    harness: Harness,
    engines: dict[str, Engine],
    reference: str,
    args: argparse.Namespace,
    results: Results,
) -> None:
    """(a): every side applies the stack from nothing, ``--repeat`` rounds, order rotating."""
    log = harness.root / "a" / "commands.log"
    sides = _sides(engines, args.parallel)
    for side, _ in sides:
        results.a[side] = []
    stack, compose = _write_stacks(harness.root / "a", args.containers_a, reference)
    for engine in engines.values():
        warm_up(engine, stack, compose, log, STACK)
    names = ", ".join(side for side, _ in sides)
    print(f"(a) cold apply of {args.containers_a} containers: {names}", flush=True)
    for round_no in range(args.repeat):
        shift = round_no % len(sides)
        for side, parallel in sides[shift:] + sides[:shift]:
            client, engine_name = side.split(" ")[0].split("@")
            engine = engines[engine_name]
            engine.wipe()
            # Fresh names every time: nothing of an earlier round can be in the way.
            name = f"{STACK}{round_no}{client[0]}{engine_name[:2]}{parallel or ''}"
            stack, compose = _write_stacks(
                harness.root / "a" / name, args.containers_a, reference, name
            )
            os.sync()
            if client == "compose":
                more = _compose_env(args.containers_a)
                timing = run_timed(engine, _compose_up(compose, name), log, extra_env=more)
                label = f"com.docker.compose.project={name}"
            else:
                timing = run_timed(
                    engine,
                    _declarun_apply(engine, stack, parallel, args.settle),
                    log,
                    profile=args.profile,
                    name=f"a-{engine_name}-{parallel}-{round_no}",
                    expect="Apply complete",
                )
                label = f"dev.declarun.stack={name}"
            _check_up(engine, label, args.containers_a, side)
            results.a[side].append(timing)
            print(
                f"  round {round_no + 1} {side:34} {timing.wall:6.2f} s  (client CPU "
                f"{timing.client_cpu:5.2f} s, engine CPU {timing.engine_cpu:5.2f} s)",
                flush=True,
            )
            engine.wipe()


# -- (b) re-apply with no changes -------------------------------------------------------------


def _in_process_reapply(engine: Engine, stack_path: Path, repeat: int) -> dict[str, list[float]]:
    """Load, observe and plan in this process, as ``declarun apply`` does before acting.

    "observe" includes working out the desired state (the observer does it once per plan);
    "diff" is the pure plan function given both.
    """
    from declarun.engine.dockerpy import DockerEngine
    from declarun.observe.state import observe_stack
    from declarun.plan.diff import diff
    from declarun.stack.pipeline import LoadOptions, load_stack

    found: dict[str, list[float]] = {"load": [], "observe": [], "diff": []}
    client = DockerEngine.open(engine.daemon.host, timeout=600)
    try:
        for _ in range(repeat):
            started = time.perf_counter()
            stack = load_stack(stack_path, LoadOptions(environ={}))
            loaded = time.perf_counter()
            seen = observe_stack(client, stack)
            observed = time.perf_counter()
            plan = diff(stack, seen.observed, desired=seen.desired)
            planned = time.perf_counter()
            if not plan.is_empty:
                raise BenchError(f"the in-process re-plan is not empty: {plan.counts()}")
            found["load"].append(loaded - started)
            found["observe"].append(observed - loaded)
            found["diff"].append(planned - observed)
    finally:
        client.close()
    return found


def bench_reapply(
    harness: Harness,
    engines: dict[str, Engine],
    reference: str,
    args: argparse.Namespace,
    results: Results,
) -> None:
    """(b): apply once (untimed set-up), then re-apply the unchanged stack, timed."""
    count = args.containers_b
    log = harness.root / "b" / "commands.log"
    for engine_name, engine in engines.items():
        engine.wipe()
        side = f"declarun@{engine_name}"
        print(f"(b) re-apply of {count} containers, {side}", flush=True)
        name = f"{STACK}d{engine_name[:2]}"
        stack, compose = _write_stacks(harness.root / "b" / name, count, reference, name)
        warm_up(engine, stack, compose, log, name)
        setup = run_timed(engine, _declarun_apply(engine, stack), log, expect="Apply complete")
        _check_up(engine, f"dev.declarun.stack={name}", count, "the set-up apply")
        results.b_notes.append(
            f"set-up: cold apply of {count} on {engine_name} took {setup.wall:.1f} s"
        )
        print(f"  set-up apply {setup.wall:.1f} s", flush=True)
        walls: list[float] = []
        cpus: list[float] = []
        tree_walls: list[float] = []
        tree_cpus: list[float] = []
        for round_no in range(args.repeat):
            # With --tree, the other tree's declarun runs in the same rounds, order alternating.
            trees = [False, True] if args.tree is not None else [False]
            for from_tree in trees if round_no % 2 == 0 else list(reversed(trees)):
                timing = run_timed(
                    engine,
                    _declarun_apply(engine, stack),
                    log,
                    profile=None if from_tree else args.profile,
                    name=f"b-{engine_name}-{round_no}",
                    expect="Nothing to do",
                    extra_env={"PYTHONPATH": str(args.tree)} if from_tree else None,
                )
                (tree_walls if from_tree else walls).append(timing.wall)
                (tree_cpus if from_tree else cpus).append(timing.client_cpu)
                which = f"{args.tree.name}: " if from_tree and args.tree is not None else ""
                print(
                    f"  {which}re-apply {timing.wall:6.3f} s (client CPU {timing.client_cpu:.2f} s)"
                )
        results.b[f"{side} client CPU"] = cpus
        if args.tree is not None:
            results.b[f"{args.tree.name}: {side} end to end"] = tree_walls
            results.b[f"{args.tree.name}: {side} client CPU"] = tree_cpus
        results.b[f"{side} end to end"] = walls
        cold = [
            run_timed(
                engine,
                _declarun_apply(engine, stack),
                log,
                expect="Nothing to do",
                bytecode=False,
            ).wall
            for _ in range(args.repeat)
        ]
        results.b[f"{side} end to end, no bytecode cache"] = cold
        parts = _in_process_reapply(engine, stack, args.repeat)
        for part, values in parts.items():
            results.b[f"{side} in process: {part}"] = values
        both = [o + d for o, d in zip(parts["observe"], parts["diff"], strict=True)]
        results.b[f"{side} in process: observe+diff"] = both
        startup = run_timed(engine, [str(DECLARUN), "--version"], log)
        results.b_notes.append(
            f"`declarun --version` (interpreter start + CLI import, no engine): "
            f"{startup.wall:.3f} s"
        )
        engine.wipe()
        if engine_name == "dockerd" and not args.no_compose_b:
            print(f"(b) re-up of {count} containers, compose@dockerd", flush=True)
            more = _compose_env(count)
            name = f"{STACK}cdo"
            stack, compose = _write_stacks(harness.root / "b" / name, count, reference, name)
            setup = run_timed(engine, _compose_up(compose, name), log, extra_env=more)
            _check_up(engine, f"com.docker.compose.project={name}", count, "compose set-up")
            limit = f" (COMPOSE_PARALLEL_LIMIT={more['COMPOSE_PARALLEL_LIMIT']})" if more else ""
            results.b_notes.append(f"set-up: compose up of {count} took {setup.wall:.1f} s{limit}")
            walls = []
            for _ in range(args.repeat):
                up = _compose_up(compose, name)
                walls.append(run_timed(engine, up, log, extra_env=more).wall)
                print(f"  re-up {walls[-1]:6.3f} s", flush=True)
            results.b["compose@dockerd end to end"] = walls
            engine.wipe()


# -- (c) plan against a snapshot --------------------------------------------------------------


def bench_plan(args: argparse.Namespace, results: Results) -> None:
    """(c): ``diff()`` of a 2,000-container stack against a snapshot that matches it."""
    from declarun.plan.desired import desired_state
    from declarun.plan.diff import diff
    from declarun.stack.pipeline import LoadOptions, load_stack

    count = args.containers_c
    print(f"(c) plan of {count} containers against a matching snapshot, in process", flush=True)
    with tempfile.TemporaryDirectory(prefix="dplan-") as directory:
        path = Path(directory) / "stack.yaml"
        path.write_text(yaml.safe_dump(generate(count, 200, 50, 20), sort_keys=False))
        started = time.perf_counter()
        stack = load_stack(path, LoadOptions(environ={}))
        results.c_notes.append(
            f"loading the stack (not part of the target; see stack_load.py): "
            f"{time.perf_counter() - started:.3f} s"
        )
    snapshot = matching_snapshot(desired_state(stack))
    diffs, fingerprints = [], []
    for _ in range(max(args.repeat, 5)):
        started = time.perf_counter()
        plan = diff(stack, snapshot)
        diffs.append(time.perf_counter() - started)
        if not plan.is_empty:
            raise BenchError(f"the plan against a matching snapshot is not empty: {plan.counts()}")
        started = time.perf_counter()
        snapshot.fingerprint()
        fingerprints.append(time.perf_counter() - started)
    results.c["diff (includes the snapshot fingerprint)"] = diffs
    results.c["of which snapshot.fingerprint()"] = fingerprints
    results.c_notes.append(
        f"{len(plan.changes)} changes, all noop; snapshot: {len(snapshot.containers)} "
        f"containers, {len(snapshot.networks)} networks, {len(snapshot.volumes)} volumes, "
        f"{len(snapshot.images)} images"
    )
    if args.profile is not None:
        import cProfile
        import pstats

        profiler = cProfile.Profile()
        profiler.enable()
        diff(stack, snapshot)
        profiler.disable()
        out = args.profile / "c-diff.pstats"
        profiler.dump_stats(out)
        pstats.Stats(str(out)).sort_stats("cumulative").print_stats(20)


# -- report ---------------------------------------------------------------------------------


def _med(values: Sequence[float]) -> str:
    return f"{statistics.median(values):.3f} s"


def report(results: Results, args: argparse.Namespace) -> None:
    """Print every figure collected."""
    print()
    print(f"date     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"machine  {machine_summary()}")
    print(
        f"load     1-min load average {results.load_before:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end"
    )
    if results.a or results.a_skipped:
        print(f"\n(a) cold apply, {args.containers_a} containers, {args.repeat} rounds")
        print(
            f"  {'side':34} {'median':>9} {'min':>8} {'max':>8} {'client CPU':>11} {'engine CPU':>11}"
        )
        for side, timings in results.a.items():
            walls = [t.wall for t in timings]
            print(
                f"  {side:34} {statistics.median(walls):7.2f} s {min(walls):6.2f} s "
                f"{max(walls):6.2f} s {statistics.median(t.client_cpu for t in timings):9.2f} s "
                f"{statistics.median(t.engine_cpu for t in timings):9.2f} s"
            )
        for side, why in results.a_skipped.items():
            print(f"  {side:34} not run: {why}")
        compose = results.a.get("compose@dockerd")
        for side, timings in results.a.items():
            if compose and side.startswith("declarun@"):
                ratio = statistics.median(t.wall for t in timings) / statistics.median(
                    t.wall for t in compose
                )
                target = " (target <= 0.5)" if side.startswith("declarun@declarund") else ""
                print(f"  ratio {side} / compose@dockerd: {ratio:.2f}{target}")
    if results.b:
        print(f"\n(b) re-apply with no changes, {args.containers_b} containers (target < 0.5 s)")
        for name, values in results.b.items():
            print(f"  {name:48} median {_med(values)}  min {min(values):.3f} s")
        for note in results.b_notes:
            print(f"  {note}")
    if results.c:
        print(f"\n(c) plan against a snapshot, {args.containers_c} containers (target < 1 s)")
        for name, values in results.c.items():
            print(f"  {name:48} median {_med(values)}  min {min(values):.3f} s")
        for note in results.c_notes:
            print(f"  {note}")
    if args.profile is not None:
        for part in ("a", "b"):
            paths = sorted(args.profile.glob(f"{part}-*.txt"))
            if paths:
                print(f"\nprofile of the declarun commands of ({part}) (py-spy; timings skewed):")
                print(summarise_profiles(paths))


# -- main -----------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> None:
    """The whole benchmark inside one harness."""
    results = Results(load_before=os.getloadavg()[0])
    parts = set(args.only.split(","))
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    if "c" in parts:
        bench_plan(args, results)
    if parts & {"a", "b"}:
        if shutil.which(COMPOSE) is None:
            raise BenchError("docker-compose not found: apt-get install docker-compose")
        with Harness(prefix="dapply-", keep=args.keep) as harness:
            registry = harness.start_registry()
            reference = _push_busybox(harness, registry)
            dockerd, declarund, why = _start_engines(
                harness, registry, reference, not args.no_declarund
            )
            engines = {"dockerd": dockerd}
            if declarund is not None:
                engines["declarund"] = declarund
            else:
                results.a_skipped["declarun@declarund"] = why
                print(f"declarund side skipped: {why}", flush=True)
            if "a" in parts:
                bench_cold(harness, engines, reference, args, results)
            if "b" in parts:
                bench_reapply(harness, engines, reference, args, results)
    report(results, args)


def _parallels(text: str) -> list[int | None]:
    values: list[int | None] = [int(v) for v in text.split(",") if v.strip()]
    if not values or any(v is not None and v < 1 for v in values):
        raise argparse.ArgumentTypeError("a comma-separated list of positive numbers")
    return values


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", default="a,b,c", help="parts to run: a, b, c (comma-separated)")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs of each command")
    parser.add_argument("--containers-a", type=int, default=50)
    parser.add_argument("--containers-b", type=int, default=200)
    parser.add_argument("--containers-c", type=int, default=2000)
    parser.add_argument(
        "--parallel",
        type=_parallels,
        default=[None],
        help="declarun apply --parallel values to compare in (a), e.g. 4,16 (default: its own)",
    )
    parser.add_argument("--no-declarund", action="store_true", help="dockerd only")
    parser.add_argument(
        "--settle",
        metavar="DURATION",
        help="declarun apply --settle in (a) (default: declarun's own, 3s)",
    )
    parser.add_argument("--no-compose-b", action="store_true", help="skip the compose re-up of (b)")
    parser.add_argument("--profile", type=Path, help="py-spy/cProfile output into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    parser.add_argument(
        "--tree",
        type=Path,
        help="(b): also time the declarun of this source tree (PYTHONPATH) in the same rounds",
    )
    args = parser.parse_args(argv)
    if args.repeat < 1 or min(args.containers_a, args.containers_b, args.containers_c) < 2:
        parser.error("--repeat must be positive and container counts at least 2")
    if not set(args.only.split(",")) <= {"a", "b", "c"}:
        parser.error("--only takes a, b and c")
    return run_benchmark(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
