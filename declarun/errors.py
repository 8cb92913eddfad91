"""The one exception hierarchy of declarun.

Every error that a user can cause is one of these; the CLI turns them into a message and a
non-zero exit, never a traceback::

    DeclarunError
    ├── StackError            a stack file (or its vars/env files) is invalid; carries all problems
    ├── EngineError           the container engine refused or failed a request
    └── DaemonError           declarund itself cannot start or serve (bad flags, data root locked)
        ├── ImageReferenceError an image reference does not parse (see declarun.reference)
        ├── RegistryError     a registry answered with an error or dropped the connection
        ├── ContentError      a blob or manifest failed verification or storage
        └── UnpackError       a layer is malformed or hostile

Beside these *domains*, :mod:`declarun.errdefs` holds the error *kinds* (not found, conflict,
invalid argument, ...), also under :class:`DeclarunError`. A lower layer raises an error that
is of a kind (often a domain error inheriting one), and only an edge — declarund's HTTP API,
the engine adapter, the CLI — translates the kind into its own vocabulary.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "ContentError",
    "DaemonError",
    "DeclarunError",
    "EngineError",
    "ImageReferenceError",
    "Problem",
    "RegistryError",
    "SourceLocation",
    "StackError",
    "UnpackError",
]


class DeclarunError(Exception):
    """Base of every error declarun raises on purpose."""


@dataclass(frozen=True, order=True)
class SourceLocation:
    """A place in a file the user wrote: 1-based line and column."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a stack file, located where the user can find it.

    ``path`` is the dotted field path (``containers.web.ports[0]``); ``hint`` an optional
    suggestion such as a likely intended spelling.
    """

    location: SourceLocation
    path: str
    message: str
    hint: str | None = None

    def __str__(self) -> str:
        where = f"{self.location}: "
        field_part = f"{self.path}: " if self.path else ""
        hint = f"; {self.hint}" if self.hint else ""
        return f"{where}{field_part}{self.message}{hint}"

    def sort_key(self) -> tuple[str, int, int, str, str]:
        loc = self.location
        return (loc.file, loc.line, loc.column, self.path, self.message)


@dataclass
class StackError(DeclarunError):
    """A stack file is invalid. Holds every problem found, sorted by position."""

    problems: list[Problem] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.problems = sorted(set(self.problems), key=Problem.sort_key)
        super().__init__(self.__str__())

    def __str__(self) -> str:
        return "\n".join(str(p) for p in self.problems)


class EngineError(DeclarunError):
    """The container engine refused or failed a request."""


class DaemonError(DeclarunError):
    """declarund cannot start or serve."""


class ImageReferenceError(DaemonError, ValueError):
    """An image reference does not parse."""


class RegistryError(DaemonError):
    """A registry answered with an error, or the connection failed."""


class ContentError(DaemonError):
    """A blob or manifest failed verification or could not be stored."""


class UnpackError(DaemonError):
    """A layer tarball is malformed or tries to escape its root."""
