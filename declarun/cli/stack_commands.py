"""``declarun validate | render | graph``: commands that read stack files and touch no engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from declarun.cli.options import StackSource, report_stack_problems, stack_options
from declarun.cli.output import stdout_console
from declarun.errors import StackError
from declarun.plan.graph import GraphFormat, build_graph, export_graph
from declarun.stack.model import Stack, stack_to_data

__all__ = ["graph", "render", "validate"]


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
def validate(files: tuple[Path, ...], source: StackSource) -> None:
    """Check stack FILES: exit 0 when all are valid, 1 with every problem listed otherwise."""
    console = stdout_console()
    failed = False
    for path in files:
        try:
            stack = source.load(path)
        except StackError as exc:
            report_stack_problems(exc)
            failed = True
            continue
        console.print(f"{path}: valid stack '{stack.name}' ({_summary(stack)})", markup=False)
    if failed:
        sys.exit(1)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json", "kubernetes"]),
    default="yaml",
    show_default=True,
    help="Output format; kubernetes: manifests (see specs/scale-out.md).",
)
@click.option(
    "-o",
    "--output",
    "output_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="--format kubernetes: write one file per manifest into this directory.",
)
@stack_options
def render(file: Path, output_format: str, output_dir: Path | None, source: StackSource) -> None:
    """Print the stack in FILE as declarun sees it: templated, normalised, defaults filled."""
    stack = source.load_or_exit(file)
    # -- other systems' formats: each in a module of its own -----------------------------------
    if output_format == "kubernetes":
        from declarun.cli.render_kubernetes import render_kubernetes

        render_kubernetes(stack, output_dir)
        return
    if output_dir is not None:
        raise click.UsageError("-o DIR goes with --format kubernetes")
    # ------------------------------------------------------------------------------------------
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
def graph(file: Path, output_format: str, output: Path | None, source: StackSource) -> None:
    """Print the dependency graph of the stack in FILE (images, volumes, networks, containers)."""
    stack = source.load_or_exit(file)
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
