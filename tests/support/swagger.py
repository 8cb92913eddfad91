"""The Docker Engine API Swagger file as JSON Schema, to check daemon responses in tests.

The file is Swagger 2.0 (``tests/reference/docker-engine-api-v1.45.yaml``: moby's
``api/docs/v1.45.yaml``, vendored with its Apache-2.0 licence). Its ``definitions`` are JSON
Schema draft 4 except for ``x-nullable``, which is turned into a ``null`` alternative so that
fields dockerd documents as nullable may be ``null``.
"""

from __future__ import annotations

import copy
import functools
from pathlib import Path
from typing import Any

import jsonschema
import yaml

__all__ = ["SWAGGER_PATH", "definitions", "validate"]

SWAGGER_PATH = Path(__file__).resolve().parents[1] / "reference" / "docker-engine-api-v1.45.yaml"


def _nullable(node: Any) -> Any:
    if isinstance(node, dict):
        out = {k: _nullable(v) for k, v in node.items()}
        if out.get("x-nullable") is True and isinstance(out.get("type"), str):
            out["type"] = [out["type"], "null"]
        return out
    if isinstance(node, list):
        return [_nullable(v) for v in node]
    return node


@functools.cache
def definitions() -> dict[str, Any]:
    """All Swagger definitions, converted (read once)."""
    with open(SWAGGER_PATH) as f:
        document = yaml.safe_load(f)
    converted: dict[str, Any] = _nullable(document["definitions"])
    return converted


def validate(instance: Any, definition: str) -> None:
    """Raise jsonschema.ValidationError unless ``instance`` matches ``definitions/<definition>``."""
    schema = {"$ref": f"#/definitions/{definition}", "definitions": copy.deepcopy(definitions())}
    jsonschema.Draft4Validator(schema).validate(instance)
