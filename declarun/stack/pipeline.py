"""From a stack file to a typed, checked :class:`~declarun.stack.model.Stack`.

The stages, each reporting every problem it finds before the next one runs::

    load (YAML + positions) → variables (declared, typed, overridden) → templating
      → JSON Schema → normalise → profiles → checks

A stage runs only on what the previous one accepted, so the later stages can trust shapes and
the user sees the problems that matter first (a typo in a field name, not its consequences).
"""

from __future__ import annotations

import gc
import os
import re
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.errors import Problem, StackError
from declarun.stack.check import check_stack
from declarun.stack.load import DataPath, LoadedDocument, load_yaml_file
from declarun.stack.model import Stack
from declarun.stack.normalize import normalize_collecting
from declarun.stack.profiles import select_profiles
from declarun.stack.repair import mentions_removed, repair
from declarun.stack.schema import validate_against_schema
from declarun.stack.template import Namespace, TemplateRenderer
from declarun.stack.variables import Override, declarations, resolve_variables

__all__ = ["LoadOptions", "load_stack", "load_stacks", "parse_var_assignment"]

_VAR_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass(frozen=True)
class LoadOptions:
    """What the command line adds to a stack file: variables and active profiles."""

    vars_files: Sequence[Path] = ()
    var_overrides: Mapping[str, str] = field(default_factory=dict)
    profiles: frozenset[str] = frozenset()
    environ: Mapping[str, str] | None = None


def parse_var_assignment(text: str) -> tuple[str, str]:
    """Split a ``--var key=value`` argument; raises ValueError with a readable message."""
    key, sep, value = text.partition("=")
    if not sep:
        raise ValueError(f"--var {text!r}: expected KEY=VALUE")
    if not _VAR_NAME.match(key):
        raise ValueError(f"--var {text!r}: '{key}' is not a valid variable name")
    return key, value


def _vars_from_file(path: Path) -> list[tuple[str, Override]]:
    document = load_yaml_file(path)
    if not isinstance(document.data, dict):
        raise StackError(
            [
                Problem(
                    document.locate(()),
                    "",
                    "a vars file must be a mapping of variable names to values",
                )
            ]
        )
    origin = f"--vars-file {path}"
    return [
        (str(key), Override(value, document.locate((key,)), origin))
        for key, value in document.data.items()
    ]


def _render_variables(
    document: LoadedDocument, environ: Mapping[str, str], problems: list[Problem]
) -> dict[str, Any]:
    raw = document.data.get("vars", {}) if isinstance(document.data, dict) else {}
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                document.locate_value(("vars",)),
                "vars",
                "expected a mapping of variable names to values",
            )
        )
        return {}
    # Variables may use the environment but not each other: no ordering puzzles.
    renderer = TemplateRenderer({"env": Namespace("env", environ)})
    rendered: dict[str, Any] = renderer.render_tree(raw, document.locate_value, problems, ("vars",))
    return rendered


def _render_stack(
    document: LoadedDocument,
    variables: Mapping[str, Any],
    environ: Mapping[str, str],
    problems: list[Problem],
) -> dict[str, Any]:
    renderer = TemplateRenderer(
        {
            "vars": Namespace("vars", variables),
            "env": Namespace("env", environ),
        }
    )
    rendered: dict[str, Any] = {}
    for key, value in document.data.items():
        if key == "vars":
            rendered[key] = dict(variables)
        elif key.startswith("x-"):
            # Extension fields only carry YAML anchors; they are never used as they stand.
            rendered[key] = value
        else:
            path: DataPath = (key,)
            rendered[key] = renderer.render_tree(value, document.locate_value, problems, path)
    return rendered


@contextmanager
def _bulk_allocation() -> Iterator[None]:
    """Loading a stack allocates ~10^5 small objects and frees almost none: the cyclic
    collector would scan them again and again for nothing (~10 % of a big load)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def load_stack(path: Path, options: LoadOptions | None = None) -> Stack:
    """Load, template, validate, normalise and check one stack file.

    Raises :class:`StackError` with every problem found, each located in the file the user wrote.
    """
    with _bulk_allocation():
        return _load_stack(path, options)


def _load_stack(path: Path, options: LoadOptions | None) -> Stack:
    options = options or LoadOptions()
    environ = dict(os.environ if options.environ is None else options.environ)
    document = load_yaml_file(path)
    if not isinstance(document.data, dict):
        raise StackError(
            [
                Problem(
                    document.locate(()),
                    "",
                    "a stack file must be a mapping with a 'stack:' name at the top",
                )
            ]
        )

    problems: list[Problem] = []
    raw_variables = _render_variables(document, environ, problems)
    declared = declarations(raw_variables, document.locate_value, problems)
    overrides: list[tuple[str, Override]] = []
    for vars_file in options.vars_files:
        overrides.extend(_vars_from_file(vars_file))
    where = document.locate(("vars",))
    overrides.extend((k, Override(v, where, "--var")) for k, v in options.var_overrides.items())
    variables = resolve_variables(
        declared,
        overrides,
        allow_undeclared=document.data.get("allow_undeclared_vars") is True,
        stack_location=where,
        problems=problems,
    )
    data = _render_stack(document, variables, environ, problems)
    templated = {_problem_key(p) for p in problems}

    def schema_paths(candidate: dict[str, Any]) -> list[DataPath]:
        return [
            path
            for path, _ in validate_against_schema(
                candidate, document.locate, document.locate_value
            )
        ]

    schema_problems = validate_against_schema(data, document.locate, document.locate_value)
    # A template that failed left its text in place; the schema's view of that text is noise.
    problems.extend(p for _, p in schema_problems if _problem_key(p) not in templated)
    if not problems:
        return _finish(data, document, path, options, removed=set())
    repaired = repair(data, [p for p, _ in schema_problems], schema_paths)
    if repaired is not None:
        repaired_data, removed = repaired
        try:
            _finish(repaired_data, document, path, options, removed)
        except StackError as exc:
            problems.extend(exc.problems)
    raise StackError(problems)


def _problem_key(problem: Problem) -> tuple[int, int]:
    return (problem.location.line, problem.location.column)


def _finish(
    data: dict[str, Any],
    document: LoadedDocument,
    path: Path,
    options: LoadOptions,
    removed: set[str],
) -> Stack:
    """Normalise, select profiles and check schema-valid data."""
    stack, problems = normalize_collecting(
        data,
        document.locate,
        base_dir=path.resolve().parent,
        locate_value=document.locate_value,
        source_file=path,
    )
    active, profile_problems = select_profiles(stack, options.profiles)
    inactive = frozenset(stack.containers) - frozenset(active.containers)
    problems = [*problems, *profile_problems, *check_stack(active, inactive)]
    problems = [p for p in problems if not mentions_removed(p, removed)]
    if problems:
        raise StackError(problems)
    return active


def load_stacks(paths: Iterable[Path], options: LoadOptions | None = None) -> list[Stack]:
    """Load several stack files, reporting the problems of all of them together."""
    stacks: list[Stack] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            stacks.append(load_stack(path, options))
        except StackError as exc:
            problems.extend(exc.problems)
    if problems:
        raise StackError(problems)
    return stacks
