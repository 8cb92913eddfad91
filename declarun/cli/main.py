"""The ``declarun`` command: a thin click group; each command lives in its own module.

Commands are registered by name and imported only when they run (or when ``--help`` lists
them): ``declarun --version`` or ``declarun validate`` must not pay for docker-py, rich's
live display, networkx or aiohttp, which other commands need (issue 16: start-up time).
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import click

from declarun import __version__

__all__ = ["COMMANDS", "cli", "main"]

# Command name -> (module, attribute). The name is what click reads from the command itself;
# tests/cli/test_lazy_commands.py checks that they agree.
COMMANDS: dict[str, tuple[str, str]] = {
    "daemon": ("declarun.cli.daemon", "daemon"),
    "validate": ("declarun.cli.stack_commands", "validate"),
    "render": ("declarun.cli.stack_commands", "render"),
    "graph": ("declarun.cli.stack_commands", "graph"),
    "convert": ("declarun.cli.convert_command", "convert"),
    "plan": ("declarun.cli.engine_commands", "plan"),
    "apply": ("declarun.cli.engine_commands", "apply"),
    "destroy": ("declarun.cli.engine_commands", "destroy"),
    "lock": ("declarun.cli.engine_commands", "lock"),
    "build": ("declarun.cli.build_commands", "build"),
    "status": ("declarun.cli.day_commands", "status"),
    "logs": ("declarun.cli.day_commands", "logs"),
    "exec": ("declarun.cli.day_commands", "exec_command"),
    "watch": ("declarun.cli.day_commands", "watch"),
    "run": ("declarun.cli.manual_commands", "run"),
    "start": ("declarun.cli.manual_commands", "start"),
    "stop": ("declarun.cli.manual_commands", "stop"),
    "restart": ("declarun.cli.manual_commands", "restart"),
    "pull": ("declarun.cli.manual_commands", "pull"),
}


class LazyGroup(click.Group):
    """A click group whose commands are imported by name, the first time they are needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        command = super().get_command(ctx, cmd_name)
        if command is not None or cmd_name not in COMMANDS:
            return command
        module_name, attribute = COMMANDS[cmd_name]
        loaded = getattr(importlib.import_module(module_name), attribute)
        assert isinstance(loaded, click.Command)
        self.add_command(loaded, cmd_name)
        return loaded


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="declarun")
@click.option("-f", "--file", "stack_file", type=click.Path(dir_okay=False, path_type=Path),
              metavar="FILE", help="The stack file, for a command that is given none "
              "(default: stack.yaml, else declarun.yaml, in the current directory).")  # fmt: skip
def cli(stack_file: Path | None) -> None:
    """declarun: describe containers, volumes and networks in a stack file; make the machine match it."""


def main() -> None:
    """Console-script entry point: run the CLI, turning declarun errors into clean exits."""
    from declarun.cli.output import exit_on_declarun_error

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
