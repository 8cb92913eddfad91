"""``declarun convert``: a Compose project written as a readable stack file.

The stack file says what the Compose project means to declarun, so ``declarun plan`` on it and
on the Compose files agree: the same translated data, with

* host paths relative to the stack file's directory again;
* variables resolved as Compose resolved them, but secrets kept as references: a value that
  reads a secret-looking variable (or sets a secret-looking one) is written as a template
  over ``env`` (``{{ env.DB_PASSWORD }}``), and so is a bare ``KEY`` in ``environment`` that
  passes a variable through; the header names the variables to set;
* anything that would look like a template escaped, since stack files are templated;
* comments where the meaning changed: what declarun does differently, what it left out.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from declarun.compose.interpolate import InterpolationError
from declarun.compose.jinja import escape_template, interpolation_to_jinja
from declarun.compose.pipeline import ComposeProject
from declarun.errors import Problem
from declarun.stack.load import DataPath

__all__ = ["Converted", "convert_project"]

_SECTIONS = ("stack", "images", "volumes", "networks", "containers")


@dataclass(frozen=True)
class Converted:
    """A stack file's text and the variables it reads from the environment."""

    text: str
    variables: tuple[str, ...]


def _relative(text: str, base: Path) -> str:
    path = Path(text)
    if not path.is_absolute():
        return text
    relative = os.path.relpath(path, base)
    if relative.startswith(os.path.join("..", "..", "..")):
        return text  # far outside: an absolute path reads better
    return relative if relative.startswith("..") else f"./{relative}" if relative != "." else "."


def _relativise(data: dict[str, Any], base: Path) -> None:
    for image in (data.get("images") or {}).values():
        build = image.get("build")
        if isinstance(build, dict) and "context" in build:
            build["context"] = _relative(build["context"], base)
    for container in (data.get("containers") or {}).values():
        if "env_file" in container:
            container["env_file"] = [_relative(p, base) for p in container["env_file"]]
        for key in ("volumes", "mounts"):
            entries = container.get(key) or []
            for index, entry in enumerate(entries):
                if isinstance(entry, str) and entry.startswith("/") and ":" in entry:
                    source, _sep, rest = entry.partition(":")
                    entries[index] = f"{_relative(source, base)}:{rest}"
                elif isinstance(entry, dict) and entry.get("type") == "bind":
                    entry["source"] = _relative(entry["source"], base)


