"""Read a YAML file into plain data plus the source position of every value and key.

PyYAML's constructor loses positions, so the file is *composed* into nodes and converted here.
That is also where hostile input is stopped: the size is capped before parsing, the text must be
UTF-8, aliases are followed with a budget (a "billion laughs" document expands to millions of
nodes from a few lines), nesting depth is bounded, and custom tags are refused. Every problem
becomes a located :class:`~declarun.errors.Problem`; nothing here raises anything else.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from yaml.constructor import ConstructorError, SafeConstructor
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

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
_MERGE = "tag:yaml.org,2002:merge"
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
_MAP = "tag:yaml.org,2002:map"
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


@dataclass(frozen=True)
class LoadedDocument:
    """The plain data of one YAML file and where each part of it was written."""

    file: str
    data: Any
    value_locations: Mapping[DataPath, SourceLocation]
    key_locations: Mapping[DataPath, SourceLocation]

    def locate(self, path: DataPath) -> SourceLocation:
        """Where ``path`` was written: its key if it is a mapping entry, else its value.

        Paths that do not exist (a missing required field) fall back to the nearest ancestor.
        """
        probe = tuple(path)
        while True:
            found = self.key_locations.get(probe) or self.value_locations.get(probe)
            if found is not None:
                return found
            if not probe:
                return SourceLocation(self.file, 1, 1)
            probe = probe[:-1]

    def locate_value(self, path: DataPath) -> SourceLocation:
        """Where the value at ``path`` was written (falls back like :meth:`locate`)."""
        found = self.value_locations.get(tuple(path))
        return found if found is not None else self.locate(path)


def _location(file: str, node: Node) -> SourceLocation:
    mark = node.start_mark
    return SourceLocation(file, mark.line + 1, mark.column + 1)


class _Converter:
    """Turns a composed node tree into plain data, recording positions and problems."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.values: dict[DataPath, SourceLocation] = {}
        self.keys: dict[DataPath, SourceLocation] = {}
        self.problems: list[Problem] = []
        self.budget = MAX_NODES
        self._scalars = SafeConstructor()

    def problem(self, node: Node, path: DataPath, message: str) -> None:
        self.problems.append(Problem(_location(self.file, node), format_path(path), message))

    def convert(self, node: Node, path: DataPath, depth: int = 0) -> Any:
        self.budget -= 1
        if self.budget < 0:
            raise _TooBig(node)
        if depth > MAX_DEPTH:
            raise _TooDeep(node)
        self.values.setdefault(path, _location(self.file, node))
        if isinstance(node, ScalarNode):
            return self._scalar(node, path)
        if isinstance(node, SequenceNode):
            if node.tag != _SEQ:
                self.problem(node, path, f"unsupported YAML tag {node.tag!r}")
            return [self.convert(item, (*path, i), depth + 1) for i, item in enumerate(node.value)]
        if isinstance(node, MappingNode):
            if node.tag != _MAP:
                self.problem(node, path, f"unsupported YAML tag {node.tag!r}")
            return self._mapping(node, path, depth)
        self.problem(node, path, "unsupported YAML node")
        return None

    def _scalar(self, node: ScalarNode, path: DataPath) -> Any:
        if node.tag not in _KNOWN_SCALAR_TAGS:
            self.problem(node, path, f"unsupported YAML tag {node.tag!r}")
            return node.value
        if node.tag in (_TIMESTAMP, _BINARY):
            # Dates and binary blobs have no meaning in a stack; keep the text as written.
            return node.value
        try:
            value = self._scalars.construct_object(node, deep=True)
        except (ConstructorError, ValueError) as exc:
            self.problem(node, path, f"invalid scalar: {exc}")
            return node.value
        if isinstance(value, datetime.date):
            return node.value
        return value

    def _key(self, node: Node, path: DataPath) -> str | None:
        if isinstance(node, ScalarNode):
            # Keys are names: keep them as written (`on`, `1`, `yes` are names, not booleans).
            return str(node.value)
        self.problem(node, path, "a mapping key must be a plain name, not a list or mapping")
        return None

    def _mapping(self, node: MappingNode, path: DataPath, depth: int) -> dict[str, Any]:
        result: dict[str, Any] = {}
        first_seen: dict[str, SourceLocation] = {}
        merges: list[tuple[Node, Node]] = []
        for key_node, value_node in node.value:
            if key_node.tag == _MERGE:
                merges.append((key_node, value_node))
                continue
            key = self._key(key_node, path)
            if key is None:
                continue
            where = _location(self.file, key_node)
            if key in first_seen:
                earlier = first_seen[key]
                self.problem(
                    key_node,
                    (*path, key),
                    f"duplicate key '{key}' (first defined at line {earlier.line})",
                )
                continue
            first_seen[key] = where
            self.keys[(*path, key)] = where
            result[key] = self.convert(value_node, (*path, key), depth + 1)
        for key_node, value_node in merges:
            self._merge(key_node, value_node, path, depth, result)
        return result

    def _merge(
        self, key_node: Node, value_node: Node, path: DataPath, depth: int, into: dict[str, Any]
    ) -> None:
        """YAML merge keys (``<<: *defaults``): explicit keys win over merged ones."""
        sources: list[Node]
        if isinstance(value_node, MappingNode):
            sources = [value_node]
        elif isinstance(value_node, SequenceNode) and all(
            isinstance(item, MappingNode) for item in value_node.value
        ):
            sources = list(value_node.value)
        else:
            self.problem(key_node, path, "'<<' must merge a mapping or a list of mappings")
            return
        for source in sources:
            assert isinstance(source, MappingNode)
            for sub_key, sub_value in source.value:
                key = self._key(sub_key, path)
                if key is None or key in into:
                    continue
                self.keys[(*path, key)] = _location(self.file, sub_key)
                into[key] = self.convert(sub_value, (*path, key), depth + 1)


