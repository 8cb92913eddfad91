"""``declarun graph --format svg|png``: the dependency graph drawn by Graphviz's ``dot``."""

from __future__ import annotations

import shutil
import subprocess
from typing import Literal

import networkx as nx

from declarun.errors import DeclarunError
from declarun.plan.graph import export_graph

__all__ = ["draw_graph"]


def draw_graph(graph: nx.DiGraph, fmt: Literal["svg", "png"]) -> bytes:
    """The graph drawn as SVG or PNG by Graphviz's ``dot``."""
    dot = shutil.which("dot")
    if dot is None:
        raise DeclarunError(
            "drawing needs Graphviz's 'dot' (apt-get install graphviz); "
            "--format dot|mermaid|json print text without it"
        )
    result = subprocess.run(
        [dot, f"-T{fmt}"],
        input=export_graph(graph, "dot").encode(),
        capture_output=True,
        check=False,
        timeout=120,
    )
    if result.returncode != 0:
        message = result.stderr.decode(errors="replace").strip()
        raise DeclarunError(f"Graphviz failed to draw the graph: {message}")
    return result.stdout
