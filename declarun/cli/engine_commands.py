"""``declarun plan | apply | destroy | lock``: the commands that change (or would change) an engine.

Exit codes: ``plan`` (and ``apply --dry-run``) 0 when there is nothing to do, 2 when there are
changes, 1 on error; ``apply`` and ``destroy`` 0 when the machine matches, 1 otherwise.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import click

from declarun.cli.confirm import confirmation, yes_option
from declarun.cli.interrupt import interruptible
from declarun.cli.locking import held_lock, lock_timeout_option
from declarun.cli.options import (
    EngineTarget,
    StackSource,
    engine_options,
    parallel_option,
    settle_option,
    stack_file,
    stack_options,
)
from declarun.cli.output import stderr_console, stdout_console
from declarun.plan.model import Plan
from declarun.plan.render import NO_CHANGES, plain_plan_text, render_plan
from declarun.plan.staleness import observed_objects
from declarun.reconcile.apply import (
    ApplyOptions,
    ApplyReport,
    PlanRun,
    apply_saved_plan,
    apply_stack,
    destroy_stack,
    make_plan,
)
from declarun.reconcile.executor import DEFAULT_PARALLEL, ProgressSink
from declarun.reconcile.saved import (
    PlanSource,
    is_saved_plan,
    read_saved_plan,
    saved_plan_text,
    write_saved_plan,
)
from declarun.reconcile.settle import DEFAULT_SETTLE

__all__ = ["apply", "destroy", "lock", "plan"]


def _print_plan(plan: Plan) -> None:
    """The plan on standard output; plain text without rich when that is all it is (a plan
    with nothing to do: issue 16, a no-op plan starts fast), byte for byte what rich prints."""
    plain = plain_plan_text(plan)
    if plain is not None:
        click.echo(plain, nl=False)
        return
    render_plan(plan, stdout_console())


def _live_runner(confirm: Callable[[Plan], None] | None = None) -> PlanRun:
    """:func:`declarun.cli.apply_output.live_runner`, made (and rich imported) only when a
    plan is carried out: an apply with nothing to do prints no progress."""
    made: PlanRun | None = None

    @contextlib.contextmanager
    def run(plan: Plan) -> Iterator[ProgressSink]:
        nonlocal made
        if made is None:
            from declarun.cli.apply_output import live_runner as rich_runner

            made = rich_runner(confirm)
        with made(plan) as progress:
            yield progress

    return run


def _print_report(report: ApplyReport, verb: str) -> bool:
    """:func:`declarun.cli.apply_output.print_report` on standard output."""
    from declarun.cli.apply_output import print_report as rich_report

    return rich_report(report, stdout_console(), verb=verb)


def _plan_exit(plan: Plan) -> int:
    if plan.errors:
        return 1
    return 0 if plan.is_empty else 2


def _finish(report: ApplyReport, verb: str) -> None:
    if report.cancelled:
        _print_report(report, verb)
        sys.exit(130)
    if report.nothing_to_do:
        if not report.failing:
            # Plain text: what the rich console printed (no markup, style or wrapping).
            click.echo(NO_CHANGES)
            click.echo("Nothing to do: no action taken.")
            return
        render_plan(report.remaining, stdout_console())
        stdout_console().print()
    if not _print_report(report, verb):
        sys.exit(1)


def _apply_options(
    prune: bool, volumes: bool, locked: bool, parallel: int, settle: float = DEFAULT_SETTLE
) -> ApplyOptions:
    return ApplyOptions(
        prune=prune, volumes=volumes, locked=locked, parallel=parallel, settle=settle
    )


def _prune_options(func: click.decorators.FC) -> click.decorators.FC:
    func = click.option(
        "--locked", is_flag=True, help="Fail when FILE's lock (FILE.lock) is missing or stale."
    )(func)
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
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("-o", "--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Save the plan (JSON) for a later 'declarun apply PLAN' ('-': standard "
              "output, instead of the text).")  # fmt: skip
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True, help="How to print the plan.")  # fmt: skip
@_prune_options
@stack_options
@engine_options
def plan(
    file: Path | None,
    out: Path | None,
    output_format: str,
    no_prune: bool,
    volumes: bool,
    locked: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Show what apply would change in FILE's stack, and why (exit 0 none, 2 changes, 1 error)."""
    file = stack_file(file)
    stack = source.load_or_exit(file)
    options = _apply_options(not no_prune, volumes, locked, DEFAULT_PARALLEL)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_plan

        # A Swarm plan keeps no record of the objects it saw: a stale one is refused
        # without the list of what moved.
        made, observed = swarm_plan(stack, options, target), None
    else:
        with target.connect() as engine:
            planned = make_plan(engine, stack, options)
        made, observed = planned.plan, observed_objects(planned.observed)
    where = PlanSource(
        file,
        source.profiles,
        source.vars_files,
        input_format=source.input_format,
        compose_files=source.compose_files,
        project_name=source.project_name,
        env_files=source.env_files,
        observed=observed,
    )
    if out is not None and str(out) == "-":
        click.echo(saved_plan_text(made, where), nl=False)
        sys.exit(_plan_exit(made))
    if out is not None:
        write_saved_plan(made, where, out)
    if output_format == "json":
        click.echo(made.to_json(), nl=False)
    else:
        _print_plan(made)
        if out is not None:
            stdout_console().print(f"Saved the plan to {out}.", markup=False)
    sys.exit(_plan_exit(made))


