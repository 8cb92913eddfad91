"""Named volumes on a Swarm live on each node: removing a stack's, node by node.

Swarm makes a service's named volumes on whichever node a task lands (from the mount's
volume options, which carry declarun's labels); the manager can neither list nor remove
them. ``destroy --volumes`` therefore asks each node's own engine, reached as the CLI
decides (the node label ``dev.declarun.engine-host``): every volume labelled as the stack's
goes, except those marked ``keep`` (in the stack, or by their label) — after the stopped
task containers the removed services left there, which would hold them.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from declarun.engine.port import Engine
from declarun.errdefs import ErrorKind, NotFound
from declarun.plan.identity import LABEL_KEEP, LABEL_RESOURCE, LABEL_STACK, parse_resource
from declarun.stack.model import Stack

__all__ = ["remove_node_volumes"]

_RETRY_FOR = 30.0  # a removed service's containers may hold a volume for a moment


def _remove(engine: Engine, name: str) -> str | None:
    deadline = time.monotonic() + _RETRY_FOR
    while True:
        try:
            engine.remove_volume(name)
            return None
        except NotFound:
            return None
        except ErrorKind as exc:
            if time.monotonic() > deadline:
                return str(exc)
            time.sleep(0.5)


def _remove_leftovers(node: str, engine: Engine, stack: str) -> list[str]:
    """Remove the stopped task containers the stack's removed services left on a node.

    Swarm leaves a completed job's container behind when its service is removed, and it
    holds the volumes it mounted; with every service of the stack gone, whatever container
    still carries the stack's mark is such a leftover.
    """
    lines = []
    try:
        found = engine.list_containers()
    except ErrorKind as exc:
        return [f"{node}: cannot list containers: {exc}"]
    for container in found:
        if container.labels.get(LABEL_STACK) != stack or container.state == "running":
            continue
        try:
            engine.remove_container(container.id, volumes=True)
        except NotFound:
            continue
        except ErrorKind as exc:
            lines.append(f"{node}: cannot remove the stopped task {container.name}: {exc}")
    return lines


def remove_node_volumes(nodes: Iterable[tuple[str, Engine]], stack: Stack) -> list[str]:
    """Remove ``stack``'s volumes on each (node name, its engine); returns one line per
    volume removed, kept or failed, for the person who asked."""
    keep = {v.name for v in stack.volumes.values() if v.keep}
    lines = []
    for node, engine in nodes:
        lines.extend(_remove_leftovers(node, engine, stack.name))
        try:
            found = engine.list_volumes()
        except ErrorKind as exc:
            lines.append(f"{node}: cannot list volumes: {exc}")
            continue
        for volume in found:
            if volume.labels.get(LABEL_STACK) != stack.name:
                continue
            resource = parse_resource(volume.labels.get(LABEL_RESOURCE))
            name = resource[1] if resource else volume.name
            if name in keep or volume.labels.get(LABEL_KEEP) == "true":
                lines.append(f"{node}: kept volume {volume.name} (keep: true)")
                continue
            failed = _remove(engine, volume.name)
            if failed is None:
                lines.append(f"{node}: removed volume {volume.name}")
            else:
                lines.append(f"{node}: cannot remove volume {volume.name}: {failed}")
    return lines