class _TooBig(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


class _TooDeep(Exception):
    def __init__(self, node: Node) -> None:
        self.node = node


def _yaml_error_problem(file: str, exc: yaml.YAMLError) -> Problem:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    if isinstance(exc, yaml.MarkedYAMLError):
        text = " ".join(part for part in (exc.context, exc.problem) if part) or "invalid YAML"
    else:
        text = str(exc).splitlines()[0] if str(exc) else "invalid YAML"
        if isinstance(exc, yaml.reader.ReaderError):
            text = f"unacceptable character #x{exc.character:04x} at position {exc.position}"
            return Problem(SourceLocation(file, 1, 1), "", f"invalid YAML: {text}")
    line = mark.line + 1 if mark is not None else 1
    column = mark.column + 1 if mark is not None else 1
    return Problem(SourceLocation(file, line, column), "", f"invalid YAML: {text}")


def load_yaml_text(text: str, file: str) -> LoadedDocument:
    """Parse YAML text into a :class:`LoadedDocument`, raising :class:`StackError` on any problem."""
    origin = SourceLocation(file, 1, 1)
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as exc:
        raise StackError([_yaml_error_problem(file, exc)]) from None
    except RecursionError:
        raise StackError([Problem(origin, "", "the document is nested too deeply")]) from None
    if root is None:
        raise StackError([Problem(origin, "", "the file is empty")])
    converter = _Converter(file)
    try:
        data = converter.convert(root, ())
    except _TooBig as exc:
        raise StackError(
            [
                Problem(
                    _location(file, exc.node),
                    "",
                    f"the document expands to more than {MAX_NODES:,} values through aliases "
                    "(an alias bomb?)",
                )
            ]
        ) from None
    except _TooDeep as exc:
        raise StackError(
            [
                Problem(
                    _location(file, exc.node),
                    "",
                    f"the document is nested deeper than {MAX_DEPTH} levels",
                )
            ]
        ) from None
    if converter.problems:
        raise StackError(converter.problems)
    return LoadedDocument(file, data, converter.values, converter.keys)


def load_yaml_file(path: Path, display_name: str | None = None) -> LoadedDocument:
    """Read and parse a YAML file with the size, encoding and structure limits above."""
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
    return load_yaml_text(text.removeprefix("\ufeff"), name)
