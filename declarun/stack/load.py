"""Read a YAML file into plain data plus the source position of every value and key.

PyYAML's constructor loses positions, so the file is *composed* into nodes and converted here.
That is also where hostile input is stopped: the size is capped before parsing, the text must be
UTF-8, aliases are followed with a budget (a "billion laughs" document expands to millions of
nodes from a few lines), nesting depth is bounded, and custom tags are refused. Every problem
becomes a located :class:`~declarun.errors.Problem`; nothing here raises anything else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor

from declarun.errors import Problem, SourceLocation, StackError

__all__ = [
    "MAX_FILE_BYTES",
    "MAX_NODES",
    "DataPath",
    "LoadedDocument",
    "format_path",
    "load_yaml_file",
    "load_yaml_text",
]

#: A stack file larger than this is refused before parsing; real stacks are a few KB.
MAX_FILE_BYTES = 8 * 1024 * 1024
#: Upper bound on values produced after following aliases (defeats alias bombs).
MAX_NODES = 1_000_000
#: Deeper nesting than this is refused (PyYAML itself recurses, so keep well under Python's limit).
MAX_DEPTH = 64

DataPath = tuple[str | int, ...]

_STR = "tag:yaml.org,2002:str"
_TIMESTAMP = "tag:yaml.org,2002:timestamp"
_BINARY = "tag:yaml.org,2002:binary"
_KNOWN_SCALAR_TAGS = {
    _STR,
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
    _TIMESTAMP,
    _BINARY,
}
_INT = "tag:yaml.org,2002:int"
_SEXAGESIMAL = re.compile(r"^[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+$")
_MAP = "tag:yaml.org,2002:map"
# Marks come from PyYAML or from libyaml (a different class); an event may lack one.
_Mark = Any
# libyaml's parser when PyYAML was built with it: the events come from C, ten times faster.
_LOADER: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_SEQ = "tag:yaml.org,2002:seq"


def format_path(path: DataPath) -> str:
    """Render a data path as people read it: ``containers.web.ports[0]``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


Position = tuple[int, int]  # 1-based (line, column)


@dataclass(frozen=True)
class LoadedDocument:
    """The plain data of one YAML file and where each part of it was written.

    Positions are kept as bare (line, column) pairs and become :class:`SourceLocation` only
    when asked for: a big stack has a hundred thousand of them and most are never needed.
    """

    file: str
    data: Any
    value_positions: Mapping[DataPath, Position]
    key_positions: Mapping[DataPath, Position]

    def _at(self, position: Position) -> SourceLocation:
        return SourceLocation(self.file, position[0], position[1])

    def locate(self, path: DataPath) -> SourceLocation:
        """Where ``path`` was written: its key if it is a mapping entry, else its value.

        Paths that do not exist (a missing required field) fall back to the nearest ancestor.
        """
        probe = tuple(path)
        while True:
            found = self.key_positions.get(probe) or self.value_positions.get(probe)
            if found is not None:
                return self._at(found)
            if not probe:
                return SourceLocation(self.file, 1, 1)
            probe = probe[:-1]

    def locate_value(self, path: DataPath) -> SourceLocation:
        """Where the value at ``path`` was written (falls back like :meth:`locate`)."""
        found = self.value_positions.get(tuple(path))
        return self._at(found) if found is not None else self.locate(path)


class _Merge:
    """Stands in a path for the value of a ``<<`` merge key until the mapping is complete."""

    def __init__(self, index: int) -> None:
        self.index = index

    def __repr__(self) -> str:
        return f"<<{self.index}"


_SKIP = object()  # the value of a key that was refused (a non-scalar key)
_UNRESOLVED = object()


@dataclass
class _Frame:
    """A mapping or sequence being filled, while walking the event stream."""

    path: DataPath
    value: Any  # dict or list
    anchor: str | None
    first_entry: int  # index into the entries list where this node's positions start
    start: _Mark
    key: Any = None  # the pending key of a mapping: str, _Merge, _SKIP or None
    seen: dict[str, int] = field(default_factory=dict)  # key -> line, for duplicates
    merges: list[tuple[_Merge, int, int]] = field(default_factory=list)  # (mark, start, end)
    skip_depth: int = 0  # > 0 while discarding a refused key's subtree


Entry = tuple[bool, tuple[Any, ...], Position]  # (is_key, path, (line, column))