@click.command()
@click.argument("file", metavar="[FILE|PLAN.json]", required=False, type=click.Path(path_type=Path))
@click.option("--dry-run", is_flag=True, help="Only show the plan (same as 'declarun plan').")
@yes_option
@parallel_option
@settle_option
@lock_timeout_option
@_prune_options
@stack_options
@engine_options
def apply(
    file: Path | None,
    dry_run: bool,
    yes: bool,
    parallel: int,
    settle: float,
    lock_timeout: float,
    no_prune: bool,
    volumes: bool,
    locked: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Make the engine match the stack in FILE, or carry out a plan saved by 'plan -o'."""
    file = stack_file(file)
    options = _apply_options(not no_prune, volumes, locked, parallel, settle)
    saved: Plan | None = None
    recorded: dict[str, dict[str, str]] | None = None
    if is_saved_plan(file):
        saved, made_from = read_saved_plan(file)
        file = made_from.file
        source = source.with_files(
            made_from.profiles,
            made_from.vars_files,
            input_format=made_from.input_format,
            compose_files=made_from.compose_files,
            project_name=made_from.project_name,
            env_files=made_from.env_files,
        )
        if made_from.observed is not None:
            recorded = {k: dict(v) for k, v in made_from.observed.items()}
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_apply, swarm_plan

        if dry_run:
            made = saved if saved is not None else swarm_plan(stack, options, target)
            _print_plan(made)
            sys.exit(_plan_exit(made))
        _finish(
            swarm_apply(stack, saved, options, target, yes=yes, lock_timeout=lock_timeout),
            "Apply",
        )
        return
    with target.connect() as engine:
        if dry_run:
            made = saved if saved is not None else make_plan(engine, stack, options).plan
            _print_plan(made)
            sys.exit(_plan_exit(made))
        with (
            held_lock(engine, stack.name, "apply", lock_timeout),
            interruptible(stdout_console) as cancel,
        ):
            if saved is not None:  # reviewed and saved on purpose: applied as it is
                report = apply_saved_plan(
                    engine, stack, saved, options, _live_runner(), cancel, recorded
                )
            else:
                asked = confirmation("Apply", yes=yes, always=False)
                report = apply_stack(engine, stack, options, _live_runner(asked), cancel)
    _finish(report, "Apply")


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--volumes", is_flag=True, help="Also remove the stack's volumes (never keep: true).")
@yes_option
@parallel_option
@lock_timeout_option
@stack_options
@engine_options
def destroy(
    file: Path | None,
    volumes: bool,
    yes: bool,
    parallel: int,
    lock_timeout: float,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Remove everything the stack in FILE owns on the engine, dependents first (shown, then
    asked about on a terminal)."""
    stack = source.load_or_exit(stack_file(file))
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_destroy

        report = swarm_destroy(
            stack, parallel, target, volumes=volumes, yes=yes, lock_timeout=lock_timeout
        )
    else:
        with (
            target.connect() as engine,
            held_lock(engine, stack.name, "destroy", lock_timeout),
            interruptible(stdout_console) as cancel,
        ):
            report = destroy_stack(
                engine,
                stack,
                volumes=volumes,
                parallel=parallel,
                on_plan=_live_runner(confirmation("Destroy", yes=yes, always=True)),
                cancel=cancel,
            )
    if report.cancelled:
        _print_report(report, "Destroy")
        sys.exit(130)
    if report.nothing_to_do:
        stdout_console().print(
            f"Nothing to destroy: stack '{stack.name}' owns nothing on this engine.", markup=False
        )
        return
    if not _print_report(report, "Destroy"):
        sys.exit(1)


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite a lock file of another stack.")
@stack_options
@engine_options
def lock(file: Path | None, force: bool, source: StackSource, target: EngineTarget) -> None:
    """Pin every image the stack in FILE pulls, and the base images of its builds, to a
    digest, in FILE.lock beside it (stack.lock for stack.yaml)."""
    from declarun.observe.dockerfiles import base_images
    from declarun.plan.lock import lock_path
    from declarun.reconcile.lockfile import check_overwrite, resolve_lock, write_lock

    stack = source.load_or_exit(stack_file(file))
    path = lock_path(stack)
    if not force:
        check_overwrite(path, stack)
    with target.connect() as engine:
        platform = engine.version().platform
        resolved = resolve_lock(engine, stack, platform, base_images(stack, platform))
    write_lock(resolved, path)
    count = len(resolved.images)
    stderr_console().print(
        f"Wrote {path}: {count} image{'s' if count != 1 else ''} pinned for {platform}.",
        markup=False,
    )
