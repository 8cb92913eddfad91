"""``declarun plan | apply | destroy | lock``: the commands that change (or would change) an engine.

Exit codes: ``plan`` (and ``apply --dry-run``) 0 when there is nothing to do, 2 when there are
changes, 1 on error; ``apply`` and ``destroy`` 0 when the machine matches, 1 otherwise.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from declarun.cli.apply_output import live_runner, print_report
from declarun.cli.engine_common import (
    engine_client,
    engine_options,
    load_or_exit,
    stack_load_options,
)
from declarun.cli.output import stderr_console, stdout_console
from declarun.cli.stack_commands import stack_options
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
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
    host: str | None,
    engine: str,
) -> None:
    """Show what apply would change in FILE's stack, and why (exit 0 none, 2 changes, 1 error)."""
    stack = load_or_exit(file, stack_load_options(profiles, vars_files, var_overrides))
    options = _apply_options(not no_prune, volumes, locked, DEFAULT_PARALLEL)
    with engine_client(host, engine) as connected:
        made = make_plan(connected, stack, options).plan
    if out is not None:
        write_saved_plan(made, PlanSource(file, profiles, vars_files), out)
    if output_format == "json":
        click.echo(made.to_json(), nl=False)
    else:
        render_plan(made, stdout_console())
        if out is not None:
            stdout_console().print(f"Saved the plan to {out}.", markup=False)
    sys.exit(_plan_exit(made))


@click.command()
@click.argument("target", metavar="FILE|PLAN.json", type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only show the plan (same as 'declarun plan').")
@click.option("--parallel", type=click.IntRange(min=1), default=DEFAULT_PARALLEL,
              show_default=True, help="Changes carried out at once.")  # fmt: skip
@_prune_options
@stack_options
@engine_options
def apply(
    target: Path,
    dry_run: bool,
    parallel: int,
    no_prune: bool,
    volumes: bool,
    locked: bool,
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
    host: str | None,
    engine: str,
) -> None:
    """Make the engine match the stack in FILE, or carry out a plan saved by 'plan -o'."""
    options = _apply_options(not no_prune, volumes, locked, parallel)
    saved: Plan | None = None
    if is_saved_plan(target):
        saved, source = read_saved_plan(target)
        target, profiles, vars_files = source.file, source.profiles, source.vars_files
    stack = load_or_exit(target, stack_load_options(profiles, vars_files, var_overrides))
    with engine_client(host, engine) as connected:
        if dry_run:
            made = saved if saved is not None else make_plan(connected, stack, options).plan
            render_plan(made, stdout_console())
            sys.exit(_plan_exit(made))
        if saved is not None:
            report = apply_saved_plan(connected, stack, saved, options, live_runner())
        else:
            report = apply_stack(connected, stack, options, live_runner())
    _finish(report, "Apply")


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--volumes", is_flag=True, help="Also remove the stack's volumes (never keep: true).")
@click.option("--parallel", type=click.IntRange(min=1), default=DEFAULT_PARALLEL,
              show_default=True, help="Changes carried out at once.")  # fmt: skip
@stack_options
@engine_options
def destroy(
    file: Path,
    volumes: bool,
    parallel: int,
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
    host: str | None,
    engine: str,
) -> None:
    """Remove everything the stack in FILE owns on the engine, dependents first."""
    stack = load_or_exit(file, stack_load_options(profiles, vars_files, var_overrides))
    with engine_client(host, engine) as connected:
        report = destroy_stack(
            connected, stack, volumes=volumes, parallel=parallel, on_plan=live_runner()
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
def lock(
    file: Path,
    profiles: tuple[str, ...],
    vars_files: tuple[Path, ...],
    var_overrides: dict[str, str],
    host: str | None,
    engine: str,
) -> None:
    """Pin every image of the stack in FILE to a digest, in stack.lock beside it."""
    from declarun.plan.lock import lock_path
    from declarun.reconcile.lockfile import resolve_lock, write_lock

    stack = load_or_exit(file, stack_load_options(profiles, vars_files, var_overrides))
    with engine_client(host, engine) as connected:
        platform = connected.version().platform
        resolved = resolve_lock(connected, stack, platform)
    path = lock_path(stack)
    write_lock(resolved, path)
    count = len(resolved.images)
    stderr_console().print(
        f"Wrote {path}: {count} image{'s' if count != 1 else ''} pinned for {platform}.",
        markup=False,
    )