class _Converter:
    """Builds plain data and positions straight from the parser's events.

    Working on events rather than composed nodes is what makes big stacks load fast (libyaml
    emits events in C; composing nodes costs an object per value). Aliases are resolved here by
    reference, with a budget of how many values they stand for, so an alias bomb is refused
    before anything is expanded.
    """

    def __init__(self, file: str, resolver: yaml.resolver.BaseResolver | None = None) -> None:
        self.file = file
        self.entries: list[Entry] = []
        self.problems: list[Problem] = []
        self.budget = MAX_NODES
        self.anchors: dict[str, tuple[Any, list[Entry], int, int]] = {}
        self.stack: list[_Frame] = []
        self.root: Any = None
        self.documents = 0
        self.merged: list[bool] = []  # non-empty once a merge key was seen
        self._scalars = SafeConstructor()
        self._resolver = resolver if resolver is not None else yaml.resolver.Resolver()
        self._plain_cache: dict[str, Any] = {}

    # -- helpers ---------------------------------------------------------------------------
    @staticmethod
    def position(mark: _Mark) -> Position:
        if mark is None:
            return (1, 1)
        return (mark.line + 1, mark.column + 1)

    def where(self, mark: _Mark) -> SourceLocation:
        line, column = self.position(mark)
        return SourceLocation(self.file, line, column)

    def problem(self, mark: _Mark, path: DataPath, message: str) -> None:
        self.problems.append(Problem(self.where(mark), format_path(path), message))

    def spend(self, count: int, mark: _Mark) -> None:
        self.budget -= count
        if self.budget < 0:
            raise _TooBig(self.where(mark))

    def child_path(self) -> DataPath:
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            return (*frame.path, len(frame.value))
        return (*frame.path, frame.key)

    def expecting_key(self) -> bool:
        return (
            bool(self.stack)
            and isinstance(self.stack[-1].value, dict)
            and self.stack[-1].key is None
        )

    # -- events ----------------------------------------------------------------------------
    def feed(self, event: yaml.Event) -> None:
        if self.stack and self.stack[-1].skip_depth:
            self._skip(event)
        elif type(event) is yaml.ScalarEvent:
            self._scalar_event(event)
        elif isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            self._start(event)
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            self._end()
        elif isinstance(event, yaml.AliasEvent):
            self._alias(event)
        elif isinstance(event, yaml.DocumentStartEvent):
            self.documents += 1
            if self.documents > 1:
                raise _SecondDocument(self.where(event.start_mark))

    def _skip(self, event: yaml.Event) -> None:
        frame = self.stack[-1]
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            frame.skip_depth += 1
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            frame.skip_depth -= 1
        if frame.skip_depth == 0:
            frame.key = _SKIP  # the refused key's value comes next and is dropped too

    def _scalar_event(self, event: yaml.ScalarEvent) -> None:
        # The hottest path of loading a big stack: kept flat on purpose.
        stack = self.stack
        frame = stack[-1] if stack else None
        mark = event.start_mark
        position = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        if frame is not None and frame.key is None and type(frame.value) is dict:
            self._key_event(event, frame, position)
            return
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig(self.where(mark))
        if frame is None:
            path: tuple[Any, ...] = ()
        elif type(frame.value) is dict:
            path = (*frame.path, frame.key)
        else:
            path = (*frame.path, len(frame.value))
        if event.tag is None and event.implicit[0]:
            value = self._plain_value(event, path)
        else:
            value = self._scalar_value(event, path)
        first = len(self.entries)
        self.entries.append((False, path, position))
        if event.anchor:
            self.anchors[event.anchor] = (value, self.entries[first:], len(path), 1)
        self._attach(value, first)

    def _key_event(self, event: yaml.ScalarEvent, frame: _Frame, position: Position) -> None:
        if event.value == "<<" and event.implicit[0] and event.tag is None:
            frame.key = _Merge(len(frame.merges))
            self.merged.append(True)
            return
        key = event.value
        earlier = frame.seen.get(key)
        if earlier is not None:
            self.problem(
                event.start_mark,
                (*frame.path, key),
                f"duplicate key '{key}' (first defined at line {earlier})",
            )
            frame.key = _SKIP
            return
        frame.seen[key] = position[0]
        frame.key = key
        self.entries.append((True, (*frame.path, key), position))

    def _plain_value(self, event: yaml.ScalarEvent, path: DataPath) -> Any:
        """An untagged plain scalar; stacks repeat them (``true``, ``5s``), so resolve each once."""
        text = event.value
        cached = self._plain_cache.get(text, _UNRESOLVED)
        if cached is not _UNRESOLVED:
            return cached
        problems = len(self.problems)
        value = self._scalar_value(event, path)
        if len(self.problems) == problems:
            self._plain_cache[text] = value
        return value

    def _scalar_value(self, event: yaml.ScalarEvent, path: DataPath) -> Any:
        plain, _quoted = event.implicit
        tag = event.tag
        if tag is None or tag == "!":
            if not plain or tag == "!":
                return event.value
            tag = self._resolver.resolve(  # type: ignore[no-untyped-call]
                yaml.ScalarNode, event.value, (True, False)
            )
            if tag == _INT and _SEXAGESIMAL.match(event.value):
                # YAML 1.1 reads 22:22 as 1342; in a stack it is always a port mapping.
                return event.value
        if tag == _STR:
            return event.value
        if tag not in _KNOWN_SCALAR_TAGS:
            self.problem(event.start_mark, path, f"unsupported YAML tag {tag!r}")
            return event.value
        if tag in (_TIMESTAMP, _BINARY):
            # Dates and binary blobs have no meaning in a stack; keep the text as written.
            return event.value
        node = yaml.ScalarNode(tag, event.value, None, None, event.style)
        try:
            return self._scalars.construct_object(node, deep=True)
        except (ConstructorError, ValueError) as exc:
            self.problem(event.start_mark, path, f"invalid scalar: {exc}")
            return event.value

    def _start(self, event: yaml.MappingStartEvent | yaml.SequenceStartEvent) -> None:
        if self.expecting_key():
            self.problem(
                event.start_mark,
                self.stack[-1].path,
                "a mapping key must be a plain name, not a list or mapping",
            )
            self.stack[-1].skip_depth = 1
            return
        self.spend(1, event.start_mark)
        if len(self.stack) >= MAX_DEPTH:
            raise _TooDeep(self.where(event.start_mark))
        is_map = isinstance(event, yaml.MappingStartEvent)
        path = self.child_path() if self.stack else ()
        if event.tag not in (None, "!", _MAP if is_map else _SEQ):
            self.problem(event.start_mark, path, f"unsupported YAML tag {event.tag!r}")
        first = len(self.entries)
        self.entries.append((False, path, self.position(event.start_mark)))
        self.stack.append(_Frame(path, {} if is_map else [], event.anchor, first, event.start_mark))

    def _end(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.value, dict) and frame.merges:
            self._apply_merges(frame)
        if frame.anchor:
            size = len(self.entries) - frame.first_entry
            self.anchors[frame.anchor] = (
                frame.value,
                self.entries[frame.first_entry :],
                len(frame.path),
                size,
            )
        if self.stack:
            self._attach(frame.value, frame.first_entry)
        else:
            self.root = frame.value

    def _alias(self, event: yaml.AliasEvent) -> None:
        if self.expecting_key():
            self.problem(
                event.start_mark,
                self.stack[-1].path,
                "a mapping key must be a plain name, not an alias",
            )
            self.stack[-1].key = _SKIP
            return
        anchor = self.anchors.get(event.anchor or "")
        path = self.child_path() if self.stack else ()
        if anchor is None:
            self.problem(
                event.start_mark, path, f"invalid YAML: found undefined alias '{event.anchor}'"
            )
            self._attach(None, len(self.entries))
            return
        value, entries, depth, size = anchor
        first = len(self.entries)
        self.spend(size, event.start_mark)
        # The aliased value keeps the positions where the anchor was written.
        self.entries.extend(
            (is_key, (*path, *sub[depth:]), where) for is_key, sub, where in entries
        )
        self._attach(value, first)

    def _attach(self, value: Any, first_entry: int) -> None:
        if not self.stack:
            self.root = value
            return
        frame = self.stack[-1]
        if isinstance(frame.value, list):
            frame.value.append(value)
            return
        key = frame.key
        frame.key = None
        if key is _SKIP:
            return
        if isinstance(key, _Merge):
            frame.merges.append((key, first_entry, len(self.entries)))
            frame.value[key] = value
            return
        frame.value[key] = value

    def _apply_merges(self, frame: _Frame) -> None:
        """YAML merge keys (``<<: *defaults``): explicit keys win over merged ones."""
        mapping: dict[Any, Any] = frame.value
        for merge, first, last in frame.merges:
            merged = mapping.pop(merge)
            sources = merged if isinstance(merged, list) else [merged]
            if not all(isinstance(source, dict) for source in sources):
                self.problem(
                    frame.start, frame.path, "'<<' must merge a mapping or a list of mappings"
                )
                continue
            for position, source in enumerate(sources):
                prefix = (
                    (*frame.path, merge)
                    if not isinstance(merged, list)
                    else (*frame.path, merge, position)
                )
                taken = {key for key in source if key not in mapping}
                mapping.update((key, source[key]) for key in taken)
                self._move_positions(first, last, prefix, taken, frame.path)

    def _move_positions(
        self, first: int, last: int, prefix: tuple[Any, ...], keys: set[str], target: DataPath
    ) -> None:
        """Re-record the positions of merged ``keys`` from under ``prefix`` to ``target``."""
        size = len(prefix)
        moved = [
            (is_key, (*target, *path[size:]), where)
            for is_key, path, where in self.entries[first:last]
            if len(path) > size and path[:size] == prefix and path[size] in keys
        ]
        self.entries.extend(moved)

    def positions(self) -> tuple[dict[DataPath, Position], dict[DataPath, Position]]:
        values: dict[DataPath, Position] = {}
        keys: dict[DataPath, Position] = {}
        merged = any(frame_merges for frame_merges in self.merged)
        for is_key, path, where in self.entries:
            if merged and any(isinstance(part, _Merge) for part in path):
                continue
            (keys if is_key else values).setdefault(path, where)
        return values, keys


