"""``declarun status | logs | exec | watch``: day-to-day work with an applied stack."""

from __future__ import annotations

import sys
import threading
from pathlib import Path

import click

from declarun.cli.apply_output import print_report
from declarun.cli.interrupt import interruptible
from declarun.cli.locking import held_lock, lock_timeout_option
from declarun.cli.logs_output import follow_logs, print_logs
from declarun.cli.options import (
    EngineTarget,
    StackSource,
    engine_options,
    parallel_option,
    settle_option,
    stack_file,
    stack_file_and_words,
    stack_options,
)
from declarun.cli.output import stderr_console, stdout_console
from declarun.cli.replicas import chosen_replicas
from declarun.cli.status_output import Row, planned, print_status
from declarun.cli.terminal import decide_tty, exec_attached
from declarun.reconcile.apply import ApplyOptions, ApplyReport
from declarun.reconcile.status import status_rows
from declarun.stack.model import Stack

__all__ = ["exec_command", "logs", "status", "watch"]


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@stack_options
@engine_options
def status(
    file: Path | None, output_format: str, source: StackSource, target: EngineTarget
) -> None:
    """Each resource of the stack in FILE: desired vs actual state, health, ports."""
    stack = source.load_or_exit(stack_file(file))
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_status

        swarm_status(stack, output_format, target)
        return
    with target.connect() as engine:
        rows = status_rows(engine, stack)
    print_status(
        stack.name,
        rows,
        output_format,
        detail=("HEALTH", lambda row: row["health"] or ""),
        plan=_planned_or_failing,
    )


def _planned_or_failing(row: Row) -> tuple[str, str]:
    """The PLAN cell of a container that fails (a crash loop) names its problem, in red."""
    plan_cell, style = planned(row)
    if row["problem"]:
        plan_cell = f"{plan_cell}; failing: {row['problem']}"
        if row["action"] == "noop":
            plan_cell = f"failing: {row['problem']}"
        style = "red"
    return plan_cell, style


def _engine_names(stack: Stack, wanted: tuple[str, ...]) -> list[str]:
    from declarun.plan.identity import container_name

    return [container_name(stack.name, replica) for replica in chosen_replicas(stack, wanted)]


@click.command()
@click.argument("words", nargs=-1, metavar="[FILE] [CONTAINERS]...")
@click.option("-f", "--follow", is_flag=True,
              help="Keep printing new lines, across replacements and restarts, until Ctrl-C.")  # fmt: skip
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines of each.")
@click.option("-t", "--timestamps", is_flag=True, help="Show each line's time.")
@stack_options(file_flags=("--file",))
@engine_options
def logs(
    words: tuple[str, ...],
    follow: bool,
    tail: int | None,
    timestamps: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """The logs of the stack's containers (all, or CONTAINERS), interleaved by time."""
    file, containers = stack_file_and_words(words)
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_logs

        swarm_logs(
            stack, tuple(containers), follow=follow, tail=tail, timestamps=timestamps,
            target=target,
        )  # fmt: skip
        return
    names = _engine_names(stack, tuple(containers))
    prefix = f"{stack.name}-"
    with target.connect() as engine:
        if follow:
            try:
                follow_logs(engine, names, prefix, tail=tail, timestamps=timestamps)
            except KeyboardInterrupt:
                return
        else:
            print_logs(engine, names, prefix, tail=tail, timestamps=timestamps)


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, required=True, type=click.UNPROCESSED,
                metavar="[FILE] CONTAINER -- COMMAND...")  # fmt: skip
@click.option("-u", "--user", help="Run as this user (name or uid[:gid]).")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable.")
@click.option("-i", "--interactive/--no-interactive", default=True, show_default=True,
              help="Keep stdin open and pass ours in.")  # fmt: skip
@click.option("-t", "--tty", "force_tty", is_flag=True, help="Allocate a TTY even off a terminal.")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True,
              help="Do not allocate a TTY (by default one is, when stdin and stdout are "
              "terminals).")  # fmt: skip
@stack_options
@engine_options
def exec_command(
    words: tuple[str, ...],
    user: str | None,
    workdir: str | None,
    env: tuple[str, ...],
    interactive: bool,
    force_tty: bool,
    no_tty: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Run COMMAND in the stack's CONTAINER (``-- CMD ARGS...``), attached here (a TTY on a
    terminal, as Compose); its exit code is ours."""
    file, rest = stack_file_and_words(words)
    if len(rest) < 2:
        raise click.UsageError("give a CONTAINER and the COMMAND to run in it: [FILE] "
                               "CONTAINER -- COMMAND...")  # fmt: skip
    container, command = rest[0], rest[1:]
    stack = source.load_or_exit(file)
    tty = decide_tty(force_tty, no_tty)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_exec

        sys.exit(swarm_exec(stack, container, command, user=user or "", workdir=workdir,
                            env=env, interactive=interactive, tty=tty, target=target))  # fmt: skip
    name = _engine_names(stack, (container,))[0]
    with target.connect() as engine:
        code = exec_attached(engine, name, command, user=user or "", workdir=workdir, env=env,
                             interactive=interactive, tty=tty)  # fmt: skip
    sys.exit(code)


@click.command()
@click.argument("file", required=False, type=click.Path(path_type=Path))
@click.option("--no-prune", "no_prune", is_flag=True, help="Keep resources that left the stack.")
@parallel_option
@settle_option
@lock_timeout_option
@stack_options
@engine_options
def watch(
    file: Path | None,
    no_prune: bool,
    parallel: int,
    settle: float,
    lock_timeout: float,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Keep the engine matching FILE: re-apply when a container drifts or FILE changes."""
    from declarun.cli.watch_hooks import watch_hooks
    from declarun.reconcile.watch import watch_stack

    file = stack_file(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_watch

        swarm_watch(
            file, source, ApplyOptions(prune=not no_prune, parallel=parallel), target, lock_timeout
        )
        return
    console, errors = stdout_console(), stderr_console()

    shown_failing: list[object] = [()]

    def on_report(report: ApplyReport) -> None:
        # A crash loop wakes the watch at every death: say so when it starts or changes,
        # not at each wake-up.
        failing = tuple((f.name, f.message) for f in report.failing)
        if not report.nothing_to_do or failing != shown_failing[0]:
            print_report(report, console)
        shown_failing[0] = failing

    hooks = watch_hooks(console, errors, on_report, quiet_wakes=("start",))
    stack = source.load_or_exit(file)  # a broken file at start is an ordinary error exit
    stop = threading.Event()
    apply_options = ApplyOptions(prune=not no_prune, parallel=parallel, settle=settle)
    # The lock is the stack's while the watch runs: an apply elsewhere waits for it.
    with (
        target.connect() as engine,
        held_lock(engine, stack.name, "watch", lock_timeout),
        interruptible(lambda: console, on_request=stop.set) as cancel,
    ):
        console.print(f"Watching {file} (Ctrl-C to stop).", markup=False)
        watch_stack(engine, file, source.load, apply_options, stop, hooks, cancel)
    console.print("Stopped watching.", markup=False)
