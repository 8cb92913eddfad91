"""Compose values read the way docker compose converts them after interpolation: booleans
from ``true``/``yes``/``on`` words, whole numbers from digits, commands as lists or text."""

from __future__ import annotations

from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text

__all__ = ["as_argv", "as_bool", "as_int", "as_strings", "as_text"]

_TRUE = frozenset({"y", "yes", "true", "on"})
_FALSE = frozenset({"n", "no", "false", "off"})


def as_bool(t: Translation, node: Node | None, cpath: DataPath) -> bool | None:
    """A boolean as Compose reads one (``true``, ``yes``, ``on``, ...); None when absent."""
    if node is None or node.value is None:
        return None
    if isinstance(node.value, bool):
        return node.value
    text = scalar_text(node.value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    t.problem(node.where, cpath, f"expected true or false, got {node.value!r}")
    return None


def as_int(t: Translation, node: Node | None, cpath: DataPath) -> int | None:
    """A whole number, written as one or in digits; None when absent."""
    if node is None or node.value is None:
        return None
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = scalar_text(value).strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if text.lstrip("-").isdigit():
        return int(text)
    t.problem(node.where, cpath, f"expected a whole number, got {value!r}")
    return None


def as_text(node: Node | None) -> str | None:
    """A scalar as text; None when absent."""
    return None if node is None or node.value is None else scalar_text(node.value)


def as_strings(node: Node | None) -> list[str]:
    """A list of scalars as texts (empty when absent)."""
    return [scalar_text(item.value) for item in node.elements()] if node is not None else []


def as_argv(node: Node | None) -> Any:
    """A command: a list of texts, or one text the stack language splits like a shell."""
    if node is None or node.value is None:
        return None
    if node.is_list:
        return as_strings(node)
    return scalar_text(node.value)
