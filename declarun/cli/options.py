"""The options many commands share, and the values they become.

Every command that reads a stack file takes ``--var``, ``--vars-file`` and ``--profile``, and
for Compose files ``-f``, ``-p``, ``--env-file``, ``--format`` and ``--strict``;
:func:`stack_options` adds them and hands the command one :class:`StackSource` (parameter
``source``), which loads the stack (from either format) or lists its problems and exits 1.
With no FILE, a command takes ``declarun -f FILE`` or else the first of
:data:`DEFAULT_STACK_FILES` in the current directory. Every command that talks to an engine takes ``--host`` and ``--engine``; :func:`engine_options` adds them and
hands over one :class:`EngineTarget` (parameter ``target``), whose :meth:`~EngineTarget.
connect` yields the connected engine and tells its refusals as a message, never a traceback.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, overload

import click

from declarun.cli.formats import FormatName, load_any
from declarun.cli.output import stderr_console
from declarun.compose.project import COMPOSE_FILE_NAMES, ComposeOptions
from declarun.errdefs import ErrorKind, Unavailable
from declarun.errors import EngineError, Problem, StackError
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, parse_var_assignment

if TYPE_CHECKING:
    from declarun.compose.pipeline import ComposeProject
    from declarun.engine.port import Engine
    from declarun.engine.swarm_port import SwarmEngine

__all__ = [
    "DEFAULT_STACK_FILES",
    "EngineTarget",
    "StackSource",
    "engine_options",
    "parallel_option",
    "report_stack_problems",
    "report_stack_warnings",
    "settle_option",
    "stack_file",
    "stack_file_and_words",
    "stack_options",
]

#: What a command looks for in the current directory when no stack file is named: a stack
#: file first, then a Compose file (as ``docker compose`` looks for one).
DEFAULT_STACK_FILES = ("stack.yaml", "declarun.yaml", *COMPOSE_FILE_NAMES)
_STACK_SUFFIXES = (".yaml", ".yml", ".json")

F = TypeVar("F", bound=Callable[..., Any])


def report_stack_problems(error: StackError) -> None:
    """Print every problem of a stack file, then how many there were."""
    console = stderr_console()
    for problem in error.problems:
        console.print(str(problem), markup=False, highlight=False, style="red")
    count = len(error.problems)
    console.print(f"{count} problem{'s' if count != 1 else ''} found", style="bold red")


def report_stack_warnings(warnings: tuple[Problem, ...]) -> None:
    """Print what declarun does differently from what a file says (Compose's unsupported
    fields), one located line each."""
    if not warnings:
        return
    console = stderr_console()
    for warning in warnings:
        console.print(f"{warning} (warning)", markup=False, highlight=False, style="yellow")
    count = len(warnings)
    console.print(
        f"{count} warning{'s' if count != 1 else ''} (--strict makes them errors)",
        style="yellow",
    )


def _top_level_file() -> Path | None:
    """``declarun -f FILE COMMAND``: the file the group was given, if any."""
    context = click.get_current_context(silent=True)
    if context is None:
        return None
    chosen = context.find_root().params.get("stack_file")
    return chosen if isinstance(chosen, Path) else None


def _default_stack_file() -> Path:
    for name in DEFAULT_STACK_FILES:
        if Path(name).is_file():
            return Path(name)
    looked = ", ".join(DEFAULT_STACK_FILES[:-1]) + " or " + DEFAULT_STACK_FILES[-1]
    raise click.UsageError(
        f"no stack file named and no {looked} in {Path.cwd()}: give FILE, or -f FILE before "
        "the command (declarun -f FILE COMMAND)"
    )


def stack_file(file: Path | None) -> Path:
    """The stack file a command works on: its FILE argument, else ``declarun -f FILE``,
    else ``stack.yaml`` or ``declarun.yaml`` in the current directory."""
    top = _top_level_file()
    if file is not None and top is not None and file != top:
        raise click.UsageError(f"two stack files given: -f {top} and {file}")
    return file or top or _default_stack_file()


def _names_a_stack_file(word: str) -> bool:
    return word.endswith(_STACK_SUFFIXES) or Path(word).is_file()


def stack_file_and_words(words: tuple[str, ...]) -> tuple[Path, list[str]]:
    """Split ``[FILE] WORDS...`` (container names, a command): the first word is the stack
    file when no ``-f`` was given and it names one (an existing file, or a .yaml/.yml/.json
    name); otherwise the file is found as :func:`stack_file` finds it."""
    if _top_level_file() is None and words and _names_a_stack_file(words[0]):
        return Path(words[0]), list(words[1:])
    return stack_file(None), list(words)


@dataclass(frozen=True)
class StackSource:
    """How the command line asks for a stack to be loaded: profiles, vars files, variables,
    and for Compose files the extra files, project name, env files and strictness."""

    profiles: tuple[str, ...] = ()
    vars_files: tuple[Path, ...] = ()
    var_overrides: dict[str, str] = field(default_factory=dict)
    input_format: FormatName = "auto"
    compose_files: tuple[Path, ...] = ()
    project_name: str | None = None
    env_files: tuple[Path, ...] = ()
    strict: bool = False

    @property
    def load_options(self) -> LoadOptions:
        """The loader's options."""
        return LoadOptions(
            vars_files=self.vars_files,
            var_overrides=self.var_overrides,
            profiles=frozenset(self.profiles),
        )

    @property
    def compose_options(self) -> ComposeOptions:
        """The Compose front end's options (``--var`` values are interpolation variables,
        over the environment)."""
        return ComposeOptions(
            extra_files=self.compose_files,
            project_name=self.project_name,
            env_files=self.env_files,
            profiles=frozenset(self.profiles),
            environ={**os.environ, **self.var_overrides},
            strict=self.strict,
        )

    def load(self, path: Path) -> Stack:
        """The stack in ``path`` (a stack or a Compose file); raises :class:`StackError` with
        every problem found. Warnings are printed."""
        stack, warnings, _project = load_any(
            path, self.input_format, self.load_options, self.compose_options
        )
        report_stack_warnings(warnings)
        return stack

    def load_project(self, path: Path) -> ComposeProject:
        """The Compose project in ``path``, or its problems listed and exit 1."""
        try:
            _stack, warnings, project = load_any(
                path, "compose", self.load_options, self.compose_options
            )
        except StackError as exc:
            report_stack_problems(exc)
            sys.exit(1)
        assert project is not None
        report_stack_warnings(warnings)
        return project

    def load_or_exit(self, path: Path) -> Stack:
        """The stack in ``path``, or its problems listed and exit 1."""
        try:
            return self.load(path)
        except StackError as exc:
            report_stack_problems(exc)
            sys.exit(1)

    def with_files(
        self,
        profiles: tuple[str, ...],
        vars_files: tuple[Path, ...],
        **compose: Any,
    ) -> StackSource:
        """The same variables with other profiles and vars files (a saved plan's), and the
        saved plan's Compose options (``input_format``, ``compose_files``, ``project_name``,
        ``env_files``)."""
        return replace(self, profiles=profiles, vars_files=vars_files, **compose)


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


