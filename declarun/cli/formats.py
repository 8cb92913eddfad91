"""Which front end reads a file: the stack language or Compose.

``--format stack|compose`` says it; otherwise a file named as docker compose names its files
(``compose.yaml``, ``docker-compose.yml``, ...) or whose top level has ``services:`` is a
Compose file, and anything else a stack file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from declarun.compose.pipeline import ComposeProject, load_compose
from declarun.compose.project import COMPOSE_FILE_NAMES, ComposeOptions
from declarun.errors import Problem, SourceLocation, StackError
from declarun.stack.load import load_yaml_file
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack

__all__ = ["FormatName", "detect_format", "load_any"]

FormatName = Literal["auto", "stack", "compose"]


def detect_format(path: Path, requested: FormatName = "auto") -> Literal["stack", "compose"]:
    """The front end for ``path``: the one ``requested``, or the one its name or content says."""
    if requested != "auto":
        return requested
    if path.name in COMPOSE_FILE_NAMES or path.name.endswith((".override.yml", ".override.yaml")):
        return "compose"
    try:
        data = load_yaml_file(path).data
    except StackError:
        return "stack"  # the stack loader reports what is wrong with it
    if isinstance(data, dict) and "services" in data and "stack" not in data:
        return "compose"
    return "stack"


def load_any(
    path: Path,
    requested: FormatName,
    stack_options: LoadOptions,
    compose_options: ComposeOptions,
) -> tuple[Stack, tuple[Problem, ...], ComposeProject | None]:
    """The stack in ``path`` by its format, the warnings, and the Compose project if it is one.

    Options that belong to the other format are refused (a :class:`StackError`) rather than
    ignored.
    """
    origin = SourceLocation(str(path), 1, 1)
    if detect_format(path, requested) == "stack":
        misplaced = [
            flag
            for flag, given in (
                ("-f/--file", bool(compose_options.extra_files)),
                ("-p/--project-name", compose_options.project_name is not None),
                ("--env-file", bool(compose_options.env_files)),
            )
            if given
        ]
        if misplaced:
            raise StackError(
                [
                    Problem(
                        origin,
                        "",
                        f"{', '.join(misplaced)} apply to Compose files; {path} is a stack file",
                        "give --format compose if it is a Compose file",
                    )
                ]
            )
        return load_stack(path, stack_options), (), None
    if stack_options.vars_files:
        raise StackError(
            [
                Problem(
                    origin,
                    "",
                    f"--vars-file applies to stack files; {path} is a Compose file",
                    "set Compose variables with --env-file FILE or --var KEY=VALUE",
                )
            ]
        )
    project = load_compose(path, compose_options)
    return project.stack, project.warnings, project
