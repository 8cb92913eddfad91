"""Turning the Go parser's generic commands into typed instructions, one builder each.

The PyPI binding returns, per instruction, its keyword, flags, JSON-ness, values and
heredocs. Each builder here checks what BuildKit's ``instructions`` package checks
(argument counts, known flags, stage names, ``ONBUILD`` triggers, ``HEALTHCHECK``
options) and builds the frozen value; it raises :class:`InstructionError`, which the
parser locates at the instruction's line. :data:`BUILDERS` maps upper-case keywords to
builders; :func:`unknown_instruction` words the error for any other keyword.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from typing import Any

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

__all__ = ["BUILDERS", "Builder", "InstructionError", "unknown_instruction"]

_STAGE_NAME = re.compile(r"^[a-z][a-z0-9\-_.]*$")
_ONBUILD_PREFIX = re.compile(r"^\s*ONBUILD\s*", re.IGNORECASE)
_NETWORKS = ("default", "none", "host")
_SECURITY = ("sandbox", "insecure")


class InstructionError(Exception):
    """An error in one instruction, before it is given its file and line."""


Builder = Callable[[Any, Location, str], Instruction]


def _fail(message: str) -> InstructionError:
    return InstructionError(message)


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


BUILDERS: dict[str, Builder] = {
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


def unknown_instruction(keyword: str) -> str:
    """The error text for an unknown keyword, with a suggestion when one is close."""
    message = f"unknown instruction: {keyword}"
    close = difflib.get_close_matches(keyword.upper(), list(BUILDERS), n=1, cutoff=0.6)
    if close:
        message += f" (did you mean {close[0]}?)"
    return message
