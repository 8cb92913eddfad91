"""Set aside the invalid parts of a stack so the later stages can still check the rest.

A compiler reports every error, not just the first stage's: when a container has a misspelt
field, the user should still hear that another container publishes a clashing port. So after the
JSON Schema finds problems, the offending fields (or, when a resource cannot stand without them,
whole resources) are removed from a copy of the data; that copy is validated again and, when it
passes, normalised and checked. Problems that only arise because something was removed (a
reference to a removed container) are filtered out by :func:`mentions_removed`.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable
from typing import Any

from declarun.errors import Problem
from declarun.stack.load import DataPath

__all__ = ["RESOURCE_SECTIONS", "Repair", "mentions_removed", "repair"]

RESOURCE_SECTIONS = ("images", "volumes", "networks", "containers")
_PLACEHOLDER_STACK_NAME = "invalid-stack-name"
_ROUNDS = 3

Repair = tuple[dict[str, Any], set[str]]


def _remove(data: dict[str, Any], path: DataPath, removed: set[str]) -> bool:
    """Remove what ``path`` points into; False when nothing sensible can be removed."""
    if not path:
        return False
    section = path[0]
    if section == "stack":
        data["stack"] = _PLACEHOLDER_STACK_NAME
        return True
    if section not in RESOURCE_SECTIONS:
        data.pop(str(section), None)
        return True
    resources = data.get(section)
    if len(path) == 1 or not isinstance(resources, dict):
        return False
    name = str(path[1])
    resource = resources.get(name)
    if len(path) == 2 or not isinstance(resource, dict):
        resources.pop(name, None)
        removed.add(name)
        return True
    resource.pop(str(path[2]), None)
    return True


def repair(
    data: dict[str, Any],
    first_paths: Iterable[DataPath],
    validate: Callable[[dict[str, Any]], list[DataPath]],
) -> Repair | None:
    """A copy of ``data`` without the parts at ``first_paths``, valid by ``validate``.

    Returns the repaired data and the names of the resources removed whole, or None when the
    damage is too central to go on (a whole section has the wrong shape).
    """
    repaired = copy.deepcopy(data)
    removed: set[str] = set()
    paths = list(first_paths)
    for _ in range(_ROUNDS):
        for path in paths:
            if not _remove(repaired, path, removed):
                return None
        paths = validate(repaired)
        if not paths:
            return repaired, removed
    return None


def mentions_removed(problem: Problem, removed: set[str]) -> bool:
    """True when ``problem`` is about a resource that was set aside (and so is not real)."""
    return any(f"'{name}'" in problem.message for name in removed)
