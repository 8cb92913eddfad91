"""The plan's small directed graph agrees with networkx on every call the plan makes."""

from __future__ import annotations

import networkx as nx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from declarun.plan.digraph import DiGraph, GraphCycleError, lexicographical_topological_sort

NODES = st.sampled_from([f"n{i}" for i in range(8)])
CALLS = st.lists(
    st.one_of(
        st.tuples(st.just("node"), NODES, NODES, st.integers(0, 3)),
        st.tuples(st.just("edge"), NODES, NODES, st.integers(0, 3)),
    ),
    max_size=30,
)


def _both(calls: list[tuple[str, str, str, int]]) -> tuple[DiGraph, nx.DiGraph]:
    ours, theirs = DiGraph(stack="s"), nx.DiGraph(stack="s")
    for call, first, second, value in calls:
        if call == "node":
            ours.add_node(first, kind=value)
            theirs.add_node(first, kind=value)
        else:
            ours.add_edge(first, second, condition=value or None)
            theirs.add_edge(first, second, condition=value or None)
    return ours, theirs


@settings(max_examples=300, deadline=None)
@given(CALLS)
def test_nodes_edges_and_attributes_agree(calls: list[tuple[str, str, str, int]]) -> None:
    ours, theirs = _both(calls)
    assert ours.graph == theirs.graph
    assert list(ours.nodes) == list(theirs.nodes)
    assert [ours.nodes[n] for n in ours.nodes] == [theirs.nodes[n] for n in theirs.nodes]
    assert list(ours.edges) == list(theirs.edges)
    assert [ours.edges[e] for e in ours.edges] == [theirs.edges[e] for e in theirs.edges]
    assert list(ours.edges(data="condition")) == list(theirs.edges(data="condition"))
    for node in theirs.nodes:
        assert node in ours
        assert list(ours.successors(node)) == list(theirs.successors(node))
        for other in theirs.nodes:
            assert ours.has_edge(node, other) == theirs.has_edge(node, other)


@settings(max_examples=300, deadline=None)
@given(CALLS, st.permutations(range(8)))
def test_topological_order_agrees(calls: list[tuple[str, str, str, int]], ranks: list[int]) -> None:
    ours, theirs = _both([c for c in calls if c[0] == "node" or c[1] < c[2]])  # acyclic

    def key(node: str) -> tuple[int, str]:
        return ranks[int(node[1:])], node

    assert lexicographical_topological_sort(ours, key) == list(
        nx.lexicographical_topological_sort(theirs, key=key)
    )


def test_a_cycle_has_no_order() -> None:
    graph = DiGraph()
    graph.add_edge("a", "b")
    graph.add_edge("b", "a")
    with pytest.raises(GraphCycleError):
        lexicographical_topological_sort(graph, key=lambda n: n)
