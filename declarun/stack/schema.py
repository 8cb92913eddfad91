"""Validate stack data against ``schema/stack.schema.json`` and explain failures to people.

jsonschema's messages are written for schema authors (``Additional properties are not allowed
('depend_on' was unexpected)``); here each failure becomes a located problem in the stack's own
terms (``unknown field 'depend_on'; did you mean 'depends_on'?``). A schema may carry
``x-error`` on a subschema to replace the generic message for that shape.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

import fastjsonschema

if TYPE_CHECKING:
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import ValidationError

from declarun.errors import Problem, SourceLocation
from declarun.stack.load import DataPath, format_path

__all__ = [
    "SCHEMA_PATH",
    "explain_errors",
    "is_valid",
    "stack_schema",
    "suggest",
    "validate_against_schema",
]

SCHEMA_PATH = Path(__file__).resolve().parent.parent / "schema" / "stack.schema.json"

_TYPE_NAMES = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
    "null": "nothing (null)",
}


@cache
def stack_schema() -> dict[str, Any]:
    """The stack JSON Schema, loaded once."""
    with SCHEMA_PATH.open(encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def _validator() -> Draft202012Validator:
    # Imported here: jsonschema is only needed to explain an invalid stack, and importing it
    # costs more than validating a valid one with the compiled checker below.
    from jsonschema import Draft202012Validator

    return Draft202012Validator(stack_schema())


@cache
def _fast_check() -> Callable[[Any], Any]:
    """A compiled validator: ten times faster on valid stacks, but it stops at the first error.

    fastjsonschema knows drafts up to 7; the stack schema uses nothing newer than ``$defs``
    (plain JSON pointers), which a test keeps true by comparing both validators on many inputs.
    """
    schema = dict(stack_schema())
    schema["$schema"] = "http://json-schema.org/draft-07/schema#"
    code = _cached_validator_code(schema)
    namespace: dict[str, Any] = {}
    exec(compile(code, "<declarun stack schema>", "exec"), namespace)
    # The entry point is the first function generated; its name follows the schema's $id.
    entry = re.search(r"^def (validate\w*)\(", code, re.MULTILINE)
    if entry is None:
        return fastjsonschema.compile(schema)
    validate: Callable[[Any], Any] = namespace[entry.group(1)]
    return validate


def _cached_validator_code(schema: dict[str, Any]) -> str:
    """fastjsonschema's generated validator, kept in the user's cache between runs.

    Generating it costs ~0.1 s, a tenth of a no-op ``apply``; the file is keyed by the
    schema and the generator version, so an upgrade or a schema change makes a new one.
    """
    text = json.dumps(schema, sort_keys=True) + fastjsonschema.VERSION
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = Path(base) / "declarun" / f"stack-schema-{key}.py"
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        pass
    code: str = fastjsonschema.compile_to_code(schema)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(code, encoding="utf-8")
        partial.replace(path)
    except OSError:
        pass  # a read-only home only costs the generation again next time
    return code


def is_valid(data: Any) -> bool:
    """True when ``data`` satisfies the stack schema (fast path, no explanations)."""
    try:
        _fast_check()(data)
    except fastjsonschema.JsonSchemaException:
        return False
    return True


def suggest(word: str, choices: Iterable[str]) -> str | None:
    """A 'did you mean' hint for a misspelt ``word`` among ``choices``, if one is close."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return f"an integer ({value})"
    if isinstance(value, float):
        return f"a number ({value})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:37] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


def _expected_types(schema: Mapping[str, Any]) -> str:
    kind = schema.get("type")
    kinds = [kind] if isinstance(kind, str) else list(kind or [])
    names = [_TYPE_NAMES.get(k, k) for k in kinds]
    return " or ".join(names) if names else "another type"


def _allowed_keys(schema: Mapping[str, Any]) -> list[str]:
    return sorted(schema.get("properties", {}))


def _is_allowed_by_pattern(key: str, schema: Mapping[str, Any]) -> bool:
    return any(re.search(pattern, key) for pattern in schema.get("patternProperties", {}))


def _relevance(error: ValidationError) -> tuple[int, int, int]:
    # Prefer the alternative whose type matched (an error deeper inside it) over a bare type error.
    return (len(error.absolute_path), 0 if error.validator == "type" else 1, -len(error.message))


