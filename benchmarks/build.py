"""``docker build`` (classic builder): declarund vs dockerd, side by side in one run.

Run from the repository root as root::

    .venv/bin/python benchmarks/build.py [--rounds 3] [--files 2000] [--profile DIR] [--keep]

One run, on one machine:

1. builds the busybox test image (``tests/support/images.py``), pushes it to a private
   registry on ``127.0.0.1`` and pulls it into declarund and into dockerd (Debian's
   ``docker.io``, no bridge);
2. writes a realistic multi-stage project: three stages and 17 instructions (``WORKDIR``,
   ``ENV``, ``LABEL``, ``CMD``, four ``RUN`` steps that write files -- 200 small ones, a 2 MB
   one, a copy of part of the context -- a ``COPY`` of a ``--files``-file context, three
   ``COPY --from``);
3. ``--rounds`` rounds, the order of the daemons alternating; in each, on each daemon, with
   the same docker CLI (``DOCKER_BUILDKIT=0``, ``--network none`` for both, since this
   dockerd has no bridge):

   (a) **cold**: ``docker build --no-cache`` (every step runs);
   (b) **no change**: the same build again (every step from the cache);
   (c) **one file edited**: one file of the context changed, then the build (the stage that
       copies the context reruns from that ``COPY``, the final stage from the ``COPY
       --from`` of it; the other stage stays cached) -- the steps rerun are counted;

4. prints the median wall time of each and the ratio declarund/dockerd against the targets:
   (a) <= 1.0, (b) <= 0.3, (c) <= 0.5.

``--profile DIR`` runs one more round on declarund under py-spy and prints its busiest
functions. Everything started is stopped and removed on exit, normal or not.
"""

from __future__ import annotations

import argparse
import re
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
    BenchError,
    Daemon,
    Harness,
    docker,
    machine_summary,
    run_benchmark,
)
from run import prepare_image

__all__ = ["main"]

_TAG = "bench/app:1"
_TARGETS = {"cold": 1.0, "no change": 0.3, "one file edited": 0.5}

DOCKERFILE = """\
FROM BASE AS deps
WORKDIR /deps
RUN for i in $(seq 1 200); do echo "dependency $i" > /deps/dep-$i.txt; done
RUN mkdir -p /deps/lib && dd if=/dev/zero of=/deps/lib/blob bs=1024 count=2048 2>/dev/null

FROM BASE AS build
WORKDIR /src
COPY src/ /src/
RUN find /src -type f | wc -l > /count && cat /src/pkg-1/* > /bundle.txt
RUN mkdir -p /out && cp -r /src/pkg-2 /out/ && echo built > /out/stamp

FROM BASE
ENV APP=/app
COPY --from=deps /deps /app/deps
COPY --from=build /out /app/out
COPY --from=build /bundle.txt /count /app/
WORKDIR /app
LABEL bench=build
CMD ["cat", "/app/out/stamp"]
"""


@dataclass
class Timings:
    """The wall times of one daemon, per scenario."""

    runs: dict[str, list[float]] = field(default_factory=dict)
    rerun_steps: list[int] = field(default_factory=list)

    def add(self, scenario: str, seconds: float) -> None:
        """Record one build."""
        self.runs.setdefault(scenario, []).append(seconds)

    def median(self, scenario: str) -> float:
        """The median of a scenario."""
        return statistics.median(self.runs[scenario])


