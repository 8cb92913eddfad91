"""A small directed graph with node and edge attributes: what the plan needs of networkx's.

The dependency graph (:mod:`declarun.plan.graph`) and the order of a plan's changes
(:mod:`declarun.plan.drafts`) used ``networkx``, whose import costs more than observing and
planning a small stack (issue 16: a no-op ``plan``/``apply`` should feel instant). This
keeps networkx's semantics for the calls made here: ``add_node`` and ``add_edge`` merge
attributes, ``add_edge`` adds missing nodes, nodes iterate in insertion order and edges by
source in that order, each source's targets in insertion order.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable, Iterator
from typing import Any

__all__ = ["DiGraph", "GraphCycleError", "lexicographical_topological_sort"]


class _NodeView:
    def __init__(self, graph: DiGraph) -> None:
        self._graph = graph

    def __iter__(self) -> Iterator[str]:
        return iter(self._graph._nodes)

    def __len__(self) -> int:
        return len(self._graph._nodes)

    def __contains__(self, node: object) -> bool:
        return node in self._graph._nodes

    def __getitem__(self, node: str) -> dict[str, Any]:
        return self._graph._nodes[node]


class _EdgeView:
    def __init__(self, graph: DiGraph) -> None:
        self._graph = graph

    def __iter__(self) -> Iterator[tuple[str, str]]:
        for source, targets in self._graph._successors.items():
            for target in targets:
                yield source, target

    def __len__(self) -> int:
        return sum(len(targets) for targets in self._graph._successors.values())

    def __contains__(self, edge: object) -> bool:
        if not isinstance(edge, tuple) or len(edge) != 2:
            return False
        return edge[1] in self._graph._successors.get(edge[0], {})

    def __getitem__(self, edge: tuple[str, str]) -> dict[str, Any]:
        return self._graph._successors[edge[0]][edge[1]]

    def __call__(self, data: str) -> Iterator[tuple[str, str, Any]]:
        """``(source, target, attribute)`` of every edge (networkx's ``edges(data=key)``)."""
        for source, targets in self._graph._successors.items():
            for target, attributes in targets.items():
                yield source, target, attributes.get(data)


class DiGraph:
    """A directed graph of string nodes; ``graph`` holds the graph's own attributes."""

    def __init__(self, **attributes: Any) -> None:
        self.graph: dict[str, Any] = dict(attributes)
        self._nodes: dict[str, dict[str, Any]] = {}
        self._successors: dict[str, dict[str, dict[str, Any]]] = {}
        self._in_degree: dict[str, int] = {}

    @property
    def nodes(self) -> _NodeView:
        """The nodes: iterable, ``in``, ``nodes[n]`` is a node's attributes."""
        return _NodeView(self)

    @property
    def edges(self) -> _EdgeView:
        """The edges: ``(source, target)`` pairs, ``edges[s, t]`` an edge's attributes,
        ``edges(data="key")`` triples."""
        return _EdgeView(self)

    def __contains__(self, node: object) -> bool:
        return node in self._nodes

    def add_node(self, node: str, **attributes: Any) -> None:
        """Add ``node`` or update its attributes."""
        if node not in self._nodes:
            self._nodes[node] = {}
            self._successors[node] = {}
            self._in_degree[node] = 0
        self._nodes[node].update(attributes)

    def add_edge(self, source: str, target: str, **attributes: Any) -> None:
        """Add the edge ``source -> target`` (and missing nodes), or update its attributes."""
        self.add_node(source)
        self.add_node(target)
        targets = self._successors[source]
        if target not in targets:
            targets[target] = {}
            self._in_degree[target] += 1
        targets[target].update(attributes)

    def add_nodes_from(self, nodes: Iterable[str]) -> None:
        """Add each of ``nodes``."""
        for node in nodes:
            self.add_node(node)

    def add_edges_from(self, edges: Iterable[tuple[str, str]]) -> None:
        """Add each ``(source, target)`` edge."""
        for source, target in edges:
            self.add_edge(source, target)

    def has_edge(self, source: str, target: str) -> bool:
        """Whether the edge ``source -> target`` exists."""
        return target in self._successors.get(source, {})

    def successors(self, node: str) -> Iterator[str]:
        """The targets of ``node``'s edges."""
        return iter(self._successors[node])


class GraphCycleError(ValueError):
    """The graph to sort has a cycle."""


def lexicographical_topological_sort(graph: DiGraph, key: Callable[[str], Any]) -> list[str]:
    """Sources before targets; among the nodes ready at each step, the smallest ``key``
    first (``key`` must tell every two nodes apart). Raises :class:`GraphCycleError` on a
    cycle. The same order as networkx's function of that name."""
    remaining = dict(graph._in_degree)
    ready = [(key(node), node) for node, degree in remaining.items() if degree == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node = heapq.heappop(ready)
        order.append(node)
        for target in graph._successors[node]:
            remaining[target] -= 1
            if remaining[target] == 0:
                heapq.heappush(ready, (key(target), target))
    if len(order) != len(graph._nodes):
        raise GraphCycleError("the graph has a cycle: no topological order")
    return order
