"""Typed readers for the loosely typed JSON of a Docker create request.

Docker decodes the body into Go structs, so a wrong JSON type is a 400; these helpers
give the same verdict with a message naming the field. ``null`` always means "absent".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.frozen import FrozenDict

__all__ = [
    "get_bool",
    "get_int",
    "get_object",
    "get_str",
    "get_str_list",
    "get_str_map",
    "get_strslice",
]


def _bad(field: str, expected: str, value: Any) -> InvalidCreateRequest:
    return InvalidCreateRequest(
        f"invalid value for {field}: expected {expected}, got {type(value).__name__}"
    )


def get_object(body: Mapping[str, Any], key: str, field: str | None = None) -> Mapping[str, Any]:
    """``body[key]`` as a JSON object; an empty one when absent."""
    value = body.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise _bad(field or key, "an object", value)
    return value


def get_str(body: Mapping[str, Any], key: str, default: str = "", field: str | None = None) -> str:
    """``body[key]`` as a string."""
    value = body.get(key)
    if value is None:
        return default
    if not isinstance(value, str):
        raise _bad(field or key, "a string", value)
    return value


def get_bool(body: Mapping[str, Any], key: str, field: str | None = None) -> bool:
    """``body[key]`` as a boolean (absent: false)."""
    value = body.get(key)
    if value is None:
        return False
    if not isinstance(value, bool):
        raise _bad(field or key, "a boolean", value)
    return value


def get_int(body: Mapping[str, Any], key: str, default: int = 0, field: str | None = None) -> int:
    """``body[key]`` as an integer (booleans refused; integral floats accepted, as Go does)."""
    value = body.get(key)
    if value is None:
        return default
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise _bad(field or key, "an integer", value)
    return value


def get_str_list(body: Mapping[str, Any], key: str, field: str | None = None) -> tuple[str, ...]:
    """``body[key]`` as a list of strings (absent: empty)."""
    value = body.get(key)
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise _bad(field or key, "a list of strings", value)
    return tuple(value)


def get_strslice(
    body: Mapping[str, Any], key: str, field: str | None = None
) -> tuple[str, ...] | None:
    """A Docker ``StrSlice``: a string or a list of strings; ``None`` when absent.

    Absent and empty differ for Entrypoint (an empty one clears the image's).
    """
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, str):
        return (value,)
    return get_str_list(body, key, field)


def get_str_map(
    body: Mapping[str, Any], key: str, field: str | None = None
) -> FrozenDict[str, str]:
    """``body[key]`` as an object of strings (absent: empty)."""
    value = body.get(key)
    if value is None:
        return FrozenDict()
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _bad(field or key, "an object of strings", value)
    return FrozenDict(value)