def _explain(error: ValidationError) -> list[tuple[DataPath, str, str | None, bool]]:
    """(path, message, hint, at_key) for one validation error."""
    path: DataPath = tuple(error.absolute_path)
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    custom = schema.get("x-error")
    kind = error.validator
    if "propertyNames" in error.schema_path and isinstance(error.instance, str):
        # A key (a resource name) broke the naming rule: point at the key itself.
        what = schema.get("description", "a valid name")
        return [
            (
                (*path, error.instance),
                f"invalid name '{error.instance}': expected "
                f"{what[:1].lower()}{what[1:].rstrip('.')}",
                None,
                True,
            )
        ]
    if kind in ("oneOf", "anyOf") and error.context:
        deeper = [e for e in error.context if len(e.absolute_path) > len(error.absolute_path)]
        if deeper:
            return _explain(max(deeper, key=_relevance))
        non_type = [e for e in error.context if e.validator not in ("type", "not")]
        if len(non_type) == 1 and not custom:
            return _explain(non_type[0])
        if custom:
            return [(path, f"{custom}; got {_describe(error.instance)}", None, False)]
        kinds = sorted(
            {
                _expected_types(e.schema)
                for e in error.context
                if isinstance(e.schema, Mapping) and e.validator == "type"
            }
        )
        if kinds and len(non_type) == 0:
            return [
                (
                    path,
                    f"expected {' or '.join(kinds)}, got {_describe(error.instance)}",
                    None,
                    False,
                )
            ]
        from jsonschema.exceptions import best_match

        best = best_match(error.context, key=_relevance)
        return _explain(best) if best is not None else [(path, error.message, None, False)]
    if custom:
        return [(path, f"{custom}; got {_describe(error.instance)}", None, False)]
    if kind == "additionalProperties" and isinstance(error.instance, dict):
        allowed = _allowed_keys(schema)
        out: list[tuple[DataPath, str, str | None, bool]] = []
        for key in error.instance:
            if key in schema.get("properties", {}) or _is_allowed_by_pattern(key, schema):
                continue
            out.append(((*path, key), f"unknown field '{key}'", suggest(key, allowed), True))
        return out or [(path, error.message, None, False)]
    if kind == "required":
        missing = error.message.split("'")[1] if "'" in error.message else "?"
        return [(path, f"missing required field '{missing}'", None, True)]
    if kind == "type":
        return [
            (
                path,
                f"expected {_expected_types(schema)}, got {_describe(error.instance)}",
                None,
                False,
            )
        ]
    if kind == "enum":
        choices = [str(c) for c in schema.get("enum", [])]
        hint = suggest(str(error.instance), choices) if isinstance(error.instance, str) else None
        return [
            (
                path,
                f"must be one of {', '.join(choices)}; got {_describe(error.instance)}",
                hint,
                False,
            )
        ]
    if kind == "const":
        return [
            (path, f"must be {schema.get('const')!r}; got {_describe(error.instance)}", None, False)
        ]
    if kind == "pattern":
        what = schema.get("description", "the expected format")
        return [
            (
                path,
                f"{_describe(error.instance)} is not valid: expected {what[:1].lower()}"
                f"{what[1:].rstrip('.')}",
                None,
                False,
            )
        ]
    if kind == "minProperties":
        return [(path, "must not be empty", None, False)]
    return [(path, error.message, None, False)]


def validate_against_schema(
    data: Any,
    locate_key: Callable[[DataPath], SourceLocation],
    locate_value: Callable[[DataPath], SourceLocation],
) -> list[tuple[DataPath, Problem]]:
    """All schema problems in ``data``, each with its data path and located in the source file."""
    if is_valid(data):
        return []
    return explain_errors(_validator().iter_errors(data), locate_key, locate_value)


def explain_errors(
    errors: Iterable[ValidationError],
    locate_key: Callable[[DataPath], SourceLocation],
    locate_value: Callable[[DataPath], SourceLocation],
) -> list[tuple[DataPath, Problem]]:
    """jsonschema's errors (of any schema written in the same style: ``x-error``,
    ``additionalProperties: false``) as located problems in people's terms, with their paths.

    The Compose front end explains the Compose Specification's schema with it.
    """
    problems: list[tuple[DataPath, Problem]] = []
    for error in errors:
        for path, message, hint, at_key in _explain(error):
            where = locate_key(path) if at_key else locate_value(path)
            problems.append((path, Problem(where, format_path(path), message, hint)))
    return problems
