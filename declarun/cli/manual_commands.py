"""``declarun run | start | stop | restart | pull``: what Compose users reach for by name.

``run FILE CONTAINER [-- CMD]`` starts a one-off copy of a container's definition, attached
to the terminal (a TTY when stdin and stdout are terminals), removed afterwards unless
``--no-rm``; its exit code is ours. ``start``, ``stop`` and ``restart`` act on the named
containers (all when none is named) under the stack's lock; ``pull`` pulls their images
whatever the pull policy. See ``declarun.reconcile.manual``.
"""

from __future__ import annotations

import contextlib
import sys
import uuid

import click
from rich.text import Text

from declarun.cli.apply_output import print_failure
from declarun.cli.interrupt import interruptible
from declarun.cli.locking import held_lock, lock_timeout_option
from declarun.cli.options import (
    EngineTarget,
    StackSource,
    engine_options,
    parallel_option,
    stack_file_and_words,
    stack_options,
)
from declarun.cli.output import stderr_console, stdout_console
from declarun.cli.progress import RichProgress
from declarun.cli.replicas import chosen_replicas
from declarun.cli.terminal import decide_tty, run_attached
from declarun.engine.port import Engine
from declarun.errdefs import ErrorKind, NotFound
from declarun.errors import EngineError
from declarun.observe.state import observe_stack
from declarun.reconcile.actions import create_container
from declarun.reconcile.executor import Cancellation, Step, execute
from declarun.reconcile.manual import ContainerAction, container_steps, prepare_one_off, pull_steps
from declarun.stack.naming import replica_names

__all__ = ["pull", "restart", "run", "start", "stop"]

_PAST = {"start": "Started", "stop": "Stopped", "restart": "Restarted", "pull": "Pulled"}


def _walk(steps: list[Step], what: str, parallel: int, cancel: Cancellation) -> None:
    """Run ``steps`` with live progress; exit 1 with the failures' reports when any failed."""
    console = stdout_console()
    if not steps:
        console.print(f"Nothing to {what}.", markup=False)
        return
    with RichProgress(console) as progress:
        result = execute(steps, parallel=parallel, progress=progress, cancel=cancel)
    failed = result.by_status("failed")
    done = len(result.by_status("done"))
    if result.cancelled:
        console.print(Text(f"Interrupted: {done} done.", style="bold yellow"))
        sys.exit(130)
    if not failed and result.ok:
        noun = "container" if what != "pull" else "image"
        console.print(Text(f"{_PAST[what]} {done} {noun}{'s' if done != 1 else ''}.", style="bold"))
        return
    skipped = result.by_status("skipped")
    console.print(
        Text(
            f"{what.capitalize()} failed: {len(failed)} failed, {len(skipped)} skipped, "
            f"{done} done.",
            style="bold red",
        )
    )
    for outcome in failed:
        print_failure(console, outcome.label, outcome.error or "", outcome.report)
    sys.exit(1)


def _container_command(action: ContainerAction, summary: str) -> click.Command:
    @click.command(action, help=summary)
    @click.argument("words", nargs=-1, metavar="[FILE] [CONTAINERS]...")
    @parallel_option
    @lock_timeout_option
    @stack_options
    @engine_options
    def command(
        words: tuple[str, ...],
        parallel: int,
        lock_timeout: float,
        source: StackSource,
        target: EngineTarget,
    ) -> None:
        file, containers = stack_file_and_words(words)
        stack = source.load_or_exit(file)
        replicas = chosen_replicas(stack, containers)
        with (
            target.connect() as engine,
            held_lock(engine, stack.name, action, lock_timeout),
            interruptible(stdout_console) as cancel,
        ):
            desired = observe_stack(engine, stack).desired
            steps = container_steps(engine, stack, desired, replicas, action)
            _walk(steps, action, parallel, cancel)

    return command


start = _container_command(
    "start",
    "Start the stack's CONTAINERS (all when none is named), dependencies first; each must "
    "turn healthy (with a health check) or keep running, a run: once job must complete.",
)
stop = _container_command(
    "stop",
    "Stop the stack's CONTAINERS (all when none is named), dependents first, each with its "
    "stop_grace_period. The next apply starts them again.",
)
restart = _container_command(
    "restart",
    "Stop and start the stack's CONTAINERS again (all when none is named).",
)


