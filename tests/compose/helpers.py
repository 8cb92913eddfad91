"""Helpers for the Compose front end's tests: projects written from text, loaded with a fixed
environment, and their problems and warnings as (path, message) pairs."""

from __future__ import annotations

import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from declarun.compose.pipeline import ComposeProject, load_compose
from declarun.compose.project import ComposeOptions
from declarun.errors import StackError
from declarun.stack.model import Container, Stack

__all__ = [
    "CORPUS",
    "container",
    "load",
    "problems",
    "project",
    "warnings",
    "write",
]

CORPUS = Path(__file__).resolve().parent / "corpus"


def write(directory: Path, files: Mapping[str, str]) -> Path:
    """Write ``files`` (name -> dedented text) into ``directory``; the first is the main file."""
    main: Path | None = None
    for name, text in files.items():
        path = directory / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text).lstrip("\n"))
        main = main or path
    assert main is not None
    return main


def project(
    directory: Path,
    files: Mapping[str, str] | str,
    *,
    environ: Mapping[str, str] | None = None,
    **options: Any,
) -> ComposeProject:
    """Load a project written into ``directory`` (a single text is ``compose.yaml``)."""
    written = {"compose.yaml": files} if isinstance(files, str) else files
    main = write(directory, written)
    chosen = {"project_name": "t", **options}
    return load_compose(main, ComposeOptions(environ=dict(environ or {}), **chosen))


def load(directory: Path, files: Mapping[str, str] | str, **options: Any) -> Stack:
    """The stack of a project written into ``directory``."""
    return project(directory, files, **options).stack


def container(directory: Path, service: str, **fields: object) -> Container:
    """The container of one service ``service`` with ``fields`` (as YAML-able data)."""
    import yaml

    text = yaml.safe_dump({"services": {service: {"image": "busybox:1.36", **fields}}})
    return load(directory, text).containers[service]


def problems(directory: Path, files: Mapping[str, str] | str, **options: Any) -> list[str]:
    """Every problem of a project as ``FILE:LINE:COL: path: message`` with FILE's name only."""
    with pytest.raises(StackError) as info:
        project(directory, files, **options)
    return [_short(str(p), directory) for p in info.value.problems]


def warnings(directory: Path, files: Mapping[str, str] | str, **options: Any) -> list[str]:
    """Every warning of a project, like :func:`problems`."""
    loaded = project(directory, files, **options)
    return [_short(str(w), directory) for w in loaded.warnings]


def _short(text: str, directory: Path) -> str:
    return text.replace(f"{directory}/", "")
