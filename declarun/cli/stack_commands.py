"""``declarun validate | render | graph``: commands that read stack files and touch no engine."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import yaml

from declarun.cli.options import StackSource, report_stack_problems, stack_file, stack_options
from declarun.cli.output import stdout_console
from declarun.errors import StackError
from declarun.plan.graph import GraphFormat, build_graph, export_graph
from declarun.stack.model import Stack
from declarun.stack.render import stack_to_file

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
@click.argument("files", nargs=-1, type=click.Path(path_type=Path))
@stack_options
def validate(files: tuple[Path, ...], source: StackSource) -> None:
    """Check stack FILES: exit 0 when all are valid, 1 with every problem listed otherwise."""
    console = stdout_console()
    failed = False
    for path in files or (stack_file(None),):
        try:
            stack = source.load(path)
        except StackError as exc:
            report_stack_problems(exc)
            failed = True
            continue
        console.print(f"{path}: valid stack '{stack.name}' ({_summary(stack)})", markup=False)
    if failed:
        sys.exit(1)


def _write_text(text: str, output: str | None) -> None:
    """``text`` to the file ``output``, or to standard output (no file, or ``-``)."""
    if output is None or output == "-":
        click.echo(text, nl=not text.endswith("\n"))
        return
    Path(output).write_text(text, encoding="utf-8")


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["yaml", "json", "kubernetes"]),
    help=(
        "Output format (default: from -o FILE's extension, else yaml); kubernetes: manifests, "
        "-o naming a directory (see specs/scale-out.md)."
    ),
)
@click.option(
    "-o",
    "--output",
    metavar="FILE|DIR",
    help="Write to FILE ('-': standard output); --format kubernetes: one file per manifest in DIR.",
)
@click.option(
    "--reveal-secrets",
    is_flag=True,
    help=(
        "Write secret values in clear (the output is then a secret too); default ***. "
        "Kubernetes manifests written to a directory always carry them (files readable by "
        "their owner only)."
    ),
)
@stack_options(format_flags=("--input-format",))
def render(
    file: Path | None,
    output_format: str | None,
    output: str | None,
    reveal_secrets: bool,
    source: StackSource,
) -> None:
    """Print the stack in FILE as a stack file, as declarun sees it: templated, normalised,
    defaults filled. The output is a valid stack file that plans the same. With --format
    kubernetes: the stack as Kubernetes manifests (see specs/scale-out.md)."""
    stack = source.load_or_exit(stack_file(file))
    # -- other systems' formats: each in a module of its own -----------------------------------
    if output_format == "kubernetes":
        from declarun.cli.render_kubernetes import render_kubernetes

        directory = None if output is None or output == "-" else Path(output)
        render_kubernetes(stack, directory, reveal_secrets=reveal_secrets)
        return
    # ------------------------------------------------------------------------------------------
    data = stack_to_file(stack, reveal_secrets=reveal_secrets)
    chosen = output_format or (
        "json" if output and output != "-" and output.endswith(".json") else "yaml"
    )
    if chosen == "json":
        _write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", output)
    else:
        header = f"# {stack.source_file} as declarun sees it (declarun render)\n"
        body = yaml.safe_dump(data, sort_keys=False, default_flow_style=False, allow_unicode=True)
        _write_text(header + body, output)


_GRAPH_EXTENSIONS: dict[str, GraphFormat] = {
    ".dot": "dot",
    ".gv": "dot",
    ".mmd": "mermaid",
    ".mermaid": "mermaid",
    ".json": "json",
    ".svg": "svg",
    ".png": "png",
}


def _graph_format(given: str | None, output: str | None) -> GraphFormat:
    if given is not None:
        chosen: GraphFormat = given  # type: ignore[assignment]
        return chosen
    if output is None or output == "-":
        return "dot"
    suffix = Path(output).suffix.lower()
    if suffix not in _GRAPH_EXTENSIONS:
        known = ", ".join(_GRAPH_EXTENSIONS)
        raise click.UsageError(
            f"cannot tell the format from {output!r} (known extensions: {known}): give --format"
        )
    return _GRAPH_EXTENSIONS[suffix]


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option(
    "--format",
    "output_format",
    type=click.Choice(["dot", "mermaid", "json", "svg", "png"]),
    help="Output format (default: from -o FILE's extension, else dot); svg/png need Graphviz.",
)
@click.option("-o", "--output", metavar="FILE", help="Write to FILE ('-': standard output).")
@stack_options(format_flags=("--input-format",))
def graph(
    file: Path | None, output_format: str | None, output: str | None, source: StackSource
) -> None:
    """Print the dependency graph of the stack in FILE (images, volumes, networks, containers)."""
    stack = source.load_or_exit(stack_file(file))
    from declarun.observe.dockerfiles import base_images

    dependency_graph = build_graph(stack, base_images(stack))
    fmt = _graph_format(output_format, output)
    if fmt in ("svg", "png"):
        from declarun.cli.graph_drawing import draw_graph

        to_stdout = output is None or output == "-"
        if fmt == "png" and to_stdout and sys.stdout.isatty():
            raise click.UsageError("a PNG is binary: give -o FILE (or redirect the output)")
        drawn = draw_graph(dependency_graph, fmt)
        if to_stdout:
            sys.stdout.buffer.write(drawn)
            sys.stdout.buffer.flush()
        else:
            Path(str(output)).write_bytes(drawn)
        return
    _write_text(export_graph(dependency_graph, fmt), output)