class _TooBig(Exception):
    def __init__(self, where: SourceLocation) -> None:
        self.where = where


class _TooDeep(Exception):
    def __init__(self, where: SourceLocation) -> None:
        self.where = where


class _SecondDocument(Exception):
    def __init__(self, where: SourceLocation) -> None:
        self.where = where


def _line(text: str, mark: _Mark) -> str:
    lines = text.splitlines()
    return lines[mark.line] if mark is not None and 0 <= mark.line < len(lines) else ""


def _char(text: str, mark: _Mark) -> str:
    line = _line(text, mark)
    return line[mark.column] if mark is not None and 0 <= mark.column < len(line) else ""


def _plain_words(exc: yaml.MarkedYAMLError, text: str) -> tuple[str, _Mark] | None:
    """The parser's complaint in plain words, with the place to point at; None when it is
    not one of the usual suspects (then its own words are shown)."""
    problem, mark, start = exc.problem or "", exc.problem_mark, exc.context_mark
    at = f"line {start.line + 1}" if start is not None else "above"
    if "tab character" in problem:
        return "a tab: YAML indents with spaces only; replace the tab with spaces", mark
    if "cannot start any token" in problem:
        found = _char(text, mark)
        if found == "\t":
            return "a tab: YAML indents with spaces only; replace the tab with spaces", mark
        return f"{found!r} cannot start a value here: put the value in quotes", mark
    if "mapping values are not allowed" in problem:
        line = _line(text, mark)
        before = line[: mark.column] if mark is not None else ""
        if ":" in before.strip():
            return (
                "this value contains ': ', which YAML reads as a second key on the line: "
                "put the value in quotes",
                mark,
            )
        return (
            "unexpected key: this line is indented deeper than it should be (a key cannot "
            "go inside a plain value); indent it like the keys beside it",
            mark,
        )
    if "did not find expected key" in problem and "block mapping" in (exc.context or ""):
        found = _char(text, mark)
        if found in ("}", "]"):
            return f"an unexpected {found!r}: it closes nothing", mark
        column = f" (column {start.column + 1})" if start is not None else ""
        return (
            "bad indentation: this line does not line up with the keys of the mapping it "
            f"belongs to, which starts at {at}{column}; keys of one mapping start in the "
            "same column",
            mark,
        )
    if "could not find expected ':'" in problem:
        word = _line(text, start).strip() if start is not None else ""
        return f"{word!r} has no ':' after it: a key needs one (or the line above is unfinished)", (
            start or mark
        )
    if "quoted scalar" in (exc.context or "") and "end of stream" in problem:
        return f"a quoted text that opens at {at} is never closed", start or mark
    if "flow sequence" in (exc.context or "") or "flow mapping" in (exc.context or ""):
        kind = "[...] list" if "sequence" in (exc.context or "") else "{...} mapping"
        return (
            f"the {kind} that opens at {at} is not closed, or two of its items lack a ',' "
            "between them",
            mark,
        )
    return None


