"""``declarun status | logs | exec | watch``: day-to-day work with an applied stack."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

import click
from rich.table import Table

from declarun.cli.apply_output import live_runner, print_report
from declarun.cli.logs_output import follow_logs, print_logs
from declarun.cli.options import (
    EngineTarget,
    StackSource,
    engine_options,
    parallel_option,
    stack_options,
)
from declarun.cli.output import stderr_console, stdout_console
from declarun.errors import DeclarunError, EngineError
from declarun.reconcile.apply import ApplyOptions, ApplyReport
from declarun.reconcile.status import status_rows
from declarun.stack.model import Stack
from declarun.stack.naming import replica_names

__all__ = ["exec_command", "logs", "status", "watch"]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--output", "output_format", type=click.Choice(["text", "json"]), default="text",
              show_default=True)  # fmt: skip
@stack_options
@engine_options
def status(file: Path, output_format: str, source: StackSource, target: EngineTarget) -> None:
    """Each resource of the stack in FILE: desired vs actual state, health, ports."""
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_status

        swarm_status(stack, output_format, target)
        return
    with target.connect() as engine:
        rows = status_rows(engine, stack)
    if output_format == "json":
        click.echo(json.dumps({"stack": stack.name, "resources": rows}, indent=2))
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("RESOURCE", "ENGINE NAME", "DESIRED", "ACTUAL", "HEALTH", "PORTS", "PLAN"):
        # Names and ports must stay whole (people copy them); other cells may wrap.
        table.add_column(column, no_wrap=column in ("RESOURCE", "ENGINE NAME", "PORTS"))
    for row in rows:
        plan_cell = "ok" if row["action"] == "noop" else row["action"]
        style = "" if row["action"] == "noop" else "yellow"
        table.add_row(
            f"{row['kind']} {row['name']}",
            row["engine_name"],
            row["desired"],
            row["actual"],
            row["health"] or "",
            ", ".join(row["ports"]),
            f"[{style}]{plan_cell}[/{style}]" if style else plan_cell,
        )
    stdout_console().print(table)


def _engine_names(stack: Stack, wanted: tuple[str, ...]) -> list[str]:
    from declarun.plan.identity import container_name

    everything: dict[str, list[str]] = {}
    for container in stack.containers.values():
        replicas = replica_names(container)
        everything[container.name] = replicas
        for replica in replicas:
            everything.setdefault(replica, [replica])
    if not wanted:
        chosen = [r for c in stack.containers.values() for r in replica_names(c)]
    else:
        unknown = [name for name in wanted if name not in everything]
        if unknown:
            known = ", ".join(everything) or "none"
            raise EngineError(f"no container {', '.join(unknown)} in the stack (it has: {known})")
        chosen = list(dict.fromkeys(r for name in wanted for r in everything[name]))
    return [container_name(stack.name, replica) for replica in chosen]


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("containers", nargs=-1)
@click.option("-f", "--follow", is_flag=True, help="Keep printing new lines.")
@click.option("--tail", type=click.IntRange(min=0), help="Only the last N lines of each.")
@click.option("-t", "--timestamps", is_flag=True, help="Show each line's time.")
@stack_options
@engine_options
def logs(
    file: Path,
    containers: tuple[str, ...],
    follow: bool,
    tail: int | None,
    timestamps: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """The logs of the stack's containers (all, or CONTAINERS), interleaved by time."""
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_logs

        swarm_logs(
            stack, containers, follow=follow, tail=tail, timestamps=timestamps, target=target
        )
        return
    names = _engine_names(stack, containers)
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
@click.argument("file", type=click.Path(path_type=Path))
@click.argument("container")
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("-u", "--user", help="Run as this user (name or uid[:gid]).")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable.")
@stack_options
@engine_options
def exec_command(
    file: Path,
    container: str,
    command: tuple[str, ...],
    user: str | None,
    workdir: str | None,
    env: tuple[str, ...],
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Run COMMAND in the stack's CONTAINER (``-- CMD ARGS...``); its exit code is ours."""
    stack = source.load_or_exit(file)
    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_exec

        sys.exit(
            swarm_exec(
                stack, container, command, user=user or "", workdir=workdir, env=env, target=target
            )
        )
    name = _engine_names(stack, (container,))[0]
    with target.connect() as engine:
        exec_id = engine.exec_create(name, command, user=user or "", workdir=workdir, env=env)
        for out, err in engine.exec_start(exec_id):
            if out:
                sys.stdout.buffer.write(out)
                sys.stdout.buffer.flush()
            if err:
                sys.stderr.buffer.write(err)
                sys.stderr.buffer.flush()
        code = engine.exec_exit_code(exec_id)
    sys.exit(int(code) if code is not None else 1)


@click.command()
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--no-prune", "no_prune", is_flag=True, help="Keep resources that left the stack.")
@parallel_option
@stack_options
@engine_options
def watch(
    file: Path, no_prune: bool, parallel: int, source: StackSource, target: EngineTarget
) -> None:
    """Keep the engine matching FILE: re-apply when a container drifts or FILE changes."""
    from declarun.reconcile.watch import WatchHooks, watch_stack

    if target.is_swarm:
        from declarun.cli.swarm_commands import swarm_watch

        swarm_watch(file, source, ApplyOptions(prune=not no_prune, parallel=parallel), target)
        return
    console, errors = stdout_console(), stderr_console()

    def on_report(report: ApplyReport) -> None:
        if not report.nothing_to_do:
            print_report(report, console)

    def on_error(error: DeclarunError) -> None:
        errors.print(f"[red]error:[/red] {error}", highlight=False)

    def on_wake(why: str) -> None:
        hooks.on_plan = live_runner()  # a fresh runner: "applying again" is per wake-up
        if why != "start":
            console.print(f"Woken by {why}: checking.", markup=False, highlight=False)

    hooks = WatchHooks(
        on_plan=live_runner(), on_report=on_report, on_error=on_error, on_wake=on_wake
    )
    source.load_or_exit(file)  # a broken file at start is an ordinary error exit
    stop = threading.Event()
    apply_options = ApplyOptions(prune=not no_prune, parallel=parallel)
    with target.connect() as engine:
        console.print(f"Watching {file} (Ctrl-C to stop).", markup=False)
        try:
            watch_stack(engine, file, source.load, apply_options, stop, hooks)
        except KeyboardInterrupt:
            stop.set()
    console.print("Stopped watching.", markup=False)