def write_project(root: Path, base: str, files: int) -> Path:
    """The Dockerfile and a context of ``files`` small files (~20 per directory)."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(DOCKERFILE.replace("BASE", base))
    per_dir = 100
    for number in range(files):
        directory = root / "src" / f"pkg-{number // per_dir + 1}"
        directory.mkdir(parents=True, exist_ok=True)
        size = 200 + (number * 37) % 3800
        text = f"file {number}\n" + ("x" * 63 + "\n") * (size // 64)
        (directory / f"f-{number}.txt").write_text(text)
    return root


def timed_build(daemon: Daemon, project: Path, harness: Harness, *args: str) -> tuple[float, str]:
    """One ``docker build``; its wall time and output."""
    env = {"DOCKER_BUILDKIT": "0", "DOCKER_CONFIG": str(harness.docker_config), "PATH": "/usr/bin"}
    command = [DOCKER_CLI, "-H", daemon.host, "build", "--network", "none", "-t", _TAG, *args]
    start = time.perf_counter()
    done = subprocess.run(
        [*command, str(project)], capture_output=True, text=True, env=env, timeout=1800
    )
    elapsed = time.perf_counter() - start
    if done.returncode != 0:
        raise BenchError(f"docker build on {daemon.kind} failed:\n{done.stdout}\n{done.stderr}")
    return elapsed, done.stdout


def steps_rerun(output: str) -> int:
    """How many steps of a build ran (neither FROM nor served from the cache)."""
    parts = re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]
    return sum(1 for p in parts if not p.startswith("FROM") and "---> Using cache" not in p)


def one_round(
    daemons: Sequence[Daemon], project: Path, harness: Harness, round_no: int
) -> dict[str, tuple[float, float, float, int]]:
    """(a), (b), (c) on each daemon, in the given order."""
    results = {}
    edited = project / "src" / "pkg-7" / "f-650.txt"
    for daemon in daemons:
        edited.write_text(f"original content, round {round_no}\n")
        cold, _ = timed_build(daemon, project, harness, "--no-cache")
        warm, out = timed_build(daemon, project, harness)
        if steps_rerun(out) != 0:
            raise BenchError(f"{daemon.kind}: the rebuild with nothing changed ran steps:\n{out}")
        edited.write_text(f"edited content, round {round_no}\n")
        after_edit, out = timed_build(daemon, project, harness)
        results[daemon.kind] = (cold, warm, after_edit, steps_rerun(out))
        print(
            f"  round {round_no + 1} {daemon.kind:10} cold {cold:6.2f} s  no change "
            f"{warm:5.2f} s  one file edited {after_edit:5.2f} s "
            f"({steps_rerun(out)} steps rerun)",
            flush=True,
        )
    return results


def report(timings: dict[str, Timings]) -> None:
    """Medians and ratios against the targets."""
    print("\nmedian wall time of `docker build` (s)")
    print(f"  {'scenario':18} {'declarund':>10} {'dockerd':>10} {'ratio':>7}  target")
    for scenario, target in _TARGETS.items():
        ours = timings["declarund"].median(scenario)
        theirs = timings["dockerd"].median(scenario)
        ratio = ours / theirs
        verdict = "meets" if ratio <= target else "MISSES"
        print(f"  {scenario:18} {ours:10.2f} {theirs:10.2f} {ratio:7.2f}  <= {target} ({verdict})")
    for kind, timing in timings.items():
        print(f"  steps rerun after the edit, {kind}: {sorted(set(timing.rerun_steps))}")


def profile(harness: Harness, project: Path, reference: str, directory: Path) -> str:
    """One round on declarund under py-spy; its busiest functions."""
    from pull import summarise_profiles

    out = directory / "build-profile.txt"
    wrapper = ["py-spy", "record", "--format", "raw", "-o", str(out), "--"]
    daemon = harness.start_declarund("dprof", wrapper=wrapper)
    docker(daemon.host, "pull", reference, config_dir=harness.docker_config)
    one_round([daemon], project, harness, 99)
    daemon.stop()
    return str(summarise_profiles([out]))


def run(args: argparse.Namespace) -> None:
    """The whole benchmark inside one harness."""
    with Harness(prefix="dbuild-", keep=args.keep) as harness:
        registry = harness.start_registry()
        _image, reference, _archive = prepare_image(harness, registry)
        declarund = harness.start_declarund("de", extra_args=["--insecure-registry", registry.host])
        dockerd = harness.start_dockerd("dd", insecure_registries=[registry.host])
        for daemon in (declarund, dockerd):
            docker(daemon.host, "pull", reference, config_dir=harness.docker_config)
        project = write_project(harness.root / "project", reference, args.files)
        print(f"project: 3 stages, 17 instructions, {args.files}-file context", flush=True)
        timings = {"declarund": Timings(), "dockerd": Timings()}
        for round_no in range(args.rounds):
            order = [declarund, dockerd] if round_no % 2 == 0 else [dockerd, declarund]
            for kind, (cold, warm, edited, rerun) in one_round(
                order, project, harness, round_no
            ).items():
                timing = timings[kind]
                timing.add("cold", cold)
                timing.add("no change", warm)
                timing.add("one file edited", edited)
                timing.rerun_steps.append(rerun)
        report(timings)
        if args.profile is not None:
            args.profile.mkdir(parents=True, exist_ok=True)
            print("\nprofile: declarund under py-spy")
            print(profile(harness, project, reference, args.profile))
        print(f"\ndate     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
        print(f"machine  {machine_summary()}")


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a), (b), (c)")
    parser.add_argument("--files", type=int, default=2000, help="files in the context")
    parser.add_argument("--profile", type=Path, help="py-spy profile of declarund into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.rounds < 1 or args.files < 800:
        parser.error("--rounds must be positive and --files at least 800")
    return run_benchmark(lambda: run(args), needs_root="runc, dockerd")


if __name__ == "__main__":
    sys.exit(main())
