"""``declarun validate | render | graph``: commands that read stack files and touch no engine."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click
import yaml

from declarun.cli.output import stderr_console, stdout_console
from declarun.errors import StackError
from declarun.plan.graph import GraphFormat, build_graph, export_graph
from declarun.stack.model import Stack, stack_to_data
from declarun.stack.pipeline import LoadOptions, load_stack, parse_var_assignment

__all__ = ["graph", "render", "stack_options", "validate"]

F = TypeVar("F", bound=Callable[..., Any])


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
    """The options every command that reads a stack file accepts."""
    func = click.option(
        "--profile",
        "profiles",
        multiple=True,
        metavar="NAME",
        help="Activate a profile (repeatable); containers without profiles are always active.",
    )(func)
    func = click.option(
        "--vars-file",
        "vars_files",
        multiple=True,
        metavar="FILE",
        type=click.Path(dir_okay=False, path_type=Path),
        help="YAML file of variables; overrides the stack's vars: (repeatable, later wins).",
    )(func)
    func = click.option(
        "--var",
        "var_overrides",
        multiple=True,
        metavar="KEY=VALUE",
        callback=_parse_vars,
        help="Set a variable (repeatable); overrides vars: and --vars-file. Values are strings.",
    )(func)
    return func


def load_options(
    profiles: tuple[str, ...], vars_files: tuple[Path, ...], var_overrides: dict[str, str]
) -> LoadOptions:
    """Bundle the shared stack options for the loader."""
    return LoadOptions(
        vars_files=vars_files, var_overrides=var_overrides, profiles=frozenset(profiles)
    )


def _report_problems(error: StackError) -> None:
    console = stderr_console()
    for problem in error.problems:
        console.print(str(problem), markup=False, highlight=False, style="red")
    count = len(error.problems)
    console.print(f"{count} problem{'s' if count != 1 else ''} found", style="bold red")


def _summary(stack: Stack) -> str:
    parts = [
        f"{len(stack.containers)} container{'s' if len(stack.containers) != 1 else ''}",
        f"{len(stack.images)} image{'s' if len(stack.images) != 1 else ''}",
        f"{len(stack.volumes)} volume{'s' if len(stack.volumes) != 1 else ''}",
        f"{len(stack.networks)} network{'s' if len(stack.networks) != 1 else ''}",
    ]
    return ", ".join(parts)


@click.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@stack_options
def validate(
    files: tuple[Path, ...],
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
) -> None:
    """Check stack FILES: exit 0 when all are valid, 1 with every problem listed otherwise."""
    options = load_options(profiles, vars_files, var_overrides)
    console = stdout_console()
    failed = False
    for path in files:
        try:
            stack = load_stack(path, options)
        except StackError as exc:
            _report_problems(exc)
            failed = True
            continue
        console.print(f"{path}: valid stack '{stack.name}' ({_summary(stack)})", markup=False)
    if failed:
        sys.exit(1)


def _load_or_exit(path: Path, options: LoadOptions) -> Stack:
    try:
        return load_stack(path, options)
    except StackError as exc:
        _report_problems(exc)
        sys.exit(1)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json"]),
    default="yaml",
    show_default=True,
    help="Output format.",
)
@stack_options
def render(
    file: Path,
    output_format: str,
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
) -> None:
    """Print the stack in FILE as declarun sees it: templated, normalised, defaults filled."""
    stack = _load_or_exit(file, load_options(profiles, vars_files, var_overrides))
    data = stack_to_data(stack)
    if output_format == "json":
        click.echo(json.dumps(data, indent=2))
    else:
        click.echo(
            yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True),
            nl=False,
        )


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["dot", "mermaid", "json", "svg", "png"]),
    default="dot",
    show_default=True,
    help="Text formats print; svg/png need Graphviz and -o.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write to this file instead of standard output.",
)
@stack_options
def graph(
    file: Path,
    output_format: str,
    output: Path | None,
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
) -> None:
    """Print the dependency graph of the stack in FILE (images, volumes, networks, containers)."""
    stack = _load_or_exit(file, load_options(profiles, vars_files, var_overrides))
    from declarun.observe.dockerfiles import base_images

    dependency_graph = build_graph(stack, base_images(stack))
    fmt: GraphFormat = output_format  # type: ignore[assignment]
    if fmt in ("svg", "png"):
        if output is None:
            raise click.UsageError(f"--format {fmt} draws an image: give -o FILE")
        from declarun.cli.graph_drawing import draw_graph

        draw_graph(dependency_graph, fmt, output)
        return
    text = export_graph(dependency_graph, fmt)
    if output is None:
        click.echo(text, nl=not text.endswith("\n"))
    else:
        output.write_text(text, encoding="utf-8")
