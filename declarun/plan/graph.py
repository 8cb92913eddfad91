"""The stack's dependency graph: what must exist before what, and its text forms.

One node per image, volume, network and container replica; an edge ``a -> b`` means *a needs
b* (a container needs its image, volumes, networks and the containers it depends on; a built
image needs the stack images its Dockerfile pulls, matched by reference as Docker normalises
it: ``FROM shop-base`` names the image tagged ``shop-base:latest``). Creation walks the graph
in reverse topological order, removal in topological order.

Pure: the base images of builds come in as data (read from the Dockerfiles by the observer,
``declarun.observe.dockerfiles``), so the plan and ``declarun graph`` build the same graph.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from declarun.errors import DeclarunError
from declarun.plan.digraph import DiGraph
from declarun.stack.model import Image, Stack
from declarun.stack.naming import image_for_reference, replica_names

__all__ = ["GraphFormat", "build_graph", "export_graph", "node_id"]

GraphFormat = Literal["dot", "mermaid", "json", "svg", "png"]
NodeKind = Literal["image", "volume", "network", "container"]


def node_id(kind: NodeKind, name: str) -> str:
    """The graph node of a resource: ``container:web-1``, ``image:busybox``."""
    return f"{kind}:{name}"


def _add_image(graph: DiGraph, name: str, image: Image) -> None:
    graph.add_node(node_id("image", name), kind="image", name=name, ref=image.ref or "")


def build_graph(stack: Stack, base_images: Mapping[str, Sequence[str]] | None = None) -> DiGraph:
    """The dependency graph of ``stack`` (which must have passed :func:`check_stack`).

    ``base_images`` maps a built image's name to the references its Dockerfile starts FROM
    (:attr:`ObservedState.base_images`); without it, builds have no base-image edges.
    """
    bases = base_images or {}
    graph = DiGraph(stack=stack.name)
    for name, image in stack.images.items():
        _add_image(graph, name, image)
    for name in stack.volumes:
        graph.add_node(node_id("volume", name), kind="volume", name=name)
    for name in stack.networks:
        graph.add_node(node_id("network", name), kind="network", name=name)
    for name, image in stack.images.items():
        if image.build is None:
            continue
        for base in bases.get(name, ()):
            base_name = image_for_reference(stack, base)
            if base_name is not None and base_name != name:
                graph.add_edge(node_id("image", name), node_id("image", base_name), kind="base")
    for name, container in stack.containers.items():
        for index, replica in enumerate(replica_names(container), start=1):
            node = node_id("container", replica)
            graph.add_node(
                node,
                kind="container",
                name=replica,
                container=name,
                replica=index,
                run=container.run,
            )
            graph.add_edge(node, node_id("image", container.image), kind="image")
            for mount in container.mounts:
                if mount.type == "volume" and mount.source is not None:
                    graph.add_edge(node, node_id("volume", mount.source), kind="mount")
            for attachment in container.networks:
                graph.add_edge(node, node_id("network", attachment.network), kind="network")
    for container in stack.containers.values():
        for dependency in container.depends_on:
            target = stack.containers.get(dependency.container)
            if target is None:
                continue
            for replica in replica_names(container):
                for target_replica in replica_names(target):
                    graph.add_edge(
                        node_id("container", replica),
                        node_id("container", target_replica),
                        kind="depends_on",
                        condition=dependency.condition,
                    )
    return graph


def _label(graph: DiGraph, node: str) -> str:
    attrs = graph.nodes[node]
    return f"{attrs['kind']}: {attrs['name']}"


def _dot(graph: DiGraph) -> str:
    shapes = {"image": "box3d", "volume": "cylinder", "network": "hexagon", "container": "box"}
    lines = [f"digraph {json.dumps(graph.graph.get('stack', 'stack'))} {{", "  rankdir=LR;"]
    for node in sorted(graph.nodes):
        attrs = graph.nodes[node]
        lines.append(
            f"  {json.dumps(node)} [label={json.dumps(_label(graph, node))}, "
            f"shape={shapes[attrs['kind']]}];"
        )
    for source, target in sorted(graph.edges):
        edge = graph.edges[source, target]
        label = edge.get("condition") or edge["kind"]
        lines.append(f"  {json.dumps(source)} -> {json.dumps(target)} [label={json.dumps(label)}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_id(node: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]", "_", node)


def _mermaid(graph: DiGraph) -> str:
    shapes = {
        "image": ("[[", "]]"),
        "volume": ("[(", ")]"),
        "network": ("{{", "}}"),
        "container": ("[", "]"),
    }
    lines = ["flowchart LR"]
    for node in sorted(graph.nodes):
        opening, closing = shapes[graph.nodes[node]["kind"]]
        text = _label(graph, node).replace('"', "'")
        lines.append(f'  {_mermaid_id(node)}{opening}"{text}"{closing}')
    for source, target in sorted(graph.edges):
        edge = graph.edges[source, target]
        label = edge.get("condition") or edge["kind"]
        lines.append(f"  {_mermaid_id(source)} -->|{label}| {_mermaid_id(target)}")
    return "\n".join(lines) + "\n"


def _json(graph: DiGraph) -> str:
    document: dict[str, Any] = {
        "stack": graph.graph.get("stack"),
        "nodes": [{"id": node, **graph.nodes[node]} for node in sorted(graph.nodes)],
        "edges": [
            {"from": source, "to": target, **graph.edges[source, target]}
            for source, target in sorted(graph.edges)
        ],
    }
    return json.dumps(document, indent=2) + "\n"


def export_graph(graph: DiGraph, fmt: GraphFormat) -> str:
    """The graph as text: Graphviz ``dot``, ``mermaid`` or ``json``."""
    if fmt == "dot":
        return _dot(graph)
    if fmt == "mermaid":
        return _mermaid(graph)
    if fmt == "json":
        return _json(graph)
    raise DeclarunError(f"'{fmt}' is drawn, not printed: see declarun.cli.graph_drawing")
