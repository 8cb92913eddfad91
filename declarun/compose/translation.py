"""The result of translating Compose into the stack language, and its bookkeeping.

A :class:`Translation` holds stack data (what ``declarun convert`` writes, and what the stack
language's normaliser turns into the model) together with, for every stack path written, where
in which Compose file it came from: its key and value locations and its Compose path (so a
problem the normaliser finds at ``containers.web.ports[0]`` is reported at
``compose.yaml:9:9: services.web.ports[0]``), the Compose text before interpolation (so
``convert`` can keep secrets as references), and notes for ``convert``'s comments.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from declarun.compose.nodes import Node
from declarun.errors import Problem, SourceLocation
from declarun.stack.load import DataPath, format_path

__all__ = ["Translation"]


def _boundary(text: str, prefix: str) -> bool:
    return text == prefix or (text.startswith(prefix) and text[len(prefix)] in ".[")


@dataclass
class Translation:
    """Stack data made from Compose, and where each part of it came from."""

    data: dict[str, Any] = field(default_factory=dict)
    key_locations: dict[DataPath, SourceLocation] = field(default_factory=dict)
    value_locations: dict[DataPath, SourceLocation] = field(default_factory=dict)
    origins: dict[str, str] = field(default_factory=dict)  # stack path -> Compose path (text)
    raw: dict[DataPath, Node] = field(default_factory=dict)  # values written with variables
    passthrough: dict[DataPath, str] = field(default_factory=dict)  # env values from a variable
    notes: dict[DataPath, list[str]] = field(default_factory=dict)
    warnings: list[Problem] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)  # services left out for their problems
    origin: SourceLocation = field(default_factory=lambda: SourceLocation("<compose>", 1, 1))

    def record(self, spath: DataPath, node: Node, cpath: DataPath) -> None:
        """Remember that stack path ``spath`` was written as ``node`` at Compose path ``cpath``."""
        self.key_locations[spath] = node.at
        self.value_locations[spath] = node.where
        self.origins[format_path(spath)] = format_path(cpath)
        if node.raw is not None:
            self.raw[spath] = node

    def alias(self, spath_text: str, cpath: DataPath) -> None:
        """Report problems about ``spath_text`` (a model path such as ``containers.web.
        mounts[2]``, which no stack file spells) at Compose path ``cpath``."""
        self.origins[spath_text] = format_path(cpath)

    def note(self, spath: DataPath, text: str) -> None:
        """A comment ``convert`` writes above ``spath``."""
        self.notes.setdefault(spath, []).append(text)

    def warn(self, where: SourceLocation, cpath: DataPath, message: str) -> None:
        """A warning: something in the file that declarun does not do as docker compose does."""
        self.warnings.append(Problem(where, format_path(cpath), message))

    def problem(
        self, where: SourceLocation, cpath: DataPath, message: str, hint: str | None = None
    ) -> None:
        """An error in the Compose file's own terms."""
        self.problems.append(Problem(where, format_path(cpath), message, hint))

    def _find(self, table: dict[DataPath, SourceLocation], spath: DataPath) -> SourceLocation:
        probe = tuple(spath)
        while probe:
            found = table.get(probe) or self.key_locations.get(probe)
            if found is not None:
                return found
            probe = probe[:-1]
        return self.origin

    def locate(self, spath: DataPath) -> SourceLocation:
        """Where the key of stack path ``spath`` came from (or its nearest ancestor's)."""
        return self._find(self.key_locations, spath)

    def locate_value(self, spath: DataPath) -> SourceLocation:
        """Where the value of stack path ``spath`` came from (or its nearest ancestor's)."""
        return self._find(self.value_locations, spath)

    def compose_path(self, stack_path: str) -> str:
        """The Compose path of a problem's stack path: its longest recorded prefix, replaced."""
        best = ""
        for prefix in self.origins:
            if len(prefix) > len(best) and _boundary(stack_path, prefix):
                best = prefix
        if not best:
            return stack_path
        return self.origins[best] + stack_path[len(best) :]

    def in_compose_terms(self, problem: Problem) -> Problem:
        """A problem the stack language found in the translated data, told in Compose's terms."""
        if not problem.path:
            return problem
        return Problem(
            problem.location, self.compose_path(problem.path), problem.message, problem.hint
        )
