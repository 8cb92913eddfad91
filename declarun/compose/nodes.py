"""A Compose file as a located tree: every value knows where it was written.

Compose files mean something only once they are interpolated, extended and merged with their
overrides, so a value's position cannot be looked up by its path in one file afterwards.
Instead each value carries its own location (and, when interpolation changed it, the text it
was written as) through every stage. :func:`from_document` builds the tree from the stack
language's positioned YAML loader; :meth:`Node.plain` drops the locations again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import Any

from declarun.errors import SourceLocation
from declarun.stack.load import DataPath, LoadedDocument

__all__ = ["Node", "from_document", "node_from_plain"]


@dataclass(slots=True)
class Node:
    """One value of a Compose file: a mapping of nodes, a list of nodes, or a scalar."""

    value: Any  # dict[str, Node] | list[Node] | str | int | float | bool | None
    where: SourceLocation  # where the value was written
    key_where: SourceLocation | None = None  # where its key was written (mapping entries)
    raw: str | None = None  # the text before interpolation, when interpolation changed it
    variables: tuple[str, ...] = field(default=())  # the variables interpolation read

    @property
    def at(self) -> SourceLocation:
        """The place to point at for this entry: its key when it has one, else its value."""
        return self.key_where or self.where

    @property
    def is_map(self) -> bool:
        """True for a mapping."""
        return isinstance(self.value, dict)

    @property
    def is_list(self) -> bool:
        """True for a sequence."""
        return isinstance(self.value, list)

    def get(self, key: str) -> Node | None:
        """The entry ``key`` of a mapping (None when absent or when this is no mapping)."""
        if isinstance(self.value, dict):
            found: Node | None = self.value.get(key)
            return found
        return None

    def items(self) -> Iterator[tuple[str, Node]]:
        """The entries of a mapping, in file order (nothing for other values)."""
        if isinstance(self.value, dict):
            yield from self.value.items()

    def elements(self) -> list[Node]:
        """The items of a sequence (empty for other values)."""
        return list(self.value) if isinstance(self.value, list) else []

    def plain(self) -> Any:
        """The value without locations: plain dicts, lists and scalars."""
        if isinstance(self.value, dict):
            return {key: child.plain() for key, child in self.value.items()}
        if isinstance(self.value, list):
            return [child.plain() for child in self.value]
        return self.value

    def copy(self) -> Node:
        """A deep copy (merging builds new trees and must not change its inputs)."""
        if isinstance(self.value, dict):
            return replace(self, value={k: v.copy() for k, v in self.value.items()})
        if isinstance(self.value, list):
            return replace(self, value=[v.copy() for v in self.value])
        return replace(self)


def from_document(document: LoadedDocument) -> Node:
    """The located tree of a loaded YAML document (aliases become independent copies)."""

    def build(value: Any, path: DataPath, key_where: SourceLocation | None) -> Node:
        where = document.locate_value(path)
        if isinstance(value, dict):
            children = {
                str(key): build(child, (*path, key), document.locate((*path, key)))
                for key, child in value.items()
            }
            return Node(children, where, key_where)
        if isinstance(value, list):
            items = [build(child, (*path, index), None) for index, child in enumerate(value)]
            return Node(items, where, key_where)
        return Node(value, where, key_where)

    return build(document.data, (), None)


def node_from_plain(value: Any, where: SourceLocation) -> Node:
    """A tree for plain data made by declarun itself, every part located at ``where``."""
    if isinstance(value, dict):
        return Node({str(k): node_from_plain(v, where) for k, v in value.items()}, where, where)
    if isinstance(value, list):
        return Node([node_from_plain(v, where) for v in value], where)
    return Node(value, where)