def _yaml_error_problem(file: str, exc: yaml.YAMLError, text: str = "") -> Problem:
    if isinstance(exc, yaml.reader.ReaderError):
        text = f"unacceptable character #x{exc.character:04x} at position {exc.position}"
        return Problem(SourceLocation(file, 1, 1), "", f"invalid YAML: {text}")
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        plain = _plain_words(exc, text)
        if plain is not None:
            message, mark = plain[0], plain[1] or mark
            line = mark.line + 1 if mark is not None else 1
            column = mark.column + 1 if mark is not None else 1
            return Problem(SourceLocation(file, line, column), "", f"invalid YAML: {message}")
        message = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    else:
        message = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
    line = mark.line + 1 if mark is not None else 1
    column = mark.column + 1 if mark is not None else 1
    return Problem(SourceLocation(file, line, column), "", f"invalid YAML: {message}")


def load_yaml_text(
    text: str, file: str, *, resolver: yaml.resolver.BaseResolver | None = None
) -> LoadedDocument:
    """Parse YAML text into a :class:`LoadedDocument`, raising :class:`StackError` on any problem.

    ``resolver`` decides what plain scalars mean (default: PyYAML's YAML 1.1 rules, which stack
    files use); the Compose front end passes YAML 1.2's, as docker compose reads its files.
    """
    origin = SourceLocation(file, 1, 1)
    converter = _Converter(file, resolver)
    try:
        for event in yaml.parse(text, Loader=_LOADER):
            converter.feed(event)
    except yaml.YAMLError as exc:
        raise StackError([*converter.problems, _yaml_error_problem(file, exc, text)]) from None
    except _TooBig as exc:
        raise StackError(
            [
                Problem(
                    exc.where,
                    "",
                    f"the document expands to more than {MAX_NODES:,} values through "
                    "aliases (an alias bomb?)",
                )
            ]
        ) from None
    except _TooDeep as exc:
        raise StackError(
            [Problem(exc.where, "", f"the document is nested deeper than {MAX_DEPTH} levels")]
        ) from None
    except _SecondDocument as exc:
        raise StackError(
            [
                Problem(
                    exc.where,
                    "",
                    "invalid YAML: expected a single document in the stream but found "
                    "another document",
                )
            ]
        ) from None
    if converter.problems:
        raise StackError(converter.problems)
    if converter.documents == 0:
        raise StackError([Problem(origin, "", "the file is empty")])
    values, keys = converter.positions()
    return LoadedDocument(file, converter.root, values, keys)


