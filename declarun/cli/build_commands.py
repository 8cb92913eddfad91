"""``declarun build``: build the stack's images on their own, touching no container, and
with ``--push`` send them to their registries (what a cluster's nodes pull).

Exit codes: 0 when every build (and push) succeeded, 1 otherwise (a failed build or push, an
unknown image, an image to push without a registry reference, an engine error).
"""

from __future__ import annotations

import sys
import time
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
from declarun.engine.port import Engine
from declarun.reconcile.actions import push_image
from declarun.reconcile.apply import ApplyOptions, build_stack
from declarun.reconcile.builds import BuildOptions
from declarun.reconcile.executor import NullProgress, StepContext, StepFailed
from declarun.stack.model import Stack

__all__ = ["build"]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("images", nargs=-1, metavar="[IMAGE]...")
@click.option("--no-cache", "no_cache", is_flag=True, help="Use no cached build step.")
@click.option(
    "--pull", is_flag=True, help="Pull the base images again first (not the stack's own)."
)
@click.option("--locked", is_flag=True, help="Fail when stack.lock is missing or stale.")
@click.option(
    "--push",
    is_flag=True,
    help="Then push each built image to the registry its ref names (for a cluster's nodes).",
)
@parallel_option
@stack_options
@engine_options
def build(
    file: Path,
    images: tuple[str, ...],
    no_cache: bool,
    pull: bool,
    locked: bool,
    push: bool,
    parallel: int,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Build the images of the stack in FILE (those named, else every image it builds),
    whether or not anything changed; base images of the stack that are missing are built
    first. Containers are left as they are: 'declarun apply' replaces those on a new image."""
    stack = source.load_or_exit(file)
    pushed = _refs_to_push(stack, images) if push else []
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
        if not _push_all(engine, pushed):
            sys.exit(1)


def _refs_to_push(stack: Stack, names: tuple[str, ...]) -> list[str]:
    """The references ``--push`` sends: each built image named (all, when none are) needs a
    ref with a registry in it, said before anything is built."""
    chosen = names or tuple(n for n, image in stack.images.items() if image.build is not None)
    refs, untagged = [], []
    for name in chosen:
        image = stack.images.get(name)
        if image is None or image.build is None:
            continue  # build_stack names the unknown image with its hint
        if image.ref is None:
            untagged.append(name)
        else:
            refs.append(image.ref)
    if untagged:
        click.echo(
            f"error: cannot push {', '.join(untagged)}: a built image needs a ref naming its "
            "registry to be pushed (ref: REGISTRY/REPOSITORY:TAG under the image)",
            err=True,
        )
        sys.exit(1)
    return refs


def _push_all(engine: Engine, refs: list[str]) -> bool:
    """Push ``refs`` one after the other, a line each; False when one failed."""
    console = stdout_console()
    ok = True
    for ref in refs:
        started = time.monotonic()
        try:
            push_image(engine, ref, ctx=StepContext(ref, NullProgress()))
        except StepFailed as failed:
            console.print(f"✗ {failed}", markup=False, highlight=False)
            ok = False
            continue
        took = time.monotonic() - started
        console.print(f"✓ push {ref}  {took:.1f}s", markup=False, highlight=False)
    if refs:
        console.print(f"\nPush {'complete' if ok else 'failed'}: {len(refs)} image(s).")
    return ok
