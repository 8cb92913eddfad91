"""Load, validate and graph a generated stack of 2,000 containers (issue 2's benchmark).

Run: .venv/bin/python benchmarks/stack_load.py [--containers 2000] [--repeat 5] [--profile]
Prints the median wall time of each stage over the repeats. Target: the total under 1 s.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml

from declarun.plan.graph import build_graph
from declarun.stack.pipeline import LoadOptions, load_stack


def generate(containers: int, images: int, volumes: int, networks: int) -> dict[str, Any]:
    """A stack shaped like a big real one: templated refs, ports, mounts, deps, healthchecks."""
    stack: dict[str, Any] = {
        "stack": "bench",
        "vars": {"registry": "127.0.0.1:5000", "tag": "1.36"},
        "images": {
            f"img{i}": {"ref": f"{{{{ vars.registry }}}}/team/app{i}:{{{{ vars.tag }}}}"}
            for i in range(images)
        },
        "volumes": {f"vol{i}": {"labels": {"tier": "data"}} for i in range(volumes)},
        "networks": {f"net{i}": {"labels": {"zone": str(i)}} for i in range(networks)},
        "containers": {},
    }
    for i in range(containers):
        spec: dict[str, Any] = {
            "image": f"img{i % images}",
            "command": ["sh", "-c", f"echo {i}; sleep 3600"],
            "env": {"INDEX": str(i), "MODE": "{{ vars.tag }}"},
            "ports": [f"{20000 + i}:80"],
            "volumes": [f"vol{i % volumes}:/data{i % 3}:ro"],
            "networks": {f"net{i % networks}": {"aliases": [f"svc{i}"]}},
            "healthcheck": {"test": "true", "interval": "5s", "retries": 3},
            "restart": "unless-stopped",
            "resources": {"memory": "64m", "cpus": 0.25},
            "labels": {"app": f"app{i}"},
        }
        if i >= 10:
            spec["depends_on"] = {f"c{i - 10}": {"condition": "healthy"}}
        stack["containers"][f"c{i}"] = spec
    return stack


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--containers", type=int, default=2000)
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--volumes", type=int, default=50)
    parser.add_argument("--networks", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--profile", action="store_true", help="print the top functions")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "stack.yaml"
        path.write_text(
            yaml.safe_dump(
                generate(args.containers, args.images, args.volumes, args.networks), sort_keys=False
            )
        )
        size = path.stat().st_size
        loads: list[float] = []
        graphs: list[float] = []
        for _ in range(args.repeat):
            start = time.perf_counter()
            stack = load_stack(path, LoadOptions(environ={}))
            middle = time.perf_counter()
            graph = build_graph(stack)
            end = time.perf_counter()
            loads.append(middle - start)
            graphs.append(end - middle)
        print(
            f"stack: {args.containers} containers, {args.images} images, {args.volumes} volumes, "
            f"{args.networks} networks; {size / 1024:.0f} KiB of YAML; "
            f"graph {graph.number_of_nodes()} nodes, {graph.number_of_edges()} edges"
        )
        print(f"load+template+validate+normalise+check: median {statistics.median(loads):.3f} s")
        print(f"graph:                                  median {statistics.median(graphs):.3f} s")
        total = statistics.median([a + b for a, b in zip(loads, graphs, strict=True)])
        print(f"total:                                  median {total:.3f} s (target < 1 s)")
        if args.profile:
            profiler = cProfile.Profile()
            profiler.enable()
            build_graph(load_stack(path, LoadOptions(environ={})))
            profiler.disable()
            pstats.Stats(profiler).sort_stats("cumulative").print_stats(25)


if __name__ == "__main__":
    main()
