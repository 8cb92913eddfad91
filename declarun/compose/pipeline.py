"""From Compose files to the same typed, checked :class:`~declarun.stack.model.Stack` the
stack language produces.

    env files → each file: YAML 1.2 + positions → interpolation → Compose schema → one shape
    per field → absolute paths → extends  → merge (later -f wins) → project name → field
    warnings → translation into stack data → the stack language's schema, normaliser,
    profiles and checks, every problem reported in Compose's terms at its Compose location

Warnings (what declarun does differently or not at all) come back with the stack; with
``strict`` they are errors.
"""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.compose.fields import field_warnings
from declarun.compose.files import ComposeFileReader
from declarun.compose.merge import merge_projects
from declarun.compose.nodes import Node
from declarun.compose.project import (
    ComposeOptions,
    ProjectEnvironment,
    check_project_name,
    compose_files,
    directory_project_name,
    project_environment,
)
from declarun.compose.translate import translate_project
from declarun.compose.translation import Translation
from declarun.errors import Problem, SourceLocation, StackError
from declarun.stack.check import check_stack
from declarun.stack.load import DataPath
from declarun.stack.model import Stack
from declarun.stack.normalize import normalize_collecting
from declarun.stack.profiles import select_profiles
from declarun.stack.repair import mentions_removed, repair
from declarun.stack.schema import validate_against_schema

__all__ = ["ComposeProject", "load_compose"]


@dataclass(frozen=True)
class ComposeProject:
    """A Compose project read into a stack, with what ``convert`` and the CLI need to tell."""

    stack: Stack
    warnings: tuple[Problem, ...]
    translation: Translation
    files: tuple[Path, ...]
    project_dir: Path
    name_origin: str  # how the project got its name, in words
    environment: ProjectEnvironment


@contextmanager
def _no_gc() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _project_name(
    options: ComposeOptions, env: ProjectEnvironment, root: Node, project_dir: Path, main: Path
) -> tuple[str, Node | None, str, list[Problem]]:
    """(name, the node it was written at, how it was chosen, problems)."""
    origin = SourceLocation(str(main), 1, 1)
    name_node = root.get("name")
    if options.project_name is not None:
        name, how, node = options.project_name, "--project-name", None
    elif env.lookup("COMPOSE_PROJECT_NAME"):
        name = env.lookup("COMPOSE_PROJECT_NAME") or ""
        where = env.origin("COMPOSE_PROJECT_NAME")
        how = "COMPOSE_PROJECT_NAME" + (f" in {where.file}" if where else "")
        node = None if where is None else Node(name, where, where)
    elif name_node is not None and name_node.value not in (None, ""):
        name, how, node = str(name_node.value), "name:", name_node
    else:
        name = directory_project_name(project_dir)
        how, node = f"the directory {project_dir.name!r}", None
        if not name:
            return (
                "invalid-project-name",
                None,
                how,
                [
                    Problem(
                        origin,
                        "",
                        f"cannot make a project name from the directory {project_dir.name!r}",
                        "name it with -p NAME or name: in the file",
                    )
                ],
            )
    why = check_project_name(name)
    if why is not None:
        where = node.where if node is not None else origin
        return "invalid-project-name", node, how, [Problem(where, "name" if node else "", why)]
    return name, node, how, []


def _profiles(options: ComposeOptions, env: ProjectEnvironment) -> frozenset[str]:
    if options.profiles:
        return options.profiles
    listed = env.lookup("COMPOSE_PROFILES") or ""
    return frozenset(p.strip() for p in listed.split(",") if p.strip())


def load_compose(path: Path, options: ComposeOptions | None = None) -> ComposeProject:
    """Read the Compose project whose main file is ``path`` into a checked stack.

    Raises :class:`StackError` with every problem found, each located in the file written
    (a Compose file, an extended file, an env file) and named by its Compose path.
    """
    with _no_gc():
        return _load(path, options or ComposeOptions())


def _load(path: Path, options: ComposeOptions) -> ComposeProject:
    environ = dict(os.environ if options.environ is None else options.environ)
    files = compose_files(path, options.extra_files)
    project_dir = Path(os.path.normpath(path.absolute())).parent
    env, problems, warnings = project_environment(project_dir, options.env_files, environ)
    reader = ComposeFileReader(env.lookup)
    merged: Node | None = None
    for file in files:
        root = reader.read(file, project_dir)
        if root is not None:
            merged = root if merged is None else merge_projects(merged, root)
    problems.extend(reader.problems)
    warnings.extend(reader.warnings)
    if merged is None:
        raise StackError(problems)
    name, name_node, how, name_problems = _project_name(options, env, merged, project_dir, path)
    problems.extend(name_problems)
    warnings.extend(field_warnings(merged))
    profiles = _profiles(options, env)
    translation = translate_project(
        merged, name=name, name_node=name_node, lookup=env.lookup, profiles=profiles
    )
    problems.extend(translation.problems)
    warnings.extend(translation.warnings)
    stack = _stack(translation, path, project_dir, profiles, problems)
    problems = [
        p for p in problems if not mentions_removed(p, reader.removed | translation.removed)
    ]
    if options.strict:
        problems.extend(
            Problem(w.location, w.path, f"{w.message} (an error with --strict)", w.hint)
            for w in warnings
        )
    if problems or stack is None:
        raise StackError(problems or [Problem(merged.where, "", "the project cannot be read")])
    return ComposeProject(
        stack=stack,
        warnings=tuple(sorted(set(warnings), key=Problem.sort_key)),
        translation=translation,
        files=tuple(files),
        project_dir=project_dir,
        name_origin=how,
        environment=env,
    )


def _stack(
    translation: Translation,
    path: Path,
    project_dir: Path,
    profiles: frozenset[str],
    problems: list[Problem],
) -> Stack | None:
    """The stack language's view of the translated data, its problems told in Compose's terms."""
    data = translation.data
    schema_problems = validate_against_schema(data, translation.locate, translation.locate_value)
    removed: set[str] = set()
    if schema_problems:
        # Data declarun wrote from a valid Compose file that the stack language cannot say
        # (a hostname with '_', a service named '_x'): set it aside and check the rest.
        problems.extend(translation.in_compose_terms(p) for _, p in schema_problems)

        def paths(candidate: dict[str, Any]) -> list[DataPath]:
            found = validate_against_schema(candidate, translation.locate, translation.locate_value)
            return [found_path for found_path, _ in found]

        repaired = repair(data, [found_path for found_path, _ in schema_problems], paths)
        if repaired is None:
            return None
        data, removed = repaired
    stack, found = normalize_collecting(
        data,
        translation.locate,
        base_dir=project_dir,
        locate_value=translation.locate_value,
        source_file=path,
    )
    active, profile_problems = select_profiles(stack, profiles)
    inactive = frozenset(stack.containers) - frozenset(active.containers)
    found = [*found, *profile_problems, *check_stack(active, inactive)]
    problems.extend(
        translation.in_compose_terms(p) for p in found if not mentions_removed(p, removed)
    )
    return None if schema_problems else active
