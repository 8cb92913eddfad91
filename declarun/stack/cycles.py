"""A directed graph that imports networkx only when it holds a cycle to report.

The semantic checks look for ``depends_on`` loops and builds that start FROM each other in a
loop; a valid stack has none, and importing networkx costs more than all of ``declarun
validate`` otherwise does (issue 16: start-up time). The standard library's
:mod:`graphlib` says whether there is a cycle; only then is the same graph rebuilt in
networkx, with the same calls in the same order, so the cycles (and their order) are exactly
what ``networkx.simple_cycles`` gives.
"""

from __future__ import annotations

import graphlib
from collections.abc import Iterator
from typing import Literal

__all__ = ["CycleFinder"]


class CycleFinder:
    """Record ``add_node`` / ``add_edge`` as on a ``networkx.DiGraph``; list simple cycles."""

    def __init__(self) -> None:
        self._calls: list[tuple[Literal["node", "edge"], str, str]] = []
        self._sorter: graphlib.TopologicalSorter[str] = graphlib.TopologicalSorter()

    def add_node(self, node: str) -> None:
        """Add ``node`` (as ``DiGraph.add_node``)."""
        self._calls.append(("node", node, node))
        self._sorter.add(node)

    def add_edge(self, source: str, target: str) -> None:
        """Add the edge ``source -> target`` (as ``DiGraph.add_edge``)."""
        self._calls.append(("edge", source, target))
        self._sorter.add(source, target)

    def has_cycle(self) -> bool:
        """Whether any cycle exists (self-loops included)."""
        try:
            self._sorter.prepare()
        except graphlib.CycleError:
            return True
        return False

    def simple_cycles(self) -> Iterator[list[str]]:
        """``networkx.simple_cycles`` of the recorded graph; nothing imported when acyclic."""
        if not self.has_cycle():
            return iter(())
        import networkx as nx

        graph = nx.DiGraph()
        for call, first, second in self._calls:
            if call == "node":
                graph.add_node(first)
            else:
                graph.add_edge(first, second)
        cycles: Iterator[list[str]] = nx.simple_cycles(graph)
        return cycles
