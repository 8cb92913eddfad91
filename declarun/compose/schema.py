"""Validate a Compose file against the Compose Specification's own JSON Schema.

The schema is vendored as ``schema/compose-spec.json`` (Apache-2.0, from
github.com/compose-spec/compose-spec; see ``schema/README.md``). Its failures are explained
like the stack language's (``unknown field 'depend_on'; did you mean 'depends_on'?``) by
:func:`declarun.stack.schema.explain_errors`, and located in the file that was written.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from declarun.compose.nodes import Node
from declarun.errors import Problem, SourceLocation
from declarun.stack.load import DataPath
from declarun.stack.schema import explain_errors

if TYPE_CHECKING:
    from jsonschema import Draft7Validator

__all__ = ["COMPOSE_SCHEMA_PATH", "compose_schema", "schema_field_paths", "validate_compose"]

COMPOSE_SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "compose-spec.json"


@cache
def compose_schema() -> dict[str, Any]:
    """The Compose Specification's JSON Schema, loaded once."""
    with COMPOSE_SCHEMA_PATH.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator() -> Draft7Validator:
    from jsonschema import Draft7Validator

    return Draft7Validator(compose_schema())


def _find(root: Node, path: DataPath) -> Node | None:
    node: Node | None = root
    for part in path:
        if node is None:
            return None
        if isinstance(part, int):
            items = node.elements()
            node = items[part] if 0 <= part < len(items) else None
        else:
            node = node.get(part)
    return node


def locate_in(root: Node, path: DataPath, *, key: bool) -> SourceLocation:
    """Where ``path`` was written in ``root``'s file: its key (or value), else an ancestor's."""
    probe = tuple(path)
    while True:
        found = _find(root, probe)
        if found is not None:
            return found.at if key else found.where
        if not probe:
            return root.where
        probe = probe[:-1]


def validate_compose(root: Node) -> list[tuple[DataPath, Problem]]:
    """Every schema problem of one (interpolated) Compose file, with its data path."""
    validator = _validator()
    data = root.plain()
    if validator.is_valid(data):
        return []
    return explain_errors(
        validator.iter_errors(data),
        lambda path: locate_in(root, path, key=True),
        lambda path: locate_in(root, path, key=False),
    )


def schema_field_paths() -> list[str]:
    """Every field the schema defines, as ``services.*.ports[].mode`` paths, in schema order."""
    schema = compose_schema()
    definitions: dict[str, Any] = schema["definitions"]
    found: list[str] = []

    def walk(node: Any, path: str, seen: frozenset[str]) -> None:
        if not isinstance(node, dict):
            return
        reference = node.get("$ref")
        if isinstance(reference, str):
            name = reference.rsplit("/", 1)[-1]
            if name not in seen:
                walk(definitions[name], path, seen | {name})
            return
        for alternative in ("oneOf", "anyOf", "allOf"):
            for sub in node.get(alternative, []):
                walk(sub, path, seen)
        for key, sub in node.get("properties", {}).items():
            child = f"{path}.{key}" if path else key
            if child not in found:
                found.append(child)
            walk(sub, child, seen)
        for pattern, sub in node.get("patternProperties", {}).items():
            if pattern != "^x-":
                walk(sub, f"{path}.*", seen)
        if isinstance(node.get("items"), dict):
            walk(node["items"], f"{path}[]", seen)
        if isinstance(node.get("additionalProperties"), dict):
            walk(node["additionalProperties"], f"{path}.*", seen)

    walk(schema, "", frozenset())
    return found
