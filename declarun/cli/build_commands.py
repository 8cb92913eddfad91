"""``declarun build``: build the stack's images on their own, touching no container.

Exit codes: 0 when every build succeeded, 1 otherwise (a failed build, an unknown image, an
engine error).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from declarun.cli.apply_output import live_runner, print_report
from declarun.cli.options import (
    EngineTarget,
    StackSource,
    engine_options,
    parallel_option,
    stack_options,
)
from declarun.cli.output import stdout_console
from declarun.reconcile.apply import ApplyOptions, build_stack
from declarun.reconcile.builds import BuildOptions

__all__ = ["build"]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, metavar="[IMAGE]...")
@click.option("--no-cache", "no_cache", is_flag=True, help="Use no cached build step.")
@click.option(
    "--pull", is_flag=True, help="Pull the base images again first (not the stack's own)."
)
@click.option("--locked", is_flag=True, help="Fail when stack.lock is missing or stale.")
@parallel_option
@stack_options
@engine_options
def build(
    file: Path,
    images: tuple[str, ...],
    no_cache: bool,
    pull: bool,
    locked: bool,
    parallel: int,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Build the images of the stack in FILE (those named, else every image it builds),
    whether or not anything changed; base images of the stack that are missing are built
    first. Containers are left as they are: 'declarun apply' replaces those on a new image."""
    stack = source.load_or_exit(file)
    options = ApplyOptions(locked=locked, parallel=parallel)
    with target.connect() as engine:
        report = build_stack(
            engine,
            stack,
            images,
            options=options,
            build_options=BuildOptions(pull=pull, nocache=no_cache),
            on_plan=live_runner(),
        )
    if not print_report(report, stdout_console(), verb="Build"):
        sys.exit(1)
