"""Parsing a Dockerfile into stages of typed instructions, with BuildKit's own parser.

The grammar (continuation lines, comments, JSON forms, heredoc bodies, the escape
directive) is the PyPI ``dockerfile`` package's job: it binds BuildKit's Go parser. This
module turns its generic ``Command`` records into :mod:`~declarun.dockerfile.instructions`
values with the checks BuildKit's ``instructions`` package makes (argument counts, flags,
stage names, ``ONBUILD`` triggers), and every error into a :class:`DockerfileError` that
names the file, the line and the instruction::

    Dockerfile:7: unknown instruction: RUNN (did you mean RUN?)

The Go parser's own errors (an unterminated heredoc, ``ENV a`` without a value) come without
a line; the line is found by parsing ever longer prefixes of the file until the same error
appears, which costs nothing on the success path.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import dockerfile as gofile  # PyPI's binding of BuildKit's parser, not this package

from declarun.dockerfile.directives import Directives, read_directives
from declarun.dockerfile.errors import DockerfileError
from declarun.dockerfile.flags import FlagKind, Flags, parse_flags
from declarun.dockerfile.gofmt import parse_go_duration
from declarun.dockerfile.heredoc import heredoc_marker, heredoc_markers
from declarun.dockerfile.instructions import (
    Add,
    Arg,
    ArgDefinition,
    Cmd,
    Copy,
    Entrypoint,
    Env,
    Expose,
    From,
    Healthcheck,
    Heredoc,
    Instruction,
    KeyValue,
    Label,
    Location,
    Maintainer,
    Onbuild,
    Run,
    Shell,
    StopSignal,
    User,
    Volume,
    Workdir,
)
from declarun.dockerfile.mounts import parse_mount

__all__ = ["Dockerfile", "Stage", "parse_dockerfile", "parse_trigger"]

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)
_NETWORKS = ("default", "none", "host")
_SECURITY = ("sandbox", "insecure")


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


class _InstructionError(Exception):
    """An error in one instruction, before it is given its file and line."""


_Builder = Callable[[Any, Location, str], Instruction]


def _fail(message: str) -> _InstructionError:
    return _InstructionError(message)


def _flags(command: Any, known: dict[str, FlagKind]) -> Flags:
    try:
        return parse_flags(command.flags, known)
    except ValueError as exc:
        raise _fail(str(exc)) from None


def _no_flags(command: Any) -> None:
    _flags(command, {})


def _heredocs(command: Any, original: str) -> tuple[Heredoc, ...]:
    first_line = original.split("\n", 1)[0]
    markers = {marker.name: marker for marker in heredoc_markers(first_line)}
    found = []
    for doc in command.heredocs:
        marker = markers.get(doc.name)
        found.append(
            Heredoc(
                name=doc.name,
                content=doc.content,
                expand=marker.expand if marker else True,
                chomp=marker.chomp if marker else False,
                fd=doc.file_descriptor,
            )
        )
    return tuple(found)


def _from(command: Any, location: Location, original: str) -> From:
    flags = _flags(command, {"platform": "string"})
    args = list(command.value)
    name: str | None = None
    if len(args) == 3 and args[1].lower() == "as":
        name = args[2].lower()
        if not _STAGE_NAME.match(name):
            raise _fail(
                f'invalid name for build stage: "{args[2]}", '
                "name can't start with a number or contain symbols"
            )
    elif len(args) != 1:
        raise _fail("FROM requires either one or three arguments")
    return From(location, original, base=args[0], name=name, platform=flags.string("platform"))


def _run(command: Any, location: Location, original: str) -> Run:
    flags = _flags(command, {"mount": "strings", "network": "string", "security": "string"})
    network = flags.string("network") or "default"
    if network not in _NETWORKS:
        raise _fail(f'invalid network mode "{network}"')
    security = flags.string("security") or "sandbox"
    if security not in _SECURITY:
        raise _fail(f'unsupported security mode "{security}"')
    specs = flags.strings("mount")
    # Specs with variables are checked after substitution, by the evaluator.
    mounts = tuple(parse_mount(spec) for spec in specs if "$" not in spec)
    heredocs = _heredocs(command, original)
    if heredocs and (command.json or len(command.value) != 1):
        raise _fail(f"parsing produced an invalid run command: {list(command.value)}")
    return Run(
        location,
        original,
        command=_command_line(command)[0],
        shell_form=not command.json,
        heredocs=heredocs,
        mount_specs=specs,
        mounts=mounts if len(mounts) == len(specs) else (),
        network=network,
        security=security,
    )


def _sources_and_dest(
    command: Any, name: str, original: str
) -> tuple[tuple[str, ...], tuple[Heredoc, ...], str]:
    args = list(command.value)
    if len(args) < 2:
        raise _fail(
            f"{name} requires at least two arguments, but only one was provided. "
            "Destination could not be determined"
        )
    dest = args[-1]
    if heredoc_marker(dest) is not None:
        raise _fail(f"{name} cannot accept a heredoc as a destination")
    docs = {doc.name: doc for doc in _heredocs(command, original)}
    sources: list[str] = []
    contents: list[Heredoc] = []
    for source in args[:-1]:
        marker = None if command.json else heredoc_marker(source)
        if marker is None:
            sources.append(source)
            continue
        doc = docs.get(marker.name)
        content = doc.content if doc else ""
        contents.append(Heredoc(marker.name, content, marker.expand, marker.chomp, marker.fd))
    return tuple(sources), tuple(contents), dest


def _copy(command: Any, location: Location, original: str) -> Copy:
    flags = _flags(
        command,
        {
            "from": "string",
            "chown": "string",
            "chmod": "string",
            "link": "bool",
            "parents": "bool",
            "exclude": "strings",
        },
    )
    sources, contents, dest = _sources_and_dest(command, "COPY", original)
    return Copy(
        location,
        original,
        sources=sources,
        heredocs=contents,
        dest=dest,
        from_=flags.string("from"),
        chown=flags.string("chown"),
        chmod=flags.string("chmod"),
        link=bool(flags.boolean("link")),
        parents=bool(flags.boolean("parents")),
        excludes=flags.strings("exclude"),
        json_form=bool(command.json),
    )


def _add(command: Any, location: Location, original: str) -> Add:
    flags = _flags(
        command,
        {
            "chown": "string",
            "chmod": "string",
            "link": "bool",
            "keep-git-dir": "bool",
            "checksum": "string",
            "unpack": "bool",
            "exclude": "strings",
        },
    )
    sources, contents, dest = _sources_and_dest(command, "ADD", original)
    return Add(
        location,
        original,
        sources=sources,
        heredocs=contents,
        dest=dest,
        chown=flags.string("chown"),
        chmod=flags.string("chmod"),
        link=bool(flags.boolean("link")),
        checksum=flags.string("checksum"),
        keep_git_dir=flags.boolean("keep-git-dir"),
        unpack=flags.boolean("unpack"),
        excludes=flags.strings("exclude"),
        json_form=bool(command.json),
    )


def _pairs(command: Any, name: str) -> tuple[KeyValue, ...]:
    values = list(command.value)
    if not values:
        raise _fail(f"{name} requires at least one argument")
    if len(values) % 2:
        raise _fail(f"Bad input to {name}, too many arguments")
    pairs = []
    for key, value in zip(values[::2], values[1::2], strict=True):
        if not key:
            raise _fail(f"{name} names can not be blank")
        pairs.append(KeyValue(key, value))
    return tuple(pairs)


def _env(command: Any, location: Location, original: str) -> Env:
    _no_flags(command)
    return Env(location, original, pairs=_pairs(command, "ENV"))


def _label(command: Any, location: Location, original: str) -> Label:
    _no_flags(command)
    return Label(location, original, pairs=_pairs(command, "LABEL"))


def _arg(command: Any, location: Location, original: str) -> Arg:
    _no_flags(command)
    if not command.value:
        raise _fail("ARG requires at least one argument")
    definitions = []
    for word in command.value:
        key, has_value, value = word.partition("=")
        if has_value and not key:
            raise _fail("ARG names can not be blank")
        definitions.append(ArgDefinition(key, value if has_value else None))
    return Arg(location, original, args=tuple(definitions))


def _one(command: Any, name: str) -> str:
    _no_flags(command)
    if len(command.value) != 1:
        raise _fail(f"{name} requires exactly one argument")
    return str(command.value[0])


def _workdir(command: Any, location: Location, original: str) -> Workdir:
    return Workdir(location, original, path=_one(command, "WORKDIR"))


def _user(command: Any, location: Location, original: str) -> User:
    return User(location, original, user=_one(command, "USER"))


def _stopsignal(command: Any, location: Location, original: str) -> StopSignal:
    return StopSignal(location, original, signal=_one(command, "STOPSIGNAL"))


def _maintainer(command: Any, location: Location, original: str) -> Maintainer:
    return Maintainer(location, original, maintainer=_one(command, "MAINTAINER"))


def _command_line(command: Any) -> tuple[tuple[str, ...], bool]:
    if command.json:
        return tuple(command.value), False
    if not command.value:
        return (), True
    return (" ".join(command.value),), True


def _cmd(command: Any, location: Location, original: str) -> Cmd:
    _no_flags(command)
    argv, shell_form = _command_line(command)
    return Cmd(location, original, command=argv, shell_form=shell_form)


def _entrypoint(command: Any, location: Location, original: str) -> Entrypoint:
    _no_flags(command)
    argv, shell_form = _command_line(command)
    return Entrypoint(location, original, command=argv or None, shell_form=shell_form)


def _shell(command: Any, location: Location, original: str) -> Shell:
    _no_flags(command)
    if not command.value:
        raise _fail("SHELL requires at least one argument")
    if not command.json:
        raise _fail("SHELL requires the arguments to be in JSON form")
    return Shell(location, original, shell=tuple(command.value))


def _expose(command: Any, location: Location, original: str) -> Expose:
    _no_flags(command)
    if not command.value:
        raise _fail("EXPOSE requires at least one argument")
    return Expose(location, original, ports=tuple(sorted(command.value)))


def _volume(command: Any, location: Location, original: str) -> Volume:
    _no_flags(command)
    if not command.value:
        raise _fail("VOLUME requires at least one argument")
    paths = tuple(str(v).strip() for v in command.value)
    if any(not p for p in paths):
        raise _fail("VOLUME specified can not be an empty string")
    return Volume(location, original, paths=paths)


def _interval(flags: Flags, name: str) -> int:
    text = flags.string(name)
    if not text:
        return 0
    try:
        value = parse_go_duration(text)
    except ValueError as exc:
        raise _fail(str(exc)) from None
    if 0 < value < 1_000_000 or value < 0:
        raise _fail(f'Interval "{name}" cannot be less than 1ms')
    return value


def _healthcheck(command: Any, location: Location, original: str) -> Healthcheck:
    args = list(command.value)
    if not args:
        raise _fail("HEALTHCHECK requires at least one argument")
    kind = args[0].upper()
    if kind == "NONE":
        if len(args) > 1:
            raise _fail("HEALTHCHECK NONE takes no arguments")
        _no_flags(command)
        return Healthcheck(location, original, test=("NONE",))
    flags = _flags(
        command,
        {
            "interval": "string",
            "timeout": "string",
            "start-period": "string",
            "start-interval": "string",
            "retries": "string",
        },
    )
    if kind != "CMD":
        raise _fail(f'Unknown type "{kind}" in HEALTHCHECK (try CMD)')
    rest = args[1:]
    if not rest:
        raise _fail("Missing command after HEALTHCHECK CMD")
    test = ("CMD", *rest) if command.json else ("CMD-SHELL", " ".join(rest))
    retries = 0
    if (text := flags.string("retries")) is not None and text != "":
        try:
            retries = int(text, 10)
        except ValueError:
            raise _fail(f'strconv.ParseInt: parsing "{text}": invalid syntax') from None
        if retries < 0:
            raise _fail(f"--retries cannot be negative ({retries})")
    return Healthcheck(
        location,
        original,
        test=test,
        interval=_interval(flags, "interval"),
        timeout=_interval(flags, "timeout"),
        start_period=_interval(flags, "start-period"),
        start_interval=_interval(flags, "start-interval"),
        retries=retries,
    )


def _onbuild(command: Any, location: Location, original: str) -> Onbuild:
    _no_flags(command)
    trigger = (command.sub_cmd or "").upper()
    if not trigger:
        raise _fail("ONBUILD requires at least one argument")
    if trigger == "ONBUILD":
        raise _fail("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed")
    if trigger in ("MAINTAINER", "FROM"):
        raise _fail(f"{trigger} isn't allowed as an ONBUILD trigger")
    expression = _ONBUILD_PREFIX.sub("", original, count=1)
    return Onbuild(location, original, expression=expression, trigger_keyword=trigger)


_BUILDERS: dict[str, _Builder] = {
    "FROM": _from,
    "RUN": _run,
    "COPY": _copy,
    "ADD": _add,
    "ENV": _env,
    "ARG": _arg,
    "WORKDIR": _workdir,
    "USER": _user,
    "CMD": _cmd,
    "ENTRYPOINT": _entrypoint,
    "EXPOSE": _expose,
    "LABEL": _label,
    "VOLUME": _volume,
    "HEALTHCHECK": _healthcheck,
    "STOPSIGNAL": _stopsignal,
    "ONBUILD": _onbuild,
    "SHELL": _shell,
    "MAINTAINER": _maintainer,
}


def _unknown(keyword: str) -> str:
    message = f"unknown instruction: {keyword}"
    close = difflib.get_close_matches(keyword.upper(), list(_BUILDERS), n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]}?)"
    return message


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
    builder = _BUILDERS.get(keyword.upper())
    if builder is None:
        raise DockerfileError(
            _unknown(keyword), file=file, line=location.start_line, instruction=keyword
        )
    try:
        return builder(command, location, _original(command, lines))
    except (_InstructionError, ValueError) as exc:
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
