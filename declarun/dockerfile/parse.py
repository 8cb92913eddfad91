"""Parsing a Dockerfile into stages of typed instructions, with BuildKit's own parser.

The grammar (continuation lines, comments, JSON forms, heredoc bodies, the escape
directive) is the PyPI ``dockerfile`` package's job: it binds BuildKit's Go parser. This
module turns its generic ``Command`` records into :mod:`~declarun.dockerfile.instructions`
values (one builder per instruction in :mod:`declarun.dockerfile.builders`, with the checks
BuildKit's ``instructions`` package makes), adds the stage structure, and turns every error into a :class:`DockerfileError` that
names the file, the line and the instruction::

    Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)

The Go parser's own errors (an unterminated heredoc, ``ENV a`` without a value) come without
a line; the line is found by parsing ever longer prefixes of the file until the same error
appears, which costs nothing on the success path.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import dockerfile as gofile  # PyPI's binding of BuildKit's parser, not this package

from declarun.dockerfile.builders import BUILDERS, InstructionError, unknown_instruction
from declarun.dockerfile.directives import Directives, read_directives
from declarun.dockerfile.errors import DockerfileError
from declarun.dockerfile.instructions import Arg, From, Instruction, Location

__all__ = ["Dockerfile", "Stage", "parse_dockerfile", "parse_trigger"]


@dataclass(frozen=True)
class Stage:
    """One ``FROM`` and the instructions up to the next; ``index`` counts from 0."""

    index: int
    name: str | None
    from_: From
    instructions: tuple[Instruction, ...]

    @property
    def display_name(self) -> str:
        """The name, or ``stage-N`` for an unnamed stage (BuildKit's wording)."""
        return self.name or f"stage-{self.index}"


@dataclass(frozen=True)
class Dockerfile:
    """A parsed Dockerfile: directives, the ``ARG``s before the first ``FROM``, the stages."""

    file: str
    directives: Directives
    meta_args: tuple[Arg, ...]
    stages: tuple[Stage, ...]

    @property
    def escape(self) -> str:
        """The escape character (``\\`` unless a ``# escape=`` directive says `` ` ``)."""
        return self.directives.escape


def _original(command: Any, lines: Sequence[str]) -> str:
    original = str(command.original)
    # The binding drops the body of an ONBUILD's heredoc; take it from the source lines.
    if command.cmd.upper() == "ONBUILD" and command.end_line > command.start_line:
        body = lines[command.start_line : command.end_line]
        original = original + "\n" + "\n".join(body)
    return original


def _build(command: Any, file: str, lines: Sequence[str]) -> Instruction:
    keyword = str(command.cmd)
    location = Location(file, int(command.start_line), int(command.end_line))
    builder = BUILDERS.get(keyword.upper())
    if builder is None:
        raise DockerfileError(
            unknown_instruction(keyword), file=file, line=location.start_line, instruction=keyword
        )
    try:
        return builder(command, location, _original(command, lines))
    except (InstructionError, ValueError) as exc:
        raise DockerfileError(
            str(exc), file=file, line=location.start_line, instruction=keyword
        ) from None


def _locate(text: str, message: str) -> int:
    """The first line at which parsing the file's prefix fails with ``message``."""
    lines = text.split("\n")
    for count in range(1, len(lines) + 1):
        try:
            gofile.parse_string("\n".join(lines[:count]) + "\n")
        except gofile.GoParseError as exc:
            if str(exc) == message:
                return count
    return 0


def _go_parse(text: str, file: str) -> tuple[Any, ...]:
    try:
        return tuple(gofile.parse_string(text))
    except gofile.GoParseError as exc:
        message = str(exc)
        if message == "file with no instructions":
            raise DockerfileError("the Dockerfile has no instructions", file=file, line=0) from None
        line = _locate(text, message)
        keyword = ""
        if line:
            words = text.split("\n")[line - 1].split()
            keyword = words[0] if words else ""
        raise DockerfileError(message, file=file, line=line, instruction=keyword) from None


def _decode(source: str | bytes, file: str) -> str:
    if isinstance(source, str):
        return source.removeprefix("\ufeff")
    try:
        return source.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        raise DockerfileError(f"not UTF-8 text ({exc.reason})", file=file, line=0) from None


def parse_dockerfile(source: str | bytes, *, file: str = "Dockerfile") -> Dockerfile:
    """Parse a Dockerfile; ``file`` is the name errors and locations use.

    Raises :class:`DockerfileError` (an ``InvalidArgument``) naming file, line and
    instruction for a syntax error, an unknown instruction, a bad flag or argument, an
    instruction before the first ``FROM`` other than ``ARG``, or a stage name used twice.
    """
    text = _decode(source, file)
    directives = read_directives(text, file=file)
    if "\x00" in text:
        raise DockerfileError("the Dockerfile holds a NUL byte", file=file, line=0)
    lines = text.split("\n")
    meta_args: list[Arg] = []
    stages: list[Stage] = []
    current: tuple[From, list[Instruction]] | None = None
    names: dict[str, int] = {}
    for command in _go_parse(text, file):
        instruction = _build(command, file, lines)
        if isinstance(instruction, From):
            if current is not None:
                stages.append(Stage(len(stages), current[0].name, current[0], tuple(current[1])))
            if instruction.name is not None:
                if instruction.name in names:
                    raise DockerfileError(
                        f'duplicate stage name "{instruction.name}" '
                        f"(first used on line {names[instruction.name]})",
                        file=file,
                        line=instruction.location.start_line,
                        instruction="FROM",
                    )
                names[instruction.name] = instruction.location.start_line
            current = (instruction, [])
        elif current is None:
            if not isinstance(instruction, Arg):
                raise DockerfileError(
                    "no build stage in current context: only ARG may come before the first FROM",
                    file=file,
                    line=instruction.location.start_line,
                    instruction=command.cmd,
                )
            meta_args.append(instruction)
        else:
            current[1].append(instruction)
    if current is None:
        raise DockerfileError("the Dockerfile has no FROM instruction", file=file, line=0)
    stages.append(Stage(len(stages), current[0].name, current[0], tuple(current[1])))
    return Dockerfile(file, directives, tuple(meta_args), tuple(stages))


def parse_trigger(expression: str, *, file: str, line: int) -> Instruction:
    """Parse one ``ONBUILD`` trigger of a base image (``RUN echo hi``).

    Errors are located at ``file:line`` (the ``FROM`` that inherited the trigger), as
    BuildKit does.
    """
    commands = _go_parse(expression + "\n", file)
    if len(commands) != 1:
        raise DockerfileError("onbuild trigger should be a single expression", file=file, line=line)
    command = commands[0]
    keyword = str(command.cmd).upper()
    if keyword in ("ONBUILD", "FROM", "MAINTAINER"):
        raise DockerfileError(
            f"{keyword} isn't allowed as an ONBUILD trigger", file=file, line=line
        )
    instruction = _build(command, file, expression.split("\n"))
    return replace(instruction, location=Location(file, line, line))
