"""What translating one service needs to know about the project's other services."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from declarun.compose.nodes import Node

__all__ = ["Lookup", "ServiceContext"]

Lookup = Callable[[str], str | None]


@dataclass
class ServiceContext:
    """What translating one service needs to know about the others."""

    root: Node
    lookup: Lookup
    services: frozenset[str]  # every service of the project
    active: frozenset[str]  # those the active profiles select
    completed: frozenset[str]  # those others wait for with service_completed_successfully
    literal_refs: frozenset[str]  # image references services use as they stand
    images: dict[str, Any] = field(default_factory=dict)  # declared images, filled here
