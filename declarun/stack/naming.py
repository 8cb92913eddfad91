"""Names of the things a stack declares, in one place so every stage agrees on them."""

from __future__ import annotations

from declarun.stack.model import Container

__all__ = ["replica_names"]


def replica_names(container: Container) -> list[str]:
    """The names of a container's replicas: ``web`` alone, or ``web-1`` .. ``web-N``."""
    if container.replicas == 1:
        return [container.name]
    return [f"{container.name}-{index}" for index in range(1, container.replicas + 1)]
