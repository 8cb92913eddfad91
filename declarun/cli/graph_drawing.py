"""``declarun graph --format svg|png``: the dependency graph drawn by Graphviz's ``dot``."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Literal

import networkx as nx

from declarun.errors import DeclarunError
from declarun.plan.graph import export_graph

__all__ = ["draw_graph"]


def draw_graph(graph: nx.DiGraph, fmt: Literal["svg", "png"], output: Path) -> None:
    """Draw the graph to an SVG or PNG file with Graphviz's ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise DeclarunError(
            "drawing needs Graphviz's 'dot' (apt-get install graphviz); "
            "--format dot|mermaid|json print text without it"
        )
    result = subprocess.run(
        [dot, f"-T{fmt}", "-o", str(output)],
        input=export_graph(graph, "dot").encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise DeclarunError(f"Graphviz failed to draw {output}: {message}")
