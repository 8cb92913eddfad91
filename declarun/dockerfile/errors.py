"""The errors the Dockerfile frontend raises: all of them are :class:`InvalidArgument`.

Whatever goes wrong in the frontend is the caller's input (a Dockerfile, a build argument, a
``.dockerignore`` pattern, a ``COPY`` source that is not in the context), so every error is an
``errdefs.InvalidArgument``; declarund's API turns it into a 400 and the CLI into a message.
An error tied to a Dockerfile line carries the file name, the line and the instruction, and
its message starts ``Dockerfile:7:`` as compilers' messages do.
"""

from __future__ import annotations

from declarun.errdefs import InvalidArgument

__all__ = [
    "BuildTargetError",
    "CopySourceError",
    "DockerfileError",
    "FrontendError",
    "IgnorePatternError",
    "SubstitutionError",
]


class FrontendError(InvalidArgument):
    """Base of the frontend's errors."""


class DockerfileError(FrontendError):
    """A Dockerfile that cannot be parsed or evaluated, located at ``file:line``.

    ``instruction`` is the instruction's keyword as written (``RUNN``), or empty when the
    error is not about one instruction (an empty file).
    """

    def __init__(self, message: str, *, file: str, line: int, instruction: str = "") -> None:
        self.message = message
        self.file = file
        self.line = line
        self.instruction = instruction
        where = f"{file}:{line}: " if line > 0 else f"{file}: "
        keyword = instruction.upper()
        # Most messages already name the instruction ("ENV requires ..."); say it when not.
        if keyword and keyword not in message.upper():
            message = f"{keyword}: {message}"
        super().__init__(where + message)


class SubstitutionError(FrontendError):
    """A ``$var`` expression that does not parse or a ``${x:?msg}`` on an unset variable."""


class BuildTargetError(FrontendError):
    """``target`` names no stage of the Dockerfile."""


class CopySourceError(FrontendError):
    """A ``COPY``/``ADD`` source that is missing, outside the context or unusable."""


class IgnorePatternError(FrontendError):
    """A ``.dockerignore`` pattern that is not a valid pattern."""