@overload
def stack_options(func: F) -> F: ...


@overload
def stack_options(
    *, file_flags: tuple[str, ...] = ..., format_flags: tuple[str, ...] = ...
) -> Callable[[F], F]: ...


def stack_options(
    func: F | None = None,
    *,
    file_flags: tuple[str, ...] = ("-f", "--file"),
    format_flags: tuple[str, ...] = ("--format", "--input-format"),
) -> Any:
    """The options that say how to read FILE, given to ``func`` as ``source: StackSource``.

    ``--profile``, ``--vars-file``, ``--var``; for Compose files ``-f/--file``,
    ``-p/--project-name``, ``--env-file`` and ``--strict``; ``--format`` to name the format.
    A command whose own options use ``-f`` or ``--format`` passes other ``file_flags`` or
    ``format_flags`` (``@stack_options(file_flags=("--file",))``).
    """
    if func is None:
        return functools.partial(stack_options, file_flags=file_flags, format_flags=format_flags)

    @functools.wraps(func)
    def command(
        *args: Any,
        profiles: tuple[str, ...],
        vars_files: tuple[Path, ...],
        var_overrides: dict[str, str],
        input_format: FormatName,
        compose_files: tuple[Path, ...],
        project_name: str | None,
        env_files: tuple[Path, ...],
        strict: bool,
        **kwargs: Any,
    ) -> Any:
        source = StackSource(
            profiles,
            vars_files,
            var_overrides,
            input_format,
            compose_files,
            project_name,
            env_files,
            strict,
        )
        return func(*args, source=source, **kwargs)

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
        help="Set a variable (repeatable); overrides vars: and --vars-file. Values are strings. "
        "For a Compose file: an interpolation variable, over the environment.",
    )(decorated)
    decorated = click.option(
        *format_flags,
        "input_format",
        type=click.Choice(["auto", "stack", "compose"]),
        default="auto",
        show_default=True,
        help="The format of FILE; auto: a Compose file is named like one or has services:.",
    )(decorated)
    decorated = click.option(
        *file_flags,
        "compose_files",
        multiple=True,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Compose: another file merged on top of FILE (repeatable, in order, as docker "
        "compose -f); without it FILE's override file (compose.override.yaml) is merged.",
    )(decorated)
    decorated = click.option(
        "-p",
        "--project-name",
        "project_name",
        metavar="NAME",
        help="Compose: the project (and stack) name; default COMPOSE_PROJECT_NAME, name: in "
        "the file, or the directory's name.",
    )(decorated)
    decorated = click.option(
        "--env-file",
        "env_files",
        multiple=True,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="Compose: variables for interpolation, instead of the project's .env (repeatable).",
    )(decorated)
    decorated = click.option(
        "--strict",
        is_flag=True,
        help="Compose: a field declarun does not support (or supports differently) is an "
        "error, not a warning.",
    )(decorated)
    return decorated


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


def _settle_seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    from declarun.stack.units import parse_duration

    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def settle_option(func: F) -> F:
    """``--settle DURATION`` (or ``DECLARUN_SETTLE``), given to ``func`` as ``settle``
    (seconds): how long a container this apply started must stay up before it is trusted."""
    from declarun.reconcile.settle import DEFAULT_SETTLE
    from declarun.stack.units import format_duration

    option: F = click.option(
        "--settle",
        "settle",
        default=format_duration(timedelta(seconds=DEFAULT_SETTLE)),
        show_default=True,
        envvar="DECLARUN_SETTLE",
        show_envvar=True,
        metavar="DURATION",
        callback=_settle_seconds,
        help="How long a container this apply started must stay up (and healthy, where it "
        "has a health check) before the apply succeeds; one that dies sooner fails it (on a "
        "Swarm the services' update monitor period applies).",
    )(func)
    return option


def parallel_option(func: F) -> F:
    """``--parallel N``: how many changes are carried out at once."""
    # Here, not at the top: ``validate`` and ``render`` need no executor (threads, logging).
    from declarun.reconcile.executor import DEFAULT_PARALLEL

    option: F = click.option(
        "--parallel",
        type=click.IntRange(min=1),
        default=DEFAULT_PARALLEL,
        show_default=True,
        help="Changes carried out at once.",
    )(func)
    return option
