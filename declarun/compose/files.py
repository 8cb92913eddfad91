"""Read one Compose file the way docker compose does before merging it with others.

For each file, in order: parse YAML (1.2, with positions), interpolate every value, check it
against the Compose Specification's schema, bring each service's fields to one shape
(:func:`~declarun.compose.merge.canonical_service`), make relative host paths absolute (from
the project directory, or from its own directory for a file that ``extends`` reaches), and
resolve ``extends``. Problems are collected, located, and the file goes on without the parts
that had them so later problems still show.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from declarun.compose.interpolate import interpolate_tree
from declarun.compose.merge import canonical_service, merge_services
from declarun.compose.nodes import Node, from_document
from declarun.compose.schema import validate_compose
from declarun.compose.yaml12 import CoreSchemaResolver
from declarun.errors import Problem, StackError
from declarun.stack.load import DataPath, format_path, load_yaml_file
from declarun.stack.schema import suggest

__all__ = ["MAX_EXTENDS_DEPTH", "ComposeFileReader", "is_host_path"]

_REPAIR_ROUNDS = 3
#: Longer extends chains are refused (the resolution recurses; real chains are a few long).
MAX_EXTENDS_DEPTH = 32
_SECTIONS = ("services", "volumes", "networks", "secrets", "configs")


def is_host_path(source: str) -> bool:
    """Whether a short-syntax volume source is a host path (a bind mount), as Compose decides:
    it starts with ``.``, ``/`` or ``~``."""
    return source.startswith((".", "/", "~"))


def _is_url(text: str) -> bool:
    return "://" in text or text.startswith("git@")


def _absolute(text: str, base: Path) -> str:
    path = Path(text).expanduser() if text.startswith("~") else Path(text)
    if not path.is_absolute():
        path = base / path
    return os.path.normpath(path)


def _absolute_node(node: Node | None, base: Path) -> None:
    if node is not None and isinstance(node.value, str) and node.value and not _is_url(node.value):
        node.value = _absolute(node.value, base)


def _resolve_service_paths(service: Node, base: Path) -> None:
    build = service.get("build")
    if build is not None and build.is_map:
        context = build.get("context")
        if context is None:
            build.value["context"] = Node(str(base), build.where, build.at)
        else:
            _absolute_node(context, base)
    for entry in (service.get("env_file") or Node([], service.where)).elements():
        _absolute_node(entry.get("path") if entry.is_map else entry, base)
    for entry in (service.get("volumes") or Node([], service.where)).elements():
        if entry.is_map:
            kind = entry.get("type")
            if kind is not None and kind.value == "bind":
                _absolute_node(entry.get("source"), base)
        elif isinstance(entry.value, str):
            source, sep, rest = entry.value.partition(":")
            if sep and is_host_path(source):
                entry.value = f"{_absolute(source, base)}:{rest}"
    extends = service.get("extends")
    if extends is not None and extends.is_map:
        _absolute_node(extends.get("file"), base)


def _remove(root: Node, path: DataPath, removed: set[str]) -> bool:
    """Set aside the part of a file a schema problem is about; False when it is the whole."""
    if not path:
        return False
    if path[0] not in _SECTIONS or len(path) == 1:
        root.value.pop(str(path[0]), None)
        return True
    section = root.get(str(path[0]))
    if section is None or not section.is_map:
        return False
    name = str(path[1])
    entry = section.get(name)
    if len(path) == 2 or entry is None or not entry.is_map:
        section.value.pop(name, None)
        removed.add(name)
        return True
    entry.value.pop(str(path[2]), None)
    return True


@dataclass
class ComposeFileReader:
    """Reads Compose files once each, for the project's files and those ``extends`` names."""

    lookup: Callable[[str], str | None]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    removed: set[str] = field(default_factory=set)  # services set aside whole
    _cache: dict[tuple[Path, Path], Node | None] = field(default_factory=dict)

    def read(self, path: Path, base: Path) -> Node | None:
        """The file at ``path``, its relative paths made absolute from ``base``, its
        ``extends`` resolved; None when it cannot be used at all (its problems recorded)."""
        key = (Path(os.path.normpath(path.absolute())), base)
        if key in self._cache:
            return self._cache[key]
        self._cache[key] = None  # a file that extends itself finds nothing, not a loop
        root = self._parse(path)
        if root is not None:
            self._resolve_extends(root, key[0], base)
        self._cache[key] = root
        return root

    def _parse(self, path: Path) -> Node | None:
        try:
            document = load_yaml_file(path, resolver=CoreSchemaResolver())
        except StackError as exc:
            self.problems.extend(exc.problems)
            return None
        root = from_document(document)
        if not root.is_map:
            self.problems.append(
                Problem(root.where, "", "a Compose file must be a mapping with services: in it")
            )
            return None
        interpolate_tree(root, self.lookup, self.problems, self.warnings)
        if not self._validate(root):
            return None
        return root

    def _validate(self, root: Node) -> bool:
        found = validate_compose(root)
        self.problems.extend(problem for _, problem in found)
        for _ in range(_REPAIR_ROUNDS):
            if not found:
                break
            for path, _problem in found:
                if not _remove(root, path, self.removed):
                    return False
            found = validate_compose(root)
        else:
            if found:
                return False
        services = root.get("services")
        for _name, service in services.items() if services is not None else ():
            canonical_service(service)
        return True

    def prepare(self, root: Node, base: Path) -> None:
        """Make the relative host paths of ``root`` absolute from ``base``."""
        services = root.get("services")
        for _name, service in services.items() if services is not None else ():
            _resolve_service_paths(service, base)
        for section in ("secrets", "configs"):
            for _name, entry in (root.get(section) or Node({}, root.where)).items():
                _absolute_node(entry.get("file"), base)

    def _resolve_extends(self, root: Node, path: Path, base: Path) -> None:
        self.prepare(root, base)
        services = root.get("services")
        for name in list(services.value) if services is not None and services.is_map else []:
            self._extended(root, path, name, ())

    def _extended(
        self, root: Node, path: Path, name: str, chain: tuple[tuple[Path, str], ...]
    ) -> Node:
        services = root.get("services")
        assert services is not None
        service: Node = services.value[name]
        extends = service.get("extends")
        if extends is None:
            return service
        where = format_path(("services", name, "extends"))
        if extends.is_map:
            target_node = extends.get("service")
            file_node = extends.get("file")
        else:
            target_node, file_node = extends, None
        target_name = "" if target_node is None else str(target_node.value)
        link = (path, name)
        if len(chain) >= MAX_EXTENDS_DEPTH:
            self.problems.append(
                Problem(extends.at, where, f"extends chain longer than {MAX_EXTENDS_DEPTH}")
            )
            del service.value["extends"]
            return service
        if link in chain:
            start = chain.index(link)
            loop = " -> ".join([n for _, n in chain[start:]] + [name])
            self.problems.append(Problem(extends.at, where, f"extends loops: {loop}"))
            del service.value["extends"]
            return service
        target_root, target_path = root, path
        if file_node is not None:
            target_path = Path(str(file_node.value))
            if not target_path.is_file():
                self.problems.append(
                    Problem(file_node.where, f"{where}.file", f"no such file {str(target_path)!r}")
                )
                del service.value["extends"]
                return service
            found = self.read(target_path, target_path.parent)
            if found is None:
                if not any(p.location.file == str(target_path) for p in self.problems):
                    self.problems.append(
                        Problem(file_node.where, where, f"cannot use {str(target_path)!r}")
                    )
                del service.value["extends"]
                return service
            target_root = found
        target_services = target_root.get("services")
        if target_services is None or target_services.get(target_name) is None:
            choices = [n for n, _ in target_services.items()] if target_services else []
            in_file = "" if file_node is None else f" in {target_path}"
            self.problems.append(
                Problem(
                    (target_node or extends).where,
                    where,
                    f"no service {target_name!r} to extend{in_file}",
                    suggest(target_name, choices),
                )
            )
            del service.value["extends"]
            return service
        base_service = self._extended(target_root, target_path, target_name, (*chain, link))
        own = Node(
            {key: value for key, value in service.items() if key != "extends"},
            service.where,
            service.key_where,
        )
        merged = merge_services(base_service, own)
        merged.key_where = service.key_where
        services.value[name] = merged
        return merged
