"""Hash a 10,000-file build context, as ``declarun plan`` does for a ``build:`` image.

Run: .venv/bin/python benchmarks/context_hash.py [--files 10000] [--repeat 7] [--profile]

Generates a context of ``--files`` files (100 per directory, 0.5-16 KiB each, plus a
``.dockerignore`` that excludes a tenth of them and re-includes some), then times, with
the digest cache in a JSON file:

* cold: the first hash (every file read);
* repeat: hashing again with nothing changed (stat only) — the target: well under 1 s;
* one edit: after one file's content changed (one file read);
* no cache: hashing again without a cache (every file read again), for comparison.

Prints the median (and min-max) of each over ``--repeat`` runs.
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from _harness import run_benchmark

from declarun.dockerfile.context import ContextDigest, hash_context

_DOCKERIGNORE = "# generated\n**/*.tmp\n!keep/**/*.tmp\nd00/\n"


def generate(root: Path, files: int) -> None:
    """A deterministic context: ``files`` files, 100 per directory, varied sizes."""
    rng = random.Random(7)
    for index in range(files):
        directory = root / ("keep" if index % 50 == 0 else "") / f"d{index // 100:02d}"
        directory.mkdir(parents=True, exist_ok=True)
        suffix = ".tmp" if index % 10 == 0 else ".py"
        size = rng.randint(512, 16 * 1024)
        (directory / f"f{index:05d}{suffix}").write_bytes(rng.randbytes(size))
    (root / ".dockerignore").write_text(_DOCKERIGNORE)
    (root / "Dockerfile").write_text("FROM busybox\nCOPY . /app\n")
    # Older than the cache's one-second "racy" window, as a checked-out tree is.
    past = time.time() - 60
    for path in root.rglob("*"):
        os.utime(path, (past, past), follow_symlinks=False)


def timed(action: Callable[[], ContextDigest]) -> tuple[float, ContextDigest]:
    """Seconds one call took, and its result."""
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def summary(name: str, seconds: list[float]) -> str:
    """``name: median (min-max)`` in seconds."""
    return (
        f"{name:<28} median {statistics.median(seconds):.3f} s "
        f"(min {min(seconds):.3f}, max {max(seconds):.3f})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--files", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--profile", action="store_true", help="cProfile one repeat run")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="ctxhash-") as scratch:
        root = Path(scratch) / "context"
        cache = Path(scratch) / "cache" / "digests.json"
        generate(root, args.files)
        cold, first = timed(lambda: hash_context(root, cache=cache))
        print(f"context: {args.files} files generated, {len(first.entries)} entries sent")
        print(summary("cold (cache empty)", [cold]))

        repeat = [timed(lambda: hash_context(root, cache=cache))[0] for _ in range(args.repeat)]
        print(summary("repeat, nothing changed", repeat))

        edits: list[float] = []
        files = sorted(p for p in first.entries if p.endswith(".py"))
        edited_name = files[len(files) // 2]
        for round_ in range(args.repeat):
            target = root / edited_name
            target.write_bytes(b"edit %d\n" % round_)
            os.utime(target, (time.time() - 30 + round_, time.time() - 30 + round_))
            seconds, edited = timed(lambda: hash_context(root, cache=cache))
            edits.append(seconds)
            assert first.changes(edited).modified == (edited_name,)
        print(summary("repeat, one file edited", edits))

        uncached = [timed(lambda: hash_context(root))[0] for _ in range(max(1, args.repeat // 3))]
        print(summary("no cache (all content read)", uncached))
        print(f"target: repeat < 1 s: {'met' if statistics.median(repeat) < 1 else 'MISSED'}")

        if args.profile:
            profiler = cProfile.Profile()
            profiler.runcall(hash_context, root, cache=cache)
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(15)


if __name__ == "__main__":
    raise SystemExit(run_benchmark(main))
