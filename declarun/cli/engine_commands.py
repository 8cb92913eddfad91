"""``declarun plan | apply | destroy | lock``: the commands that change (or would change) an engine.

Exit codes: ``plan`` (and ``apply --dry-run``) 0 when there is nothing to do, 2 when there are
changes, 1 on error; ``apply`` and ``destroy`` 0 when the machine matches, 1 otherwise.
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
from declarun.cli.output import stderr_console, stdout_console
from declarun.plan.model import Plan
from declarun.plan.render import NO_CHANGES, render_plan
from declarun.reconcile.apply import (
    ApplyOptions,
    ApplyReport,
    apply_saved_plan,
    apply_stack,
    destroy_stack,
    make_plan,
)
from declarun.reconcile.executor import DEFAULT_PARALLEL
from declarun.reconcile.saved import PlanSource, is_saved_plan, read_saved_plan, write_saved_plan

__all__ = ["apply", "destroy", "lock", "plan"]


def _plan_exit(plan: Plan) -> int:
    if plan.errors:
        return 1
    return 0 if plan.is_empty else 2


def _finish(report: ApplyReport, verb: str) -> None:
    console = stdout_console()
    if report.nothing_to_do:
        console.print(NO_CHANGES, markup=False)
        console.print("Nothing to do: no action taken.", markup=False)
        return
    if not print_report(report, console, verb=verb):
        sys.exit(1)


def _apply_options(prune: bool, volumes: bool, locked: bool, parallel: int) -> ApplyOptions:
    return ApplyOptions(prune=prune, volumes=volumes, locked=locked, parallel=parallel)


def _prune_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option("--locked", is_flag=True, help="Fail when stack.lock is missing or stale.")(
        func
    )
    func = click.option(
        "--volumes",
        is_flag=True,
        help="Also remove volumes that left the stack (never keep: true).",
    )(func)
    func = click.option(
        "--no-prune", "no_prune", is_flag=True, help="Keep resources that left the stack."
    )(func)
    return func


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan (JSON) for a later 'declarun apply PLAN'.")  # fmt: skip
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="How to print the plan.")  # fmt: skip
@_prune_options
@stack_options
@engine_options
def plan(
    file: Path,
    out: Path | None,
    output_format: str,
    no_prune: bool,
    volumes: bool,
    locked: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Show what apply would change in FILE's stack, and why (exit 0 none, 2 changes, 1 error)."""
    stack = source.load_or_exit(file)
    options = _apply_options(not no_prune, volumes, locked, DEFAULT_PARALLEL)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_plan

        made = swarm_plan(stack, options, target)
    else:
        with target.connect() as engine:
            made = make_plan(engine, stack, options).plan
    if out is not None:
        write_saved_plan(made, PlanSource(file, source.profiles, source.vars_files), out)
    if output_format == "json":
        click.echo(made.to_json(), nl=False)
    else:
        render_plan(made, stdout_console())
        if out is not None:
            stdout_console().print(f"Saved the plan to {out}.", markup=False)
    sys.exit(_plan_exit(made))


@click.command()
@click.argument("file", metavar="FILE|PLAN.json", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only show the plan (same as 'declarun plan').")
@parallel_option
@_prune_options
@stack_options
@engine_options
def apply(
    file: Path,
    dry_run: bool,
    parallel: int,
    no_prune: bool,
    volumes: bool,
    locked: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Make the engine match the stack in FILE, or carry out a plan saved by 'plan -o'."""
    options = _apply_options(not no_prune, volumes, locked, parallel)
    saved: Plan | None = None
    if is_saved_plan(file):
        saved, made_from = read_saved_plan(file)
        file, source = made_from.file, source.with_files(made_from.profiles, made_from.vars_files)
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_apply, swarm_plan

        if dry_run:
            made = saved if saved is not None else swarm_plan(stack, options, target)
            render_plan(made, stdout_console())
            sys.exit(_plan_exit(made))
        _finish(swarm_apply(stack, saved, options, target), "Apply")
        return
    with target.connect() as engine:
        if dry_run:
            made = saved if saved is not None else make_plan(engine, stack, options).plan
            render_plan(made, stdout_console())
            sys.exit(_plan_exit(made))
        if saved is not None:
            report = apply_saved_plan(engine, stack, saved, options, live_runner())
        else:
            report = apply_stack(engine, stack, options, live_runner())
    _finish(report, "Apply")


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--volumes", is_flag=True, help="Also remove the stack's volumes (never keep: true).")
@parallel_option
@stack_options
@engine_options
def destroy(
    file: Path, volumes: bool, parallel: int, source: StackSource, target: EngineTarget
) -> None:
    """Remove everything the stack in FILE owns on the engine, dependents first."""
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_destroy

        report = swarm_destroy(stack, parallel, target, volumes=volumes)
    else:
        with target.connect() as engine:
            report = destroy_stack(
                engine, stack, volumes=volumes, parallel=parallel, on_plan=live_runner()
            )
    if report.nothing_to_do:
        stdout_console().print(
            f"Nothing to destroy: stack '{stack.name}' owns nothing on this engine.", markup=False
        )
        return
    if not print_report(report, stdout_console(), verb="Destroy"):
        sys.exit(1)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@stack_options
@engine_options
def lock(file: Path, source: StackSource, target: EngineTarget) -> None:
    """Pin every image the stack in FILE pulls, and the base images of its builds, to a
    digest, in stack.lock beside it."""
    from declarun.observe.dockerfiles import base_images
    from declarun.plan.lock import lock_path
    from declarun.reconcile.lockfile import resolve_lock, write_lock

    stack = source.load_or_exit(file)
    with target.connect() as engine:
        platform = engine.version().platform
        resolved = resolve_lock(engine, stack, platform, base_images(stack, platform))
    path = lock_path(stack)
    write_lock(resolved, path)
    count = len(resolved.images)
    stderr_console().print(
        f"Wrote {path}: {count} image{'s' if count != 1 else ''} pinned for {platform}.",
        markup=False,
    )
