"""What every engine command shares: ``--host``/``--engine``, connecting, loading the stack,
and telling the engine's error kinds to a person (a message, exit 1, no traceback)."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from declarun.cli.output import stderr_console
from declarun.cli.stack_commands import load_options
from declarun.engine.port import Engine
from declarun.errdefs import ErrorKind, Unavailable
from declarun.errors import EngineError, StackError
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack

__all__ = [
    "engine_client",
    "engine_errors",
    "engine_options",
    "load_or_exit",
    "report_stack_problems",
    "stack_load_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def engine_options(func: F) -> F:
    """``--host`` and ``--engine``: which engine the command talks to."""
    func = click.option(
        "--engine",
        type=click.Choice(["declarun", "docker"]),
        default="declarun",
        show_default=True,
        help="declarun: the built-in daemon (started when needed); docker: DOCKER_HOST or "
        "Docker's default socket.",
    )(func)
    func = click.option(
        "--host",
        metavar="unix:///PATH",
        # DECLARUN_HOST is read by choose_engine, for the built-in engine only: it must not
        # redirect --engine docker, which follows DOCKER_HOST.
        help="The engine's socket; default: DECLARUN_HOST, else the built-in daemon's "
        "(or, with --engine docker, DOCKER_HOST, else Docker's own).",
    )(func)
    return func


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Say an engine's refusal (or its silence) as an :class:`EngineError`."""
    try:
        yield
    except Unavailable as exc:
        raise EngineError(f"the engine failed: {exc}") from None
    except ErrorKind as exc:
        raise EngineError(f"the engine refused: {exc}") from None


@contextlib.contextmanager
def engine_client(host: str | None, engine: str) -> Iterator[Engine]:
    """The connected engine chosen by ``--host``/``--engine``, closed afterwards."""
    from declarun.engine.connect import EngineKind, choose_engine, connect

    kind: EngineKind = "docker" if engine == "docker" else "declarun"
    connected = connect(choose_engine(host, kind))
    try:
        with engine_errors():
            yield connected
    finally:
        connected.close()


def report_stack_problems(error: StackError) -> None:
    """Print every problem of a stack file, then how many there were."""
    console = stderr_console()
    for problem in error.problems:
        console.print(str(problem), markup=False, highlight=False, style="red")
    count = len(error.problems)
    console.print(f"{count} problem{'s' if count != 1 else ''} found", style="bold red")


def stack_load_options(
    profiles: tuple[str, ...], vars_files: tuple[Path, ...], var_overrides: dict[str, str]
) -> LoadOptions:
    """The shared stack options as loader options."""
    return load_options(profiles, vars_files, var_overrides)


def load_or_exit(path: Path, options: LoadOptions) -> Stack:
    """Load a stack, or list its problems and exit 1."""
    try:
        return load_stack(path, options)
    except StackError as exc:
        report_stack_problems(exc)
        sys.exit(1)
