"""Compose's variable interpolation: ``$VAR``, ``${VAR}``, ``${VAR:-default}``,
``${VAR-default}``, ``${VAR:?error}``, ``${VAR?error}``, ``${VAR:+alternative}``,
``${VAR+alternative}`` and ``$$`` for a literal ``$``.

As the Compose Specification says: defaults and alternatives may themselves hold
interpolations (``${A:-${B:-x}}``) and are only worked out when used; a ``$`` that starts no
variable (``$1``, ``$ ``) stays as written; an unset variable without a default becomes the
empty string with a warning; only values are interpolated, never keys. Interpolation works on
parsed values, one scalar at a time, so every problem points at the scalar that holds it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from declarun.compose.nodes import Node
from declarun.errors import Problem
from declarun.stack.load import DataPath, format_path

__all__ = ["InterpolationError", "Substitution", "interpolate_tree", "substitute"]

Lookup = Callable[[str], str | None]

_NAME = re.compile(r"[_A-Za-z][_A-Za-z0-9]*")
_OPERATORS = (":-", ":?", ":+", "-", "?", "+")
_MAX_NESTING = 16


class InterpolationError(ValueError):
    """A value cannot be interpolated; the message is for the user."""


@dataclass(frozen=True)
class Substitution:
    """The interpolated text, the variables it read and those that were unset without default."""

    text: str
    variables: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()


def _closing_brace(text: str, start: int) -> int | None:
    """The index of the ``}`` closing the ``${`` whose content starts at ``start``."""
    depth = 1
    index = start
    while index < len(text):
        if text.startswith("$$", index):
            index += 2
        elif text.startswith("${", index):
            depth += 1
            index += 2
        elif text[index] == "}":
            depth -= 1
            if depth == 0:
                return index
            index += 1
        else:
            index += 1
    return None


class _Substituter:
    def __init__(self, lookup: Lookup) -> None:
        self.lookup = lookup
        self.variables: list[str] = []
        self.missing: list[str] = []

    def value_of(self, name: str) -> str | None:
        if name not in self.variables:
            self.variables.append(name)
        return self.lookup(name)

    def run(self, text: str, depth: int = 0) -> str:
        if depth > _MAX_NESTING:
            raise InterpolationError("interpolation nested too deeply")
        out: list[str] = []
        index = 0
        while index < len(text):
            dollar = text.find("$", index)
            if dollar < 0:
                out.append(text[index:])
                break
            out.append(text[index:dollar])
            following = text[dollar + 1 : dollar + 2]
            if following == "$":
                out.append("$")
                index = dollar + 2
            elif following == "{":
                end = _closing_brace(text, dollar + 2)
                if end is None:
                    raise InterpolationError(
                        f"invalid interpolation {text[dollar:]!r}: no closing }}"
                    )
                out.append(self.braced(text[dollar + 2 : end], depth))
                index = end + 1
            else:
                name = _NAME.match(text, dollar + 1)
                if name is None:  # "$1", "$ " and the like are not variables
                    out.append("$")
                    index = dollar + 1
                else:
                    out.append(self.plain(name.group()))
                    index = name.end()
        return "".join(out)

    def plain(self, name: str) -> str:
        value = self.value_of(name)
        if value is None:
            self.missing.append(name)
            return ""
        return value

    def braced(self, content: str, depth: int) -> str:
        name_match = _NAME.match(content)
        if name_match is None:
            raise InterpolationError(
                f"invalid interpolation '${{{content}}}': expected a variable name"
            )
        name = name_match.group()
        rest = content[name_match.end() :]
        if not rest:
            return self.plain(name)
        operator = next((op for op in _OPERATORS if rest.startswith(op)), None)
        if operator is None:
            raise InterpolationError(
                f"invalid interpolation '${{{content}}}'; the forms are ${{VAR}}, ${{VAR:-default}}, "
                "${VAR-default}, ${VAR:?error}, ${VAR?error}, ${VAR:+alternative}, ${VAR+alternative}"
            )
        argument = rest[len(operator) :]
        value = self.value_of(name)
        present = value is not None
        filled = bool(value)
        if operator in (":-", "-"):
            if filled if operator == ":-" else present:
                return value or ""
            return self.run(argument, depth + 1)
        if operator in (":+", "+"):
            if filled if operator == ":+" else present:
                return self.run(argument, depth + 1)
            return ""
        if filled if operator == ":?" else present:
            return value or ""
        message = self.run(argument, depth + 1)
        raise InterpolationError(
            f"required variable {name} is missing a value" + (f": {message}" if message else "")
        )


def substitute(text: str, lookup: Lookup) -> Substitution:
    """Interpolate ``text``; ``lookup(name)`` is a variable's value or None when unset.

    Raises :class:`InterpolationError` for a malformed template or a missing required variable.
    """
    substituter = _Substituter(lookup)
    result = substituter.run(text)
    return Substitution(result, tuple(substituter.variables), tuple(substituter.missing))


def interpolate_tree(
    node: Node,
    lookup: Lookup,
    problems: list[Problem],
    warnings: list[Problem],
    path: DataPath = (),
) -> None:
    """Interpolate every string value under ``node`` in place (top-level ``x-`` fields, which
    only carry YAML anchors, are left alone). A value that changes keeps its text in
    ``Node.raw`` and the variables it read in ``Node.variables``."""
    if isinstance(node.value, dict):
        for key, child in node.value.items():
            if not path and key.startswith("x-"):
                continue
            interpolate_tree(child, lookup, problems, warnings, (*path, key))
    elif isinstance(node.value, list):
        for index, child in enumerate(node.value):
            interpolate_tree(child, lookup, problems, warnings, (*path, index))
    elif isinstance(node.value, str) and "$" in node.value:
        try:
            result = substitute(node.value, lookup)
        except InterpolationError as exc:
            problems.append(Problem(node.where, format_path(path), str(exc)))
            return
        for name in dict.fromkeys(result.missing):
            warnings.append(
                Problem(
                    node.where,
                    format_path(path),
                    f"variable {name} is not set; using an empty string (as docker compose does)",
                )
            )
        if result.text != node.value or result.variables:
            node.raw = node.value
            node.variables = result.variables
        node.value = result.text
