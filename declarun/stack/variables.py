"""The stack's variables: declarations, their types, and the values given on the command line.

Every variable a stack uses is declared under ``vars:``, either by its default alone::

    vars:
      port: 8080                 # an int, because its default is one
      greeting: hello            # a string

or in the long form, with a type, a description, and a default or none (then it must be
given)::

    vars:
      replicas: {type: int, default: 2, description: worker containers}
      token: {type: string, description: the API token (no default: required)}

Types: ``string``, ``int``, ``bool``, ``list``; a short-form default gives its own type
(a float, a mapping or null: any value). ``--vars-file`` and ``--var`` values are converted to
the declared type (``--var port=9000`` is the int 9000, ``--var debug=yes`` true,
``--var tags=a,b`` or ``--var 'tags=[a, b]'`` a list) and a value that does not fit is a
problem naming the variable. A key the stack does not declare is a problem with a "did you
mean" hint, unless the stack says ``allow_undeclared_vars: true``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import yaml

from declarun.errors import Problem, SourceLocation
from declarun.stack.load import DataPath
from declarun.stack.schema import suggest

__all__ = [
    "LONG_FORM_KEYS",
    "TYPES",
    "Declared",
    "Override",
    "VarType",
    "convert",
    "declarations",
    "resolve_variables",
]

VarType = Literal["string", "int", "bool", "list", "any"]
TYPES: tuple[str, ...] = ("string", "int", "bool", "list")
LONG_FORM_KEYS = frozenset({"type", "default", "description"})
_INT = re.compile(r"^\s*[+-]?\d+\s*$")
_TRUE = frozenset({"true", "yes", "on", "1"})
_FALSE = frozenset({"false", "no", "off", "0"})
_NO_DEFAULT = object()


@dataclass(frozen=True)
class Declared:
    """One declared variable."""

    name: str
    type: VarType
    default: Any  # _NO_DEFAULT when it must be given
    description: str = ""

    @property
    def required(self) -> bool:
        """True when it has no default."""
        return self.default is _NO_DEFAULT

    def described(self) -> str:
        """`` (the host port)`` when it has a description, for messages."""
        return f" ({self.description})" if self.description else ""


@dataclass(frozen=True)
class Override:
    """A value given from outside the stack file: where it came from, for messages."""

    value: Any
    where: SourceLocation
    origin: str  # "--var" or the vars file's name


def _is_long_form(value: Any) -> bool:
    """A mapping whose ``type`` is a variable type declares a variable (any other mapping is
    a default value, as the schema has it)."""
    return isinstance(value, dict) and value.get("type") in TYPES


def _type_of(value: Any) -> VarType:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "any"


def convert(value: Any, wanted: VarType) -> Any:
    """``value`` as a ``wanted``; raises ValueError saying what was expected."""
    if wanted == "any":
        return value
    if wanted == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        if isinstance(value, int | float):
            return str(value)
        raise ValueError("expected a string")
    if wanted == "int":
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str) and _INT.match(value):
            return int(value)
        raise ValueError("expected an integer")
    if wanted == "bool":
        if isinstance(value, bool):
            return value
        text = str(value).strip().lower() if isinstance(value, str | int) else ""
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
        raise ValueError("expected true or false (also yes/no, on/off, 1/0)")
    if isinstance(value, list):
        return value
    if isinstance(value, str):
        text = value.strip()
        if text.startswith("["):
            try:
                parsed = yaml.safe_load(text)
            except yaml.YAMLError:
                parsed = None
            if isinstance(parsed, list):
                return parsed
            raise ValueError("expected a list such as [a, b] or a,b")
        return [item.strip() for item in text.split(",")] if text else []
    raise ValueError("expected a list such as [a, b] or a,b")


def _describe(value: Any) -> str:
    text = repr(value) if not isinstance(value, str) else f"'{value}'"
    return text if len(text) <= 40 else text[:37] + "..."


def declarations(
    raw: Mapping[str, Any],
    locate: Callable[[DataPath], SourceLocation],
    problems: list[Problem],
) -> dict[str, Declared]:
    """The declared variables of a (templated) ``vars:`` mapping; a long-form default that
    does not fit its type is a problem."""
    declared: dict[str, Declared] = {}
    for name, value in raw.items():
        if not _is_long_form(value):
            declared[name] = Declared(name, _type_of(value), value)
            continue
        unknown = [k for k in value if k not in LONG_FORM_KEYS]
        for key in unknown:
            problems.append(
                Problem(
                    locate(("vars", name, key)),
                    f"vars.{name}.{key}",
                    f"unknown field '{key}' in the declaration of variable '{name}'",
                    suggest(str(key), LONG_FORM_KEYS),
                )
            )
        wanted: VarType = value["type"]
        description = str(value.get("description") or "")
        # A broken declaration is told once: not again as a variable nobody gave.
        default = value.get("default", None if unknown else _NO_DEFAULT)
        if "default" in value:
            try:
                default = convert(default, wanted)
            except ValueError as exc:
                problems.append(
                    Problem(
                        locate(("vars", name, "default")),
                        f"vars.{name}.default",
                        f"{exc} (the variable is of type {wanted}); got {_describe(default)}",
                    )
                )
                default = None
        declared[name] = Declared(name, wanted, default, description)
    return declared


def resolve_variables(
    declared: Mapping[str, Declared],
    overrides: list[tuple[str, Override]],
    *,
    allow_undeclared: bool,
    stack_location: SourceLocation,
    problems: list[Problem],
) -> dict[str, Any]:
    """The variables' values: defaults, then ``overrides`` in order (later wins), each
    converted to its variable's type. Problems: an undeclared key (unless allowed), a value
    that does not fit, a required variable nobody gave."""
    values: dict[str, Any] = {name: d.default for name, d in declared.items() if not d.required}
    given: set[str] = set()
    for name, override in overrides:
        variable = declared.get(name)
        if variable is None:
            if allow_undeclared:
                values[name] = override.value
                continue
            known = ", ".join(sorted(declared)) or "none"
            problems.append(
                Problem(
                    override.where,
                    "",
                    f"{override.origin} sets '{name}', which the stack does not declare "
                    f"(it declares: {known})",
                    suggest(name, declared)
                    or "declare it under vars:, or set allow_undeclared_vars: true",
                )
            )
            continue
        try:
            values[name] = convert(override.value, variable.type)
            given.add(name)
        except ValueError as exc:
            problems.append(
                Problem(
                    override.where,
                    "",
                    f"{override.origin} {name}={_describe(override.value)}: {exc}; "
                    f"'{name}' is of type {variable.type}{variable.described()}",
                )
            )
    for variable in declared.values():
        if variable.required and variable.name not in given:
            problems.append(
                Problem(
                    stack_location,
                    f"vars.{variable.name}",
                    f"variable '{variable.name}'{variable.described()} has no default and was "
                    f"not given: set it with --var {variable.name}=... or in a --vars-file",
                )
            )
    return values
