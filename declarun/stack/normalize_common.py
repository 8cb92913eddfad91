"""Shared machinery for the normalisers: located problem collection and small value coercions.

The normalisers run on data that already passed the JSON schema, so shapes can be trusted, but
they still never raise on odd-but-valid values: each problem is recorded with its location and
the walk goes on, so the user sees every problem at once.
"""

from __future__ import annotations

import os.path
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from declarun.errors import Problem, SourceLocation
from declarun.frozen import FrozenDict
from declarun.stack.units import parse_duration, parse_size

__all__ = [
    "FieldPath",
    "Locate",
    "Normalizer",
    "format_path",
    "scalar_text",
]

FieldPath = tuple[str | int, ...]
Locate = Callable[[FieldPath], SourceLocation]


def format_path(path: FieldPath) -> str:
    """``("containers", "web", "ports", 0)`` -> ``"containers.web.ports[0]"``."""
    text = ""
    for part in path:
        if isinstance(part, int):
            text += f"[{part}]"
        else:
            text += f".{part}" if text else part
    return text


def scalar_text(value: Any) -> str:
    """The text of a scalar as an environment variable or label would hold it.

    Booleans render as ``true``/``false`` (YAML's spelling, not Python's), null as empty.
    """
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value)) if abs(value) < 1e16 else repr(value)
    return str(value)


@dataclass
class Normalizer:
    """Context of one normalisation run: where things are, and what went wrong so far."""

    locate_raw: Locate
    base_dir: Path
    #: Where values (rather than keys) are; problems point there when it is given.
    locate_value_raw: Locate | None = None
    problems: list[Problem] = field(default_factory=list)

    def locate(self, path: FieldPath, *, value: bool = False) -> SourceLocation:
        """The location of ``path`` (its key, or its value when ``value`` and known), or of its
        nearest ancestor the locator knows."""
        locator = self.locate_value_raw if value and self.locate_value_raw else self.locate_raw
        while True:
            try:
                return locator(path)
            except (LookupError, ValueError, TypeError):
                if not path:
                    return SourceLocation("<stack>", 1, 1)
                path = path[:-1]

    def problem(
        self,
        path: FieldPath,
        message: str,
        *,
        hint: str | None = None,
        location: SourceLocation | None = None,
    ) -> None:
        """Record a problem at ``path`` (located there unless ``location`` is given)."""
        where = location if location is not None else self.locate(path, value=True)
        self.problems.append(Problem(where, format_path(path), message, hint))

    def duration(self, value: Any, path: FieldPath, default: timedelta) -> timedelta:
        """Parse a duration, recording a problem (and returning ``default``) when invalid."""
        if value is None:
            return default
        try:
            return parse_duration(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return default

    def size(self, value: Any, path: FieldPath) -> int | None:
        """Parse a size in bytes, recording a problem (and returning None) when invalid."""
        if value is None:
            return None
        try:
            return parse_size(value)
        except ValueError as exc:
            self.problem(path, str(exc))
            return None

    def string_map(self, value: Any, path: FieldPath, what: str) -> FrozenDict[str, str]:
        """A map of text values, written as a mapping or as a list of ``key=value`` items."""
        result: dict[str, str] = {}
        if isinstance(value, Mapping):
            for key, item in value.items():
                result[str(key)] = scalar_text(item)
        elif isinstance(value, list):
            for index, item in enumerate(value):
                text = scalar_text(item)
                key, sep, rest = text.partition("=")
                if not sep or not key:
                    self.problem(
                        (*path, index),
                        f"expected {what} as key=value, got {text!r}",
                        hint=f"write '{key or 'key'}=' for an empty value",
                    )
                    continue
                result[key] = rest
        return FrozenDict(result)

    def resolve_path(self, text: str) -> Path:
        """A host path as written: ``~`` is the home directory, relative is to the stack's dir.

        The result is absolute and lexically normalised; the file system is not consulted.
        """
        path = Path(text).expanduser()
        if not path.is_absolute():
            path = self.base_dir / path
        return Path(os.path.normpath(path))
