"""Cold-cache ``docker pull`` of a ~300 MB, 6-layer image: declarund vs dockerd (issue 3's benchmark).

Run as root: .venv/bin/python benchmarks/pull.py [--repeat 5] [--layers 6] [--size-mb 300]

One run starts the real CNCF registry on a loopback port, generates an OCI image layout
(``--layers`` gzip layers, ``--size-mb`` of file data in total: a third incompressible, the
rest compressing roughly 2:1, as binaries and text do), pushes it with ``skopeo copy``, and
then, ``--repeat`` times, pulls it with the same docker CLI from a freshly started dockerd
and a freshly started declarund — each on a new, empty data root, so every pull is cold;
the order rotates each round. Printed: median pull time of each daemon, the ratio
declarund/dockerd (target <= 0.5, issue 16), and the daemons' resident memory (VmRSS of
the daemon and its children: dockerd's containerd counts) when idle after start and after
a pull (target < 60 MB for declarund).

``--baseline DIR`` also measures the declarund of another checkout of the project (say
``git archive main | tar -x -C DIR``), run with this checkout's virtualenv, as a third side
in the same rounds: a change's before and after under the same load.

``--only dockerd|declarund`` measures one side; ``--profile DIR`` runs declarund under
py-spy (``.venv/bin/pip install py-spy``; not a project dependency), writes its collapsed
stacks per pull into DIR and prints the busiest functions (timings are then skewed).
Everything started is stopped and every temporary directory removed on exit, Ctrl-C
included (``--keep`` keeps the directory for inspection).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import io
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from _harness import (
    DOCKER_CLI,
    BenchError,
    Daemon,
    Harness,
    Registry,
    disk_usage,
    docker,
    machine_summary,
    run_benchmark,
    tree_cpu_seconds,
)

__all__ = ["BuiltImage", "build_layout", "main"]

_MIB = 1024 * 1024
_MTIME = 1_700_000_000
_CREATED = "2023-11-14T22:13:20Z"
_OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
_OCI_INDEX = "application/vnd.oci.image.index.v1+json"
_OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
_OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
# Random bytes folded onto 16 letters: ~4 bits of entropy a byte, so gzip halves them.
_TEXTISH = bytes(ord("a") + (i % 16) for i in range(256))
_REPO = "bench/big"
_TAG = "1"
_SETTLE_SECONDS = 2.0
# Issue 16: a cold pull through declarund in at most half of dockerd's time.
_TARGET_RATIO = 0.5


# -- the image -----------------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltImage:
    """The generated layout: where it is and what the daemons must end up with."""

    layout: Path
    config_digest: str
    files: int
    uncompressed: int
    compressed: int


def _file_sizes(rng: random.Random, budget: int) -> list[int]:
    """Mostly small files and a few large ones, as in real root filesystems."""
    sizes = []
    while budget > 0:
        size = rng.randint(2 * _MIB, 10 * _MIB) if rng.random() < 0.01 else rng.randint(512, 64000)
        size = min(size, budget)
        sizes.append(size)
        budget -= size
    return sizes


def _layer(index: int, size: int, blobs: Path) -> tuple[str, str, int, int, int]:
    """Write one gzip layer blob; returns (digest, diff_id, gz size, tar size, files)."""
    rng = random.Random(f"declarun-bench-{index}")
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        top = tarfile.TarInfo(f"layer{index}")
        top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, _MTIME
        tar.addfile(top)
        sizes = _file_sizes(rng, size)
        for number, file_size in enumerate(sizes):
            if number % 200 == 0:
                sub = tarfile.TarInfo(f"layer{index}/d{number // 200}")
                sub.type, sub.mode, sub.mtime = tarfile.DIRTYPE, 0o755, _MTIME
                tar.addfile(sub)
            data = rng.randbytes(file_size)
            if rng.random() >= 1 / 3:
                data = data.translate(_TEXTISH)
            info = tarfile.TarInfo(f"layer{index}/d{number // 200}/f{number}")
            info.size, info.mode, info.mtime = file_size, 0o644, _MTIME
            tar.addfile(info, io.BytesIO(data))
    raw = buffer.getvalue()
    packed = gzip.compress(raw, compresslevel=6, mtime=0)
    digest = hashlib.sha256(packed).hexdigest()
    (blobs / digest).write_bytes(packed)
    return (
        f"sha256:{digest}",
        f"sha256:{hashlib.sha256(raw).hexdigest()}",
        len(packed),
        len(raw),
        len(sizes),
    )


def _write_json_blob(blobs: Path, doc: object) -> tuple[str, int]:
    data = json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()
    digest = hashlib.sha256(data).hexdigest()
    (blobs / digest).write_bytes(data)
    return f"sha256:{digest}", len(data)


def build_layout(dest: Path, layers: int, total_bytes: int) -> BuiltImage:
    """Write an OCI image layout with tag ``1`` (deterministic: same digests every run)."""
    blobs = dest / "blobs" / "sha256"
    blobs.mkdir(parents=True, exist_ok=True)
    per_layer = total_bytes // layers
    with ProcessPoolExecutor(max_workers=min(layers, os.cpu_count() or 1)) as pool:
        built = list(pool.map(_layer, range(layers), [per_layer] * layers, [blobs] * layers))
    config = {
        "created": _CREATED,
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"]},
        "rootfs": {"type": "layers", "diff_ids": [b[1] for b in built]},
        "history": [{"created": _CREATED, "created_by": f"layer {i}"} for i in range(layers)],
    }
    config_digest, config_size = _write_json_blob(blobs, config)
    manifest = {
        "schemaVersion": 2,
        "mediaType": _OCI_MANIFEST,
        "config": {"mediaType": _OCI_CONFIG, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": _OCI_LAYER_GZIP, "digest": b[0], "size": b[2]} for b in built],
    }
    manifest_digest, manifest_size = _write_json_blob(blobs, manifest)
    (dest / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))
    index = {
        "schemaVersion": 2,
        "mediaType": _OCI_INDEX,
        "manifests": [
            {
                "mediaType": _OCI_MANIFEST,
                "digest": manifest_digest,
                "size": manifest_size,
                "annotations": {"org.opencontainers.image.ref.name": _TAG},
            }
        ],
    }
    (dest / "index.json").write_text(json.dumps(index))
    return BuiltImage(
        dest,
        config_digest,
        files=sum(b[4] for b in built),
        uncompressed=sum(b[3] for b in built),
        compressed=sum(b[2] for b in built),
    )


def push(image: BuiltImage, registry: Registry, workdir: Path) -> str:
    """``skopeo copy oci:<layout>:1 docker://<registry>/bench/big:1``; returns the reference."""
    if shutil.which("skopeo") is None:
        raise BenchError("skopeo not found: apt-get install skopeo")
    policy = workdir / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    reference = f"{registry.host}/{_REPO}:{_TAG}"
    command = [
        "skopeo",
        "--policy", str(policy),
        "copy", "--quiet", "--dest-tls-verify=false",
        f"oci:{image.layout}:{_TAG}",
        f"docker://{reference}",
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise BenchError(f"skopeo copy failed: {done.stderr.strip()}")
    return reference


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Side:
    """Figures collected for one daemon kind."""

    kind: str
    pulls: list[float] = field(default_factory=list)
    idle_kib: list[int] = field(default_factory=list)
    after_kib: list[int] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    disk: list[int] = field(default_factory=list)
    breakdown: dict[str, int] = field(default_factory=dict)


def _rss(daemon: Daemon, side: Side, into: list[int]) -> None:
    tree = daemon.rss_kib()
    into.append(sum(kib for _name, kib in tree.values()))
    side.breakdown = {}
    for name, kib in tree.values():
        side.breakdown[name] = side.breakdown.get(name, 0) + kib


def _start(harness: Harness, kind: str, name: str, args: argparse.Namespace, reg: str) -> Daemon:
    if kind == "dockerd":
        return harness.start_dockerd(name, insecure_registries=[reg])
    if kind == "baseline":
        return harness.start_declarund(
            name, extra_args=["--insecure-registry", reg], source=args.baseline
        )
    wrapper: list[str] = []
    if args.profile is not None:
        spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
        if not Path(spy).exists():
            raise BenchError("--profile needs py-spy: .venv/bin/pip install py-spy")
        out = args.profile / f"{name}.txt"
        wrapper = [spy, "record", "--nonblocking", "--format", "raw", "--rate", "250"]
        wrapper += ["--subprocesses", "--output", str(out), "--"]
    return harness.start_declarund(name, extra_args=["--insecure-registry", reg], wrapper=wrapper)


def one_pull(
    harness: Harness,
    kind: str,
    round_no: int,
    reference: str,
    image: BuiltImage,
    side: Side,
    args: argparse.Namespace,
    registry: Registry,
) -> None:
    """Start ``kind`` on a fresh data root, pull once (timed), measure memory, stop it."""
    name = f"{kind[:2]}{round_no}"
    daemon = _start(harness, kind, name, args, registry.host)
    try:
        time.sleep(_SETTLE_SECONDS)
        _rss(daemon, side, side.idle_kib)
        os.sync()  # the previous round's writes must not be flushed during this pull
        cpu_before = tree_cpu_seconds(daemon.measured_pid)
        started = time.perf_counter()
        docker(daemon.host, "pull", reference, config_dir=harness.docker_config)
        elapsed = time.perf_counter() - started
        side.cpu.append(tree_cpu_seconds(daemon.measured_pid) - cpu_before)
        got = docker(
            daemon.host,
            "image",
            "inspect",
            "--format",
            "{{.Id}}",
            reference,
            config_dir=harness.docker_config,
        ).stdout.strip()
        if got != image.config_digest:
            raise BenchError(f"{kind} pulled image ID {got}, expected {image.config_digest}")
        side.pulls.append(elapsed)
        side.disk.append(disk_usage(daemon.root))
        time.sleep(_SETTLE_SECONDS)
        _rss(daemon, side, side.after_kib)
        print(
            f"  round {round_no + 1} {kind:9} pull {elapsed:6.2f} s, "
            f"daemon CPU {side.cpu[-1]:5.1f} s",
            flush=True,
        )
    finally:
        daemon.stop()
        harness.remove(daemon.root)


def _mb(kib: float) -> str:
    return f"{kib / 1024:.1f} MB"


def report(sides: Sequence[Side], image: BuiltImage, args: argparse.Namespace) -> None:
    """Print the results table."""
    print()
    print(f"date     {datetime.now(UTC).strftime('%Y-%m-%d %H:%M UTC')}")
    print(f"machine  {machine_summary()}")
    print(
        f"load     1-min load average {args.load_before:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end (other work on the machine skews both daemons)"
    )
    print(
        f"image    {args.layers} layers, {image.files} files, "
        f"{image.uncompressed / 1e6:.0f} MB unpacked, {image.compressed / 1e6:.0f} MB gzip"
    )
    print(f"client   {DOCKER_CLI}, {args.repeat} cold pulls each, order rotating")
    print()
    print(
        f"{'daemon':10} {'pull median':>12} {'min':>8} {'max':>8} {'CPU':>8} "
        f"{'disk':>8} {'RSS idle':>10} {'RSS after':>10}"
    )
    for side in sides:
        print(
            f"{side.kind:10} {statistics.median(side.pulls):10.2f} s "
            f"{min(side.pulls):6.2f} s {max(side.pulls):6.2f} s "
            f"{statistics.median(side.cpu):6.1f} s "
            f"{statistics.median(side.disk) / 1e6:5.0f} MB "
            f"{_mb(statistics.median(side.idle_kib)):>10} "
            f"{_mb(statistics.median(side.after_kib)):>10}"
        )
    print(
        "  (medians; CPU = user+system seconds the daemon and its children spent on one "
        "pull; disk = its data root after the pull)"
    )
    for side in sides:
        parts = ", ".join(f"{name} {_mb(kib)}" for name, kib in sorted(side.breakdown.items()))
        print(f"  {side.kind} processes after its last pull: {parts}")
    by_kind = {s.kind: s for s in sides}
    medians = {kind: statistics.median(side.pulls) for kind, side in by_kind.items()}
    if "dockerd" in medians and "declarund" in medians:
        ratio = medians["declarund"] / medians["dockerd"]
        verdict = "meets" if ratio <= _TARGET_RATIO else "MISSES"
        print(
            f"\nratio declarund/dockerd (median pull): {ratio:.2f}  "
            f"({verdict} target <= {_TARGET_RATIO})"
        )
    if "baseline" in medians:
        for kind in ("dockerd", "declarund"):
            if kind in medians:
                print(
                    f"ratio baseline/{kind} (median pull): {medians['baseline'] / medians[kind]:.2f}"
                )
    if "declarund" in by_kind:
        idle = statistics.median(by_kind["declarund"].idle_kib)
        verdict = "meets" if idle < 60 * 1024 else "MISSES"
        print(f"declarund idle RSS: {_mb(idle)}  ({verdict} target < 60 MB)")
    if args.profile is not None:
        print(f"\nprofiles (timings skewed by py-spy): {args.profile}/*.txt")
        print(summarise_profiles(sorted(args.profile.glob("de*.txt"))))


def summarise_profiles(paths: Sequence[Path], top: int = 25) -> str:
    """The busiest functions in py-spy's collapsed stacks: own and inclusive samples."""
    own: dict[str, int] = {}
    inclusive: dict[str, int] = {}
    total = 0
    for path in paths:
        try:
            lines = path.read_text().splitlines()
        except OSError:
            continue
        for line in lines:
            stack, _, count_text = line.rpartition(" ")
            if not stack or not count_text.isdigit():
                continue
            count = int(count_text)
            total += count
            # Frames look like "function (module/path.py:line)"; drop the line number.
            frames = [f.rsplit(":", 1)[0] + ")" if ":" in f else f for f in stack.split(";")]
            own[frames[-1]] = own.get(frames[-1], 0) + count
            for frame in set(frames):
                inclusive[frame] = inclusive.get(frame, 0) + count
    if not total:
        return "(no samples)"
    out = [f"{total} samples (busy threads only)", "own time:"]
    for frame, count in sorted(own.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * count / total:5.1f}%  {frame}")
    out.append("inclusive time:")
    for frame, count in sorted(inclusive.items(), key=lambda kv: -kv[1])[:top]:
        out.append(f"  {100 * count / total:5.1f}%  {frame}")
    return "\n".join(out)


def run(args: argparse.Namespace) -> None:
    """The whole benchmark inside one harness."""
    kinds = ["dockerd", "declarund"] if args.only is None else [args.only]
    if args.baseline is not None:
        kinds.append("baseline")
    if args.profile is not None:
        args.profile.mkdir(parents=True, exist_ok=True)
    args.load_before = os.getloadavg()[0]
    with Harness(prefix="dpull-", keep=args.keep) as harness:
        registry = harness.start_registry()
        started = time.perf_counter()
        image = build_layout(harness.path("layout"), args.layers, args.size_mb * 1_000_000)
        print(
            f"generated {args.layers} layers ({image.uncompressed / 1e6:.0f} MB, "
            f"{image.compressed / 1e6:.0f} MB gzip) in {time.perf_counter() - started:.1f} s",
            flush=True,
        )
        started = time.perf_counter()
        reference = push(image, registry, harness.root)
        print(f"pushed {reference} with skopeo in {time.perf_counter() - started:.1f} s")
        sides = {kind: Side(kind) for kind in kinds}
        for round_no in range(args.repeat):
            shift = round_no % len(kinds)
            order = kinds[shift:] + kinds[:shift]
            for kind in order:
                one_pull(harness, kind, round_no, reference, image, sides[kind], args, registry)
        report([sides[k] for k in kinds], image, args)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit status."""
    parser = argparse.ArgumentParser(
        description=(__doc__ or "").split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--repeat", type=int, default=5, help="cold pulls per daemon")
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--size-mb", type=int, default=300, help="file data in the image (MB)")
    parser.add_argument("--only", choices=["dockerd", "declarund"], help="measure one daemon")
    parser.add_argument(
        "--baseline", type=Path, help="also measure the declarund of the checkout DIR"
    )
    parser.add_argument("--profile", type=Path, help="py-spy flame graphs of declarund into DIR")
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = parser.parse_args(argv)
    if args.repeat < 1 or args.layers < 1 or args.size_mb < 1:
        parser.error("--repeat, --layers and --size-mb must be positive")
    return run_benchmark(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
