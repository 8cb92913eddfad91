"""The ``declarun`` command: a thin click group; each command lives in its own module."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from declarun import __version__
from declarun.cli.daemon import daemon
from declarun.cli.output import exit_on_declarun_error

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="declarun")
@click.option("-f", "--file", "stack_file", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="The stack file, for a command that is given none "
              "(default: stack.yaml, else declarun.yaml, in the current directory).")  # fmt: skip
def cli(stack_file: Path | None) -> None:
    """declarun: describe containers, volumes and networks in a stack file; make the machine match it."""


cli.add_command(daemon)


def _register_stack_commands() -> None:
    from declarun.cli.convert_command import convert
    from declarun.cli.stack_commands import graph, render, validate

    cli.add_command(validate)
    cli.add_command(render)
    cli.add_command(graph)
    cli.add_command(convert)


_register_stack_commands()


def _register_engine_commands() -> None:
    from declarun.cli.build_commands import build
    from declarun.cli.day_commands import exec_command, logs, status, watch
    from declarun.cli.engine_commands import apply, destroy, lock, plan
    from declarun.cli.manual_commands import pull, restart, run, start, stop

    for command in (plan, apply, destroy, build, lock, status, logs, exec_command, watch):
        cli.add_command(command)
    for command in (run, start, stop, restart, pull):
        cli.add_command(command)


_register_engine_commands()


def main() -> None:
    """Console-script entry point: run the CLI, turning declarun errors into clean exits."""
    with exit_on_declarun_error():
        try:
            # Not standalone: click would answer Ctrl-C with a bare "Aborted!" and exit 1.
            code = cli.main(prog_name="declarun", standalone_mode=False)
        except click.exceptions.Abort:
            raise KeyboardInterrupt from None
        except click.ClickException as exc:
            exc.show()
            sys.exit(exc.exit_code)
    sys.exit(code if isinstance(code, int) else 0)
