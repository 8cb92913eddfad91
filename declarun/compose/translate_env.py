"""A service's ``env_file`` and ``environment`` as a container's ``env_file`` and ``env``.

Env files are read with Compose's rules (:mod:`declarun.compose.dotenv`). When the stack
language reads a file to the same values (plain ``KEY=VALUE`` lines, the common case) it is
kept as an ``env_file`` reference, so a change to it is reported as such and ``convert`` keeps
its values out of the stack file; otherwise its values are written into ``env`` (with a note),
and so are those of the files after it, to keep the order: files first, later wins, then
``environment``. A bare ``KEY`` in ``environment`` takes the variable from the environment (or
``.env``) and is left out when it is unset, as docker compose does.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from declarun.compose.dotenv import parse_dotenv
from declarun.compose.nodes import Node
from declarun.compose.project import read_text_file
from declarun.compose.translation import Translation
from declarun.errors import SourceLocation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text
from declarun.stack.normalize_env import parse_env_file

__all__ = ["translate_environment"]

Lookup = Callable[[str], str | None]


def _env_file_entries(node: Node | None) -> list[tuple[Node, bool, bool]]:
    """(path node, required, raw format) for each ``env_file`` entry."""
    entries: list[tuple[Node, bool, bool]] = []
    for item in node.elements() if node is not None else []:
        if item.is_map:
            path = item.get("path")
            if path is None:
                continue
            required = item.get("required")
            form = item.get("format")
            entries.append(
                (
                    path,
                    required is None or required.value not in (False, "false"),
                    form is not None and form.value == "raw",
                )
            )
        else:
            entries.append((item, True, False))
    return entries


def translate_environment(
    t: Translation,
    service: Node,
    spath: DataPath,
    cpath: DataPath,
    lookup: Lookup,
    container: dict[str, Any],
) -> None:
    """Fill ``container``'s ``env_file`` and ``env`` from the service's fields."""
    env: dict[str, Any] = {}
    files: list[str] = []
    inline = False
    env_file_node = service.get("env_file")
    for index, (path_node, required, raw) in enumerate(_env_file_entries(env_file_node)):
        item_cpath = (*cpath, "env_file", index)
        path = Path(str(path_node.value))
        if not path.exists() and not required:
            t.note((*spath, "env_file"), f"{path} does not exist and is optional: left out")
            continue
        text, why = read_text_file(path, "env file")
        if text is None:
            t.problem(path_node.where, item_cpath, why)
            continue
        parsed = parse_dotenv(text, lookup, raw=raw)
        for line, message in parsed.errors:
            t.problem(SourceLocation(str(path), line, 1), item_cpath, message)
        for line, variable in parsed.missing:
            t.warn(
                SourceLocation(str(path), line, 1),
                item_cpath,
                f"variable {variable} is not set; using an empty string (as docker compose does)",
            )
        ours, our_errors = parse_env_file(text)
        same = not our_errors and {k: v for k, (v, _) in ours.items()} == {
            k: e.value for k, e in parsed.values.items()
        }
        if same and not inline:
            t.record((*spath, "env_file", len(files)), path_node, item_cpath)
            files.append(str(path))
            continue
        inline = True
        t.note(
            (*spath, "env"),
            f"values of {path} written here: declarun reads that env file differently",
        )
        for key, entry in parsed.values.items():
            env[key] = entry.value
            location = SourceLocation(str(path), entry.line, 1)
            key_node = Node(entry.value, location, location)
            t.record((*spath, "env", key), key_node, item_cpath)
    environment = service.get("environment")
    for key, value in environment.items() if environment is not None else ():
        key_spath = (*spath, "env", key)
        if value.value is None:
            found = lookup(key)
            if found is None:
                env.pop(key, None)
                t.note((*spath, "env"), f"{key} is not set in the environment: left out")
                continue
            env[key] = found
            t.passthrough[key_spath] = key
        else:
            env[key] = scalar_text(value.value)
        t.record(key_spath, value, (*cpath, "environment", key))
    if files:
        if env_file_node is not None:
            t.record((*spath, "env_file"), env_file_node, (*cpath, "env_file"))
        container["env_file"] = files
    if env:
        if environment is not None:
            t.record((*spath, "env"), environment, (*cpath, "environment"))
        container["env"] = env