@click.command()
@click.argument("words", nargs=-1, metavar="[FILE] [CONTAINERS]...")
@parallel_option
@stack_options
@engine_options
def pull(
    words: tuple[str, ...],
    parallel: int,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Pull the images of the stack's CONTAINERS (all its images when none is named),
    whatever their pull policy."""
    file, containers = stack_file_and_words(words)
    stack = source.load_or_exit(file)
    if containers:
        replicas = set(chosen_replicas(stack, containers))
        images = list(
            dict.fromkeys(
                c.image for c in stack.containers.values() if set(replica_names(c)) & replicas
            )
        )
    else:
        images = list(stack.images)
    with target.connect() as engine, interruptible(stdout_console) as cancel:
        desired = observe_stack(engine, stack).desired
        _walk(pull_steps(engine, desired, images), "pull", parallel, cancel)


def _wait_and_remove(engine: Engine, name: str, remove: bool) -> int:
    try:
        return engine.wait_container(name)
    finally:
        if remove:
            with contextlib.suppress(NotFound):
                engine.remove_container(name, force=True, volumes=True)


@click.command(context_settings={"ignore_unknown_options": True})
@click.argument("words", nargs=-1, required=True, type=click.UNPROCESSED,
                metavar="[FILE] CONTAINER [-- COMMAND...]")  # fmt: skip
@click.option("--rm/--no-rm", "remove", default=True, show_default=True,
              help="Remove the one-off container when it exits.")  # fmt: skip
@click.option("--name", help="The one-off container's name (default STACK-CONTAINER-run-XXXXXX).")
@click.option("-e", "--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable.")
@click.option("-u", "--user", help="Run as this user (name or uid[:gid]).")
@click.option("-w", "--workdir", help="Working directory inside the container.")
@click.option("--service-ports", is_flag=True,
              help="Publish the container's ports as the stack does (off: they are the "
              "service's).")  # fmt: skip
@click.option("-i", "--interactive/--no-interactive", default=True, show_default=True,
              help="Keep stdin open and pass ours in.")  # fmt: skip
@click.option("-t", "--tty", "force_tty", is_flag=True, help="Allocate a TTY even off a terminal.")
@click.option("-T", "--no-TTY", "no_tty", is_flag=True, help="Do not allocate a TTY.")
@stack_options
@engine_options
def run(
    words: tuple[str, ...],
    remove: bool,
    name: str | None,
    env: tuple[str, ...],
    user: str | None,
    workdir: str | None,
    service_ports: bool,
    interactive: bool,
    force_tty: bool,
    no_tty: bool,
    source: StackSource,
    target: EngineTarget,
) -> None:
    """Run a one-off copy of the stack's CONTAINER (``-- CMD ARGS...`` replaces its command)
    with its networks and volumes, attached here; its exit code is ours."""
    file, rest = stack_file_and_words(words)
    if not rest:
        raise click.UsageError("give the CONTAINER to copy: [FILE] CONTAINER [-- COMMAND...]")
    container, command = rest[0], rest[1:]
    stack = source.load_or_exit(file)
    if container not in stack.containers:
        known = ", ".join(stack.containers) or "none"
        raise EngineError(f"no container {container} in the stack (it has: {known})")
    tty = decide_tty(force_tty, no_tty)
    errors = stderr_console()
    with target.connect() as engine:
        made = prepare_one_off(
            engine,
            stack,
            container,
            suffix=uuid.uuid4().hex[:6],
            command=command,
            env=env,
            user=user,
            workdir=workdir,
            service_ports=service_ports,
            tty=tty,
            stdin=interactive,
            on_pull=lambda ref: errors.print(f"Pulling {ref}...", markup=False),
        )
        one = name or made.name
        create_container(engine, one, made.body, made.extra_networks)
        try:
            attached = engine.attach_container(one, tty=tty)
            engine.start_container(one)
            run_attached(
                attached,
                stdin_open=interactive,
                tty=tty,
                resize=lambda h, w: engine.resize_container(one, height=h, width=w),
            )
            code = _wait_and_remove(engine, one, remove)
        except BaseException:
            if remove:
                with contextlib.suppress(ErrorKind):
                    engine.remove_container(one, force=True, volumes=True)
            raise
    sys.exit(code)
