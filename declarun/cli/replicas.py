"""Which of a stack's container replicas a command names (``logs``, ``exec``, ``start``,
``stop``, ``restart``, ``pull``)."""

from __future__ import annotations

from collections.abc import Sequence

from declarun.errors import EngineError
from declarun.stack.model import Stack
from declarun.stack.naming import replica_names

__all__ = ["chosen_replicas"]


def chosen_replicas(stack: Stack, wanted: Sequence[str]) -> list[str]:
    """The replica names ``wanted`` names (a container stands for all its replicas; none
    named: every container); an unknown name is an error listing the known ones."""
    everything: dict[str, list[str]] = {}
    for container in stack.containers.values():
        replicas = replica_names(container)
        everything[container.name] = replicas
        for replica in replicas:
            everything.setdefault(replica, [replica])
    if not wanted:
        return [r for c in stack.containers.values() for r in replica_names(c)]
    unknown = [name for name in wanted if name not in everything]
    if unknown:
        known = ", ".join(everything) or "none"
        raise EngineError(f"no container {', '.join(unknown)} in the stack (it has: {known})")
    return list(dict.fromkeys(r for name in wanted for r in everything[name]))
