"""``declarun plan`` of a stack whose build context holds 10,000 files, nothing changed.

Run (as root): .venv/bin/python benchmarks/plan_build.py [--files 10000] [--repeat 7] [--keep]

One run:

1. generates a context of ``--files`` files (``context_hash.generate``: 100 per directory,
   0.5-16 KiB each, a ``.dockerignore`` excluding a tenth of them and re-including some) and
   a stack with one built image, ``FROM scratch`` + ``COPY . /app`` (no registry needed);
2. starts a private dockerd (``_harness``), points ``XDG_CACHE_HOME`` at a fresh directory,
   and applies the stack once: the image is built and its build record written;
3. times the whole ``declarun plan stack.yaml --engine docker --host ...`` command
   (a new Python process each time: imports, loading the stack, connecting, observing —
   the context hashed with the digest cache, the build record read — and the plan), which
   must say "No changes" (exit 0), ``--repeat`` times after one untimed run — **the target:
   under 1 s** — and the CPU time it took (the machine's other work does not inflate it
   as much as the wall time). The commands run with a bytecode cache (``PYTHONPYCACHEPREFIX``
   in the temporary directory), as an installed wheel would;
4. for comparison: the same command after the digest cache was removed (every file read
   again), and after one file was edited (the plan names it, exit 2); and, in-process,
   how much of the plan observing the build takes.

Prints the median (and min-max) of each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _harness import REPO_ROOT, BenchError, Harness, machine_summary, run_benchmark
from context_hash import generate

_STACK = """\
stack: bench
images:
  app:
    build: ./context
"""


def summary(name: str, seconds: list[float]) -> str:
    """``name: median (min-max)`` in seconds."""
    return (
        f"{name:<40} median {statistics.median(seconds):.3f} s "
        f"(min {min(seconds):.3f}, max {max(seconds):.3f})"
    )


_CPU: list[float] = []  # the CPU time (user + system) of each timed command, in order


def _declarun(host: str, stack: Path, *args: str, env: dict[str, str]) -> tuple[float, str, int]:
    python = REPO_ROOT / ".venv" / "bin" / "python"
    command = [str(python if python.exists() else sys.executable), "-m", "declarun", *args]
    command += [str(stack), "--engine", "docker", "--host", host]
    before = os.times()
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    seconds = time.perf_counter() - start
    after = os.times()
    _CPU.append(
        after.children_user - before.children_user + after.children_system - before.children_system
    )
    return seconds, done.stdout + done.stderr, done.returncode


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args()

    with Harness(prefix="dplan-", keep=args.keep) as harness:
        root = harness.path("work")
        generate(root / "context", args.files)
        (root / "context" / "Dockerfile").write_text("FROM scratch\nCOPY . /app\n")
        past = time.time() - 60
        os.utime(root / "context" / "Dockerfile", (past, past))
        stack = root / "stack.yaml"
        stack.write_text(_STACK)
        cache = harness.path("cache")
        # This environment sets PYTHONDONTWRITEBYTECODE: without a bytecode cache every
        # command would compile declarun from source, which an installed wheel never does.
        env = dict(os.environ, XDG_CACHE_HOME=str(cache))
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env["PYTHONPYCACHEPREFIX"] = str(harness.path("pycache"))
        dockerd = harness.start_dockerd("dockerd")
        print(machine_summary())
        print(f"context: {args.files} files; engine: dockerd ({dockerd.host})")

        seconds, output, code = _declarun(dockerd.host, stack, "apply", env=env)
        if code != 0:
            raise BenchError(f"the first apply failed:\n{output}")
        print(summary("apply (cold build, context sent)", [seconds]))

        nothing: list[float] = []
        for round_ in range(args.repeat + 1):  # the first fills the bytecode cache
            seconds, output, code = _declarun(dockerd.host, stack, "plan", env=env)
            if code != 0 or "No changes" not in output:
                raise BenchError(f"plan found changes where there are none:\n{output}")
            if round_:
                nothing.append(seconds)
        print(summary("plan, nothing changed", nothing))
        print(summary("  its CPU time (user + system)", _CPU[-args.repeat :]))

        uncached: list[float] = []
        for _ in range(max(1, args.repeat // 3)):
            shutil.rmtree(cache / "declarun" / "context-digests", ignore_errors=True)
            seconds, output, code = _declarun(dockerd.host, stack, "plan", env=env)
            if code != 0:
                raise BenchError(f"plan without the digest cache failed:\n{output}")
            uncached.append(seconds)
        print(summary("plan, digest cache removed", uncached))

        # d00/ is excluded by the .dockerignore: edit a file that is sent
        edited = sorted((root / "context" / "d05").glob("f*.py"))[len(uncached)]
        edited.write_bytes(b"edited\n")
        seconds, output, code = _declarun(dockerd.host, stack, "plan", env=env)
        name = edited.relative_to(root / "context").as_posix()
        if code != 2 or f"{name} (modified)" not in output:
            raise BenchError(f"the plan does not name the edited file {name}:\n{output}")
        print(summary("plan, one file edited (named)", [seconds]))

        _in_process(dockerd.host, stack, cache, args.repeat)
        target = statistics.median(nothing)
        print(f"target: plan with nothing changed < 1 s: {'met' if target < 1 else 'MISSED'}")


def _in_process(host: str, stack_file: Path, cache: Path, repeat: int) -> None:
    """Where a plan's time goes, without the process start: load, observe the build, plan."""
    os.environ["XDG_CACHE_HOME"] = str(cache)
    from declarun.engine.connect import EngineChoice, connect
    from declarun.observe.builds import observe_builds
    from declarun.reconcile.apply import make_plan
    from declarun.stack.pipeline import load_stack

    engine = connect(EngineChoice(kind="docker", host=host))
    try:
        loads, builds, plans = [], [], []
        for _ in range(repeat):
            start = time.perf_counter()
            stack = load_stack(stack_file)
            loads.append(time.perf_counter() - start)
            start = time.perf_counter()
            observe_builds(engine, stack, platform=engine.version().platform)
            builds.append(time.perf_counter() - start)
            start = time.perf_counter()
            make_plan(engine, stack)
            plans.append(time.perf_counter() - start)
        print(summary("in process: load the stack", loads))
        print(summary("in process: observe the build", builds))
        print(summary("in process: observe + plan", plans))
    finally:
        engine.close()


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main, needs_root="dockerd needs root"))
