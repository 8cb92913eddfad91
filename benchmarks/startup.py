"""How long a ``declarun`` command takes before it does anything (issue 16: CLI start-up).

Run from the repository root: .venv/bin/python benchmarks/startup.py [--repeat 20] [--engine]

(1) Without a daemon: ``declarun --version``, ``declarun validate examples/web/stack.yaml``
    and ``declarun --help``, beside the interpreter alone (``python -c pass``) and
    ``python -c "import click"``; each a new process, ``--repeat`` rounds, the commands
    interleaved in every round (so a busy spell on this shared machine hits them all alike).
    Printed: min, median and max wall time, the median CPU time (user + system), and the
    heavy libraries each command imported (from one ``-X importtime`` run). Targets: under
    150 ms each for ``--version`` and ``validate``.
(2) With ``--engine`` (root): a registry with the busybox test image and a fresh declarund;
    the web example (``examples/web``) applied once (untimed, its port moved to a free one),
    then ``declarun plan`` and ``declarun apply`` with nothing to change, timed the same way.
    Target: under 400 ms end to end each.

The commands run with a bytecode cache in the temporary directory (this environment sets
``PYTHONDONTWRITEBYTECODE``; an installed wheel has its ``.pyc`` files), filled by one untimed
run of each. ``--profile`` prints the 25 costliest imports of each command (``-X importtime``,
cumulative microseconds). ``--tree DIR`` runs the declarun of another source tree (e.g. ``git
archive main | tar -x -C DIR``: the figures before a change) as ``python -m declarun`` with
``PYTHONPATH=DIR``, interleaved with this checkout's commands in the same rounds.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    REPO_ROOT,
    BenchError,
    Harness,
    free_port,
    free_subnet,
    machine_summary,
    run_benchmark,
)

__all__ = ["main"]

sys.path.insert(0, str(REPO_ROOT))

PYTHON = REPO_ROOT / ".venv" / "bin" / "python"
DECLARUN = REPO_ROOT / ".venv" / "bin" / "declarun"
WEB = REPO_ROOT / "examples" / "web" / "stack.yaml"
# Libraries a command should import only when it uses them.
HEAVY = ("docker", "rich", "jsonschema", "networkx", "aiohttp", "jinja2", "requests", "yaml")
TARGETS = {"--version": 0.150, "validate": 0.150, "plan (no-op)": 0.400, "apply (no-op)": 0.400}


@dataclass
class Series:
    """One command and its timings."""

    label: str
    argv: list[str]
    pythonpath: str | None = None  # another source tree's declarun (``--tree``)
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _run(argv: Sequence[str], env: dict[str, str], expect: str | None) -> tuple[float, float]:
    cpu_before = _children_cpu()
    start = time.perf_counter()
    # cwd "/": ``python -m`` puts the working directory first on the path, which would
    # shadow ``--tree``'s declarun with this checkout's (every path given is absolute).
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd="/")
    wall = time.perf_counter() - start
    if done.returncode != 0 or (expect is not None and expect not in done.stdout):
        raise BenchError(
            f"{' '.join(argv)} failed ({done.returncode}):\n{done.stdout[-2000:]}"
            f"{done.stderr[-2000:]}"
        )
    return wall, _children_cpu() - cpu_before


def _imports(argv: Sequence[str], env: dict[str, str]) -> tuple[list[str], list[tuple[int, str]]]:
    """The heavy libraries ``argv`` imports, and its costliest imports (cumulative us)."""
    python_argv = [str(PYTHON), "-X", "importtime", *argv[1:]]  # python -m declarun ...
    if argv[0] == str(DECLARUN):
        python_argv = [str(PYTHON), "-X", "importtime", "-m", "declarun", *argv[1:]]
    done = subprocess.run(
        python_argv, env=env, capture_output=True, text=True, check=False, cwd="/"
    )
    names: list[tuple[int, str]] = []
    for line in done.stderr.splitlines():
        found = re.match(r"import time:\s+\d+ \|\s+(\d+) \|(\s*)(\S+)", line)
        if found:
            names.append((int(found.group(1)), found.group(3)))
    loaded = {name.split(".")[0] for _us, name in names}
    return [h for h in HEAVY if h in loaded], sorted(names, reverse=True)[:25]


def _time_series(
    series: list[Series], env: dict[str, str], repeat: int, expect: dict[str, str]
) -> None:
    for item in series:  # untimed: fills the bytecode cache
        _run(item.argv, _env_of(item, env), None)
    for round_ in range(repeat):
        ordered = series if round_ % 2 == 0 else list(reversed(series))
        for item in ordered:
            wall, cpu = _run(item.argv, _env_of(item, env), expect.get(item.label.split(": ")[-1]))
            item.wall.append(wall)
            item.cpu.append(cpu)


def _env_of(item: Series, env: dict[str, str]) -> dict[str, str]:
    if item.pythonpath is None:
        return env
    return {**env, "PYTHONPATH": item.pythonpath}


def _with_tree(series: list[Series], tree: Path | None) -> list[Series]:
    """``series``, and with ``--tree`` the declarun commands again from that tree."""
    if tree is None:
        return series
    other = [
        Series(
            f"{tree.name}: {item.label}", [str(PYTHON), "-m", "declarun", *item.argv[1:]], str(tree)
        )
        for item in series
        if item.argv[0] == str(DECLARUN)
    ]
    return series + other


def _report(series: list[Series], env: dict[str, str], profile: bool) -> None:
    print(f"{'command':<34} {'min':>8} {'median':>8} {'max':>8} {'CPU med':>8}  target")
    for item in series:
        target = TARGETS.get(item.label.split(": ")[-1])
        verdict = ""
        if target is not None:
            met = statistics.median(item.wall) < target
            verdict = f"< {target * 1000:.0f} ms: {'met' if met else 'MISSED'}"
        print(
            f"{item.label:<34} {min(item.wall) * 1000:6.1f}ms {statistics.median(item.wall) * 1000:6.1f}ms "
            f"{max(item.wall) * 1000:6.1f}ms {statistics.median(item.cpu) * 1000:6.1f}ms  {verdict}"
        )
    print()
    for item in series:
        if item.argv[0] != str(DECLARUN) and item.pythonpath is None:
            continue
        heavy, costly = _imports(item.argv, _env_of(item, env))
        print(f"{item.label}: imports {', '.join(heavy) or 'none'} of {', '.join(HEAVY)}")
        if profile:
            for us, name in costly:
                print(f"    {us / 1000:7.1f} ms  {name}")


def _environment(pycache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DOCKER_", "DECLARUN_"))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    env["NO_COLOR"] = "1"
    return env


def _offline(harness: Harness, repeat: int, profile: bool, tree: Path | None) -> None:
    env = _environment(harness.path("pycache"))
    series = [
        Series("python -c pass", [str(PYTHON), "-c", "pass"]),
        Series("python -c 'import click'", [str(PYTHON), "-c", "import click"]),
        Series("--version", [str(DECLARUN), "--version"]),
        Series("validate", [str(DECLARUN), "validate", str(WEB)]),
        Series("--help", [str(DECLARUN), "--help"]),
    ]
    series = _with_tree(series, tree)
    _time_series(series, env, repeat, {"validate": "valid stack"})
    _report(series, env, profile)


def _push_busybox(harness: Harness, registry_host: str) -> None:
    from tests.support.images import build_busybox_layout

    layout = harness.path("layout")
    build_busybox_layout(layout, tag="1.35")
    policy = harness.root / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    command = ["skopeo", "--policy", str(policy), "copy", "--quiet", "--dest-tls-verify=false"]
    command += [f"oci:{layout}:1.35", f"docker://{registry_host}/declarun/busybox:1.35"]
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"skopeo copy failed: {done.stderr.strip()}")


def _engine(harness: Harness, repeat: int, profile: bool, tree: Path | None) -> None:
    registry = harness.start_registry()
    _push_busybox(harness, registry.host)
    daemon = harness.start_declarund("declarund", extra_args=["--insecure-registry", registry.host])
    env = _environment(harness.path("pycache"))
    common = ["--host", daemon.host, "--var", f"registry={registry.host}"]
    common += ["--var", f"http_port={free_port()}"]
    # The whole example: its web image is built from ./web beside the stack file.
    work = harness.path("work") / "web"
    shutil.copytree(WEB.parent, work)
    stack = work / "stack.yaml"
    # Its network gets a subnet of its own (the default pools may all be taken here).
    text = stack.read_text()
    backend = "  backend:\n    labels:\n"
    if backend not in text:
        raise BenchError("examples/web/stack.yaml changed: its backend network is not found")
    stack.write_text(
        text.replace(backend, f"  backend:\n    subnet: {free_subnet()}\n    labels:\n")
    )
    apply_argv = [str(DECLARUN), "apply", str(stack), *common, "--yes"]
    started = time.perf_counter()
    _run(apply_argv, env, None)
    print(f"web example applied on declarund in {time.perf_counter() - started:.2f} s (untimed)")
    series = [
        Series("plan (no-op)", [str(DECLARUN), "plan", str(stack), *common]),
        Series("apply (no-op)", apply_argv),
    ]
    series = _with_tree(series, tree)
    _time_series(series, env, repeat, {"plan (no-op)": "No changes"})
    _report(series, env, profile)
    subprocess.run(
        [str(DECLARUN), "destroy", str(stack), *common, "--yes", "--volumes"],
        env=env,
        capture_output=True,
        check=False,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the options and run the benchmark."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    parser.add_argument("--engine", action="store_true", help="also time no-op plan and apply")
    parser.add_argument("--profile", action="store_true", help="list the costliest imports")
    parser.add_argument("--tree", type=Path, help="also time the declarun of this source tree")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    def body() -> None:
        print(f"date     {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, load {os.getloadavg()[0]:.1f}")
        print(f"machine  {machine_summary()}")
        with Harness(prefix="dstart-", keep=args.keep) as harness:
            _offline(harness, args.repeat, args.profile, args.tree)
            if args.engine:
                print()
                _engine(harness, args.repeat, args.profile, args.tree)
        print(f"load at the end {os.getloadavg()[0]:.1f}")

    return run_benchmark(body, needs_root="declarund" if args.engine else None)


if __name__ == "__main__":
    sys.exit(main())
