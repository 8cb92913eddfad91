"""The options many commands share, and the values they become.

Every command that reads a stack file takes ``--var``, ``--vars-file`` and ``--profile``;
:func:`stack_options` adds them and hands the command one :class:`StackSource` (parameter
``source``), which loads the stack or lists its problems and exits 1. Every command that
talks to an engine takes ``--host`` and ``--engine``; :func:`engine_options` adds them and
hands over one :class:`EngineTarget` (parameter ``target``), whose :meth:`~EngineTarget.
connect` yields the connected engine and tells its refusals as a message, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import click

from declarun.cli.output import stderr_console
from declarun.engine.port import Engine
from declarun.engine.swarm_port import SwarmEngine
from declarun.errdefs import ErrorKind, Unavailable
from declarun.errors import EngineError, StackError
from declarun.reconcile.executor import DEFAULT_PARALLEL
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack, parse_var_assignment

__all__ = [
    "EngineTarget",
    "StackSource",
    "engine_options",
    "parallel_option",
    "report_stack_problems",
    "stack_options",
]

F = TypeVar("F", bound=Callable[..., Any])


def report_stack_problems(error: StackError) -> None:
    """Print every problem of a stack file, then how many there were."""
    console = stderr_console()
    for problem in error.problems:
        console.print(str(problem), markup=False, highlight=False, style="red")
    count = len(error.problems)
    console.print(f"{count} problem{'s' if count != 1 else ''} found", style="bold red")


@dataclass(frozen=True)
class StackSource:
    """How the command line asks for a stack to be loaded: profiles, vars files, variables."""

    profiles: tuple[str, ...] = ()
    vars_files: tuple[Path, ...] = ()
    var_overrides: dict[str, str] = field(default_factory=dict)

    @property
    def load_options(self) -> LoadOptions:
        """The loader's options."""
        return LoadOptions(
            vars_files=self.vars_files,
            var_overrides=self.var_overrides,
            profiles=frozenset(self.profiles),
        )

    def load(self, path: Path) -> Stack:
        """The stack in ``path``; raises :class:`StackError` with every problem found."""
        return load_stack(path, self.load_options)

    def load_or_exit(self, path: Path) -> Stack:
        """The stack in ``path``, or its problems listed and exit 1."""
        try:
            return self.load(path)
        except StackError as exc:
            report_stack_problems(exc)
            sys.exit(1)

    def with_files(self, profiles: tuple[str, ...], vars_files: tuple[Path, ...]) -> StackSource:
        """The same variables with other profiles and vars files (a saved plan's)."""
        return StackSource(profiles, vars_files, self.var_overrides)


@contextlib.contextmanager
def _told_as_engine_errors() -> Iterator[None]:
    try:
        yield
    except Unavailable as exc:
        raise EngineError(f"the engine failed: {exc}") from None
    except ErrorKind as exc:
        raise EngineError(f"the engine refused: {exc}") from None


@dataclass(frozen=True)
class EngineTarget:
    """The engine the command line names: ``--host`` (or the environment) and ``--engine``."""

    host: str | None = None
    engine: str = "declarun"

    @property
    def is_swarm(self) -> bool:
        """True for ``--engine swarm``: the commands plan services on a Swarm manager."""
        return self.engine == "swarm"

    @contextlib.contextmanager
    def connect(self) -> Iterator[Engine]:
        """The connected engine (declarund started when it may be), closed afterwards; an
        error kind raised meanwhile becomes an :class:`EngineError` saying so."""
        # Imported here: commands that never connect need no docker-py.
        from declarun.engine.connect import EngineKind, choose_engine, connect

        kind: EngineKind = "declarun"
        if self.engine in ("docker", "swarm"):
            kind = "docker" if self.engine == "docker" else "swarm"
        connected = connect(choose_engine(self.host, kind))
        try:
            with _told_as_engine_errors():
                yield connected
        finally:
            connected.close()

    @contextlib.contextmanager
    def connect_swarm(self) -> Iterator[SwarmEngine]:
        """The Swarm manager ``--host`` (or ``DOCKER_HOST``) names, closed afterwards; an
        engine that is not a manager of an active Swarm is refused with a message."""
        from declarun.engine.connect import choose_engine, connect_swarm

        connected = connect_swarm(choose_engine(self.host, "swarm"))
        try:
            with _told_as_engine_errors():
                yield connected
        finally:
            connected.close()


def _parse_vars(
    ctx: click.Context, param: click.Parameter, values: tuple[str, ...]
) -> dict[str, str]:
    parsed: dict[str, str] = {}
    for text in values:
        try:
            key, value = parse_var_assignment(text)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None
        parsed[key] = value
    return parsed


def stack_options(func: F) -> F:
    """``--profile``, ``--vars-file``, ``--var``, given to ``func`` as ``source: StackSource``."""

    @functools.wraps(func)
    def command(
        *args: Any,
        profiles: tuple[str, ...],
        vars_files: tuple[Path, ...],
        var_overrides: dict[str, str],
        **kwargs: Any,
    ) -> Any:
        return func(*args, source=StackSource(profiles, vars_files, var_overrides), **kwargs)

    decorated: Any = command
    decorated = click.option(
        "--profile",
        "profiles",
        multiple=True,
        metavar="NAME",
        help="Activate a profile (repeatable); containers without profiles are always active.",
    )(decorated)
    decorated = click.option(
        "--vars-file",
        "vars_files",
        multiple=True,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="YAML file of variables; overrides the stack's vars: (repeatable, later wins).",
    )(decorated)
    decorated = click.option(
        "--var",
        "var_overrides",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_parse_vars,
        help="Set a variable (repeatable); overrides vars: and --vars-file. Values are strings.",
    )(decorated)
    wrapped: F = decorated
    return wrapped


def engine_options(func: F) -> F:
    """``--host`` and ``--engine``, given to ``func`` as ``target: EngineTarget``."""

    @functools.wraps(func)
    def command(*args: Any, host: str | None, engine: str, **kwargs: Any) -> Any:
        return func(*args, target=EngineTarget(host, engine), **kwargs)

    decorated: Any = command
    decorated = click.option(
        "--engine",
        type=click.Choice(["declarun", "docker", "swarm"]),
        default="declarun",
        show_default=True,
        help="declarun: the built-in daemon (started when needed); docker: DOCKER_HOST or "
        "Docker's default socket; swarm: the stack as services on the Swarm manager at "
        "--host or DOCKER_HOST.",
    )(decorated)
    decorated = click.option(
        "--host",
        metavar="unix:///PATH",
        # DECLARUN_HOST is read by choose_engine, for the built-in engine only: it must not
        # redirect --engine docker, which follows DOCKER_HOST.
        help="The engine's socket; default: DECLARUN_HOST, else the built-in daemon's "
        "(or, with --engine docker, DOCKER_HOST, else Docker's own).",
    )(decorated)
    wrapped: F = decorated
    return wrapped


def parallel_option(func: F) -> F:
    """``--parallel N``: how many changes are carried out at once."""
    option: F = click.option(
        "--parallel",
        type=click.IntRange(min=1),
        default=DEFAULT_PARALLEL,
        show_default=True,
        help="Changes carried out at once.",
    )(func)
    return option
