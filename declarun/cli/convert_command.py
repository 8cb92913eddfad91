"""``declarun convert``: write a Compose project as a stack file."""

from __future__ import annotations

import os
from pathlib import Path

import click

from declarun.cli.options import StackSource, stack_options
from declarun.cli.output import stderr_console
from declarun.compose.convert import convert_project
from declarun.plan.identity import is_secret_key

__all__ = ["convert"]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write the stack file here (its paths relative to its directory) instead of printing "
    "it (then relative to the project's directory).",
)
@stack_options(format_flags=("--input-format",))
def convert(file: Path, output: Path | None, source: StackSource) -> None:
    """Write the Compose project in FILE as an equivalent stack file.

    Plans of the two agree. Compose's variables are resolved, except secrets (and variables
    passed through), which stay references to the environment; comments say where declarun
    differs from docker compose.
    """
    project = source.load_project(file)
    base = (output.absolute().parent if output is not None else project.project_dir).resolve()
    converted = convert_project(project, base, is_secret_key)
    if output is None:
        click.echo(converted.text, nl=False)
        return
    partial = output.with_name(f".{output.name}.tmp-{os.getpid()}")
    partial.write_text(converted.text, encoding="utf-8")
    os.replace(partial, output)
    stack = project.stack
    message = (
        f"Wrote {output}: stack '{stack.name}' with {len(stack.containers)} "
        f"container{'s' if len(stack.containers) != 1 else ''}."
    )
    if converted.variables:
        message += " Set in the environment before using it: " + ", ".join(converted.variables)
    stderr_console().print(message, markup=False, highlight=False)
