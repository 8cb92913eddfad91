"""The parts of a Compose project that are not in its files: which files, which directory,
which variables, which name.

* Files: the ones named, merged in order; when one file is named by its usual name
  (``compose.yaml``, ``docker-compose.yml``, ...) and no ``-f`` adds others, its override
  file beside it (``compose.override.yaml``, ``docker-compose.override.yml``, ...) is merged
  on top, as docker compose does when it finds the files itself.
* The project directory is the first file's; relative paths in every file (but those of a
  file that ``extends`` reaches) are relative to it.
* Variables: the environment, then the ``.env`` file in the project directory, or instead the
  ``--env-file`` files given (later wins among files; the environment wins over all).
* The name: ``-p``, else ``COMPOSE_PROJECT_NAME`` (environment or ``.env``), else the files'
  ``name:``, else the project directory's name made lowercase with other characters dropped.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from declarun.compose.dotenv import parse_dotenv
from declarun.errors import Problem, SourceLocation

__all__ = [
    "COMPOSE_FILE_NAMES",
    "MAX_ENV_FILE_BYTES",
    "ComposeOptions",
    "ProjectEnvironment",
    "check_project_name",
    "compose_files",
    "directory_project_name",
    "project_environment",
    "read_text_file",
]

#: The names docker compose looks for, in its order of preference.
COMPOSE_FILE_NAMES = ("compose.yaml", "compose.yml", "docker-compose.yaml", "docker-compose.yml")
#: An env file larger than this is refused (as in the stack language).
MAX_ENV_FILE_BYTES = 1024 * 1024

_PROJECT_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_MAX_NAME = 63


@dataclass(frozen=True)
class ComposeOptions:
    """What the command line adds to Compose files (docker compose's options of those names)."""

    extra_files: Sequence[Path] = ()  # -f: more files merged on top, in order
    project_name: str | None = None  # -p / --project-name
    env_files: Sequence[Path] = ()  # --env-file: instead of the project's .env
    profiles: frozenset[str] = frozenset()  # --profile (else COMPOSE_PROFILES)
    environ: Mapping[str, str] | None = None  # default: os.environ
    strict: bool = False  # every warning is an error


def compose_files(main: Path, extra: Sequence[Path]) -> list[Path]:
    """The files to merge: ``main``, then ``extra``; or ``main`` and its override file."""
    if extra:
        return [main, *extra]
    if main.name not in COMPOSE_FILE_NAMES:
        return [main]
    stem = main.name.rsplit(".", 1)[0]
    for suffix in ("yaml", "yml"):
        candidate = main.with_name(f"{stem}.override.{suffix}")
        if candidate.is_file():
            return [main, candidate]
    return [main]


def read_text_file(
    path: Path, what: str, limit: int = MAX_ENV_FILE_BYTES
) -> tuple[str | None, str]:
    """``(text, "")`` of a small UTF-8 regular file, or ``(None, why not)``."""
    try:
        # A FIFO or a device would block or never end: only regular files are read.
        if not stat.S_ISREG(os.stat(path).st_mode):
            return None, f"{what} {str(path)!r} is not a regular file"
        with open(path, "rb") as handle:
            data = handle.read(limit + 1)
    except OSError as exc:
        return None, f"cannot read {what} {str(path)!r}: {exc.strerror or exc}"
    except ValueError as exc:
        return None, f"cannot read {what} {str(path)!r}: {exc}"
    if len(data) > limit:
        return None, f"{what} {str(path)!r} is larger than {limit} bytes"
    try:
        return data.decode("utf-8-sig"), ""
    except UnicodeDecodeError as exc:
        return None, f"{what} {str(path)!r} is not UTF-8 text (byte {exc.start})"


@dataclass(frozen=True)
class ProjectEnvironment:
    """The variables a project's files are interpolated with, and where each came from."""

    environ: Mapping[str, str]
    dotenv: Mapping[str, tuple[str, SourceLocation]] = field(default_factory=dict)

    def lookup(self, name: str) -> str | None:
        """A variable's value: the environment's, else the env files'; None when unset."""
        if name in self.environ:
            return self.environ[name]
        found = self.dotenv.get(name)
        return None if found is None else found[0]

    def origin(self, name: str) -> SourceLocation | None:
        """Where a variable set by an env file (not by the environment) was written."""
        if name in self.environ:
            return None
        found = self.dotenv.get(name)
        return None if found is None else found[1]


def project_environment(
    project_dir: Path, env_files: Sequence[Path], environ: Mapping[str, str]
) -> tuple[ProjectEnvironment, list[Problem], list[Problem]]:
    """The project's variables, with the problems and warnings of its env files."""
    problems: list[Problem] = []
    warnings: list[Problem] = []
    values: dict[str, tuple[str, SourceLocation]] = {}
    files = list(env_files) or [project_dir / ".env"]
    for path in files:
        if not env_files and not path.exists():
            continue  # the default .env is optional; a named --env-file is not
        text, why = read_text_file(path, "env file")
        name = str(path)
        if text is None:
            problems.append(Problem(SourceLocation(name, 1, 1), "", why))
            continue

        def lookup(key: str) -> str | None:
            if key in environ:
                return environ[key]
            found = values.get(key)
            return None if found is None else found[0]

        parsed = parse_dotenv(text, lookup)
        for line, message in parsed.errors:
            problems.append(Problem(SourceLocation(name, line, 1), "", message))
        for line, variable in parsed.missing:
            warnings.append(
                Problem(
                    SourceLocation(name, line, 1),
                    "",
                    f"variable {variable} is not set; using an empty string",
                )
            )
        for key, entry in parsed.values.items():
            values[key] = (entry.value, SourceLocation(name, entry.line, 1))
    return ProjectEnvironment(dict(environ), values), problems, warnings


def directory_project_name(directory: Path) -> str:
    """A project name from a directory name, as docker compose makes it: lowercase, only
    ``a-z 0-9 _ -``, starting with a letter or digit (may be empty)."""
    name = re.sub(r"[^a-z0-9_-]", "", directory.name.lower())
    return name.lstrip("_-")


def check_project_name(name: str) -> str | None:
    """Why ``name`` cannot be a project (and stack) name, or None when it can."""
    if not _PROJECT_NAME.match(name):
        return (
            f"invalid project name {name!r}: it must contain only lowercase letters, digits, "
            "'_' and '-', and start with a letter or digit"
        )
    if len(name) > _MAX_NAME:
        return f"invalid project name {name!r}: declarun stack names are at most {_MAX_NAME} characters"
    return None