def _escape_all(value: Any) -> Any:
    if isinstance(value, str):
        return escape_template(value)
    if isinstance(value, dict):
        return {key: _escape_all(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_escape_all(item) for item in value]
    return value


@dataclass
class _Writer:
    project: ComposeProject
    is_secret: Callable[[str], bool]
    notes: dict[DataPath, list[str]]
    variables: list[str]

    def references(self, data: dict[str, Any]) -> None:
        """Secrets and passed-through variables as templates over ``env``."""
        translation = self.project.translation
        for name, container in (data.get("containers") or {}).items():
            env = container.get("env")
            if not isinstance(env, dict):
                continue
            for key in env:
                spath: DataPath = ("containers", name, "env", key)
                variable = translation.passthrough.get(spath)
                node = translation.raw.get(spath)
                if variable is not None:
                    env[key] = (
                        "{{ env." + variable + " }}"
                        if not variable.startswith("_")
                        else ("{{ env['" + variable + "'] }}")
                    )
                    self._uses(
                        [variable], spath, f"passed through from the environment: {variable}"
                    )
                elif (
                    node is not None
                    and node.raw is not None
                    and (self.is_secret(key) or any(self.is_secret(v) for v in node.variables))
                ):
                    try:
                        template, read = interpolation_to_jinja(node.raw)
                    except InterpolationError:
                        continue
                    env[key] = template
                    self._uses(list(read), spath, f"a secret, kept as a reference: {node.raw}")

    def _uses(self, variables: list[str], spath: DataPath, note: str) -> None:
        for variable in variables:
            if variable not in self.variables:
                self.variables.append(variable)
        self.notes.setdefault(spath, []).append(note)

    def interpolated(self, data: dict[str, Any]) -> None:
        """A comment on each other value that Compose interpolated: what it was written as."""
        for spath, node in self.project.translation.raw.items():
            if spath in self.notes or node.raw is None:
                continue
            if _get(data, spath) is not None:
                self.notes.setdefault(spath, []).append(f"was {node.raw}")


def _get(data: Any, path: DataPath) -> Any:
    for part in path:
        in_list = isinstance(data, list) and isinstance(part, int) and 0 <= part < len(data)
        if not in_list and not (isinstance(data, dict) and part in data):
            return None
        data = data[part]
    return data


def _warning_path(problem: Problem) -> DataPath:
    parts = problem.path.split(".")
    if len(parts) >= 2 and parts[0] == "services":
        return ("containers", parts[1].split("[")[0])
    if len(parts) >= 2 and parts[0] in ("volumes", "networks"):
        return (parts[0], parts[1].split("[")[0])
    return ()


def _scalar(value: Any) -> str:
    if value is None:
        return "null"
    text = yaml.safe_dump(value, width=1 << 30, allow_unicode=True)
    text = text.removesuffix("\n").removesuffix("\n...").strip()
    if isinstance(value, str) and ("\n" in value or ("''" in text and '"' not in value)):
        # Double quotes read better than YAML's doubled single quotes (templates use ').
        text = yaml.safe_dump(value, default_style='"', width=1 << 30, allow_unicode=True)
        text = text.removesuffix("\n").strip()
    return text


_FLOW_WIDTH = 88


def _flow(items: list[Any], indent: int) -> str | None:
    """A short list of scalars on one line (``[sh, -c, 'exec sleep 1']``), if it fits."""
    if not items or any(isinstance(item, dict | list) or item is None for item in items):
        return None
    # PyYAML quotes for the flow context itself (a ',' or ']' inside an item).
    text = yaml.safe_dump(items, default_flow_style=True, width=1 << 30, allow_unicode=True)
    text = text.strip()
    return text if indent + len(text) <= _FLOW_WIDTH and "\n" not in text else None


def _lines(value: Any, path: DataPath, indent: int, notes: dict[DataPath, list[str]]) -> list[str]:
    pad = " " * indent
    out: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            for note in notes.get((*path, key), []):
                out.append(f"{pad}# {note}")
            out.extend(_entry(f"{pad}{_scalar(key)}:", item, (*path, key), indent, notes))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            for note in notes.get((*path, index), []):
                out.append(f"{pad}# {note}")
            if isinstance(item, dict) and item:
                nested = _lines(item, (*path, index), indent + 2, notes)
                first = next(
                    i for i, line in enumerate(nested) if not line.lstrip().startswith("#")
                )
                out.extend(f"{pad}{line.lstrip()}" for line in nested[:first])
                out.append(f"{pad}- {nested[first].lstrip()}")
                out.extend(nested[first + 1 :])
            else:
                out.extend(_entry(f"{pad}-", item, (*path, index), indent, notes))
    return out


def _entry(
    head: str, item: Any, path: DataPath, indent: int, notes: dict[DataPath, list[str]]
) -> list[str]:
    if isinstance(item, list) and not any((*path, index) in notes for index in range(len(item))):
        flow = _flow(item, len(head) + 1)
        if flow is not None:
            return [f"{head} {flow}"]
    if isinstance(item, dict | list) and item:
        return [head, *_lines(item, path, indent + 2, notes)]
    if isinstance(item, dict):
        return [f"{head} {{}}"]
    if isinstance(item, list):
        return [f"{head} []"]
    if item is None:
        return [head]
    return [f"{head} {_scalar(item)}"]


def _header(project: ComposeProject, out_dir: Path, variables: list[str]) -> list[str]:
    files = " and ".join(_relative(str(f.absolute()), out_dir) for f in project.files)
    lines = [
        f"# Converted from {files} by `declarun convert`.",
        f"# The stack is named after the Compose project: {project.stack.name} "
        f"(from {project.name_origin}).",
        "# Compose's variables were resolved when converting; secrets stay references.",
    ]
    if variables:
        lines.append(
            "# Set these in the environment before using this file: " + ", ".join(variables)
        )
        from_files = [
            f"{name} (in {_relative(where.file, out_dir)})"
            for name in variables
            if (where := project.environment.origin(name)) is not None
        ]
        if from_files:
            lines.append(
                "# (declarun reads only the environment; Compose read "
                + ", ".join(from_files)
                + ")"
            )
    elsewhere = [w for w in project.warnings if not _warning_path(w)]
    for warning in elsewhere:
        lines.append(f"# not converted: {warning.path or warning.location}: {warning.message}")
    return lines


def convert_project(
    project: ComposeProject, out_dir: Path, is_secret: Callable[[str], bool]
) -> Converted:
    """The stack file for ``project``, its paths relative to ``out_dir`` (where it is written).

    ``is_secret(name)`` says whether a variable's name looks like a secret's (the plan's own
    rule, given by the caller).
    """
    translation = project.translation
    data = copy.deepcopy(translation.data)
    notes: dict[DataPath, list[str]] = {k: list(v) for k, v in translation.notes.items()}
    writer = _Writer(project, is_secret, notes, [])
    data = _escape_all(data)
    writer.references(data)
    writer.interpolated(data)
    _relativise(data, out_dir)
    for warning in project.warnings:
        path = _warning_path(warning)
        if path:
            notes.setdefault(path, []).append(f"{warning.path}: {warning.message}")
    ordered = {key: data[key] for key in _SECTIONS if key in data}
    lines = [*_header(project, out_dir, writer.variables), ""]
    for key, value in ordered.items():
        lines.extend(_entry(f"{_scalar(key)}:", value, (key,), 0, notes))
    return Converted("\n".join(lines) + "\n", tuple(writer.variables))