def load_yaml_file(
    path: Path,
    display_name: str | None = None,
    *,
    resolver: yaml.resolver.BaseResolver | None = None,
) -> LoadedDocument:
    """Read and parse a YAML file with the size, encoding and structure limits above
    (``resolver`` as in :func:`load_yaml_text`)."""
    name = display_name or str(path)
    origin = SourceLocation(name, 1, 1)
    try:
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except IsADirectoryError:
        raise StackError([Problem(origin, "", "is a directory, not a stack file")]) from None
    except FileNotFoundError:
        raise StackError([Problem(origin, "", "no such file")]) from None
    except OSError as exc:
        raise StackError([Problem(origin, "", f"cannot read: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_FILE_BYTES:
        raise StackError(
            [
                Problem(
                    origin,
                    "",
                    f"the file is larger than {MAX_FILE_BYTES // (1024 * 1024)} MiB; "
                    "a stack file is expected to be small text",
                )
            ]
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        column = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise StackError(
            [
                Problem(
                    SourceLocation(name, line, column),
                    "",
                    f"the file is not UTF-8 text (invalid byte 0x{raw[exc.start]:02x})",
                )
            ]
        ) from None
    if "\x00" in text:
        raise StackError([Problem(origin, "", "the file contains NUL bytes; is it binary?")])
    return load_yaml_text(text.removeprefix("\ufeff"), name, resolver=resolver)
