"""``--lock-timeout`` and holding the stack's engine-side lock around a command that changes it
(``apply``, ``destroy``, ``watch``, ``start``, ``stop``, ``restart``); see
``declarun.reconcile.engine_lock``."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any, TypeVar

import click

from declarun.cli.output import stderr_console
from declarun.engine.port import Engine
from declarun.reconcile.engine_lock import DEFAULT_LOCK_TIMEOUT, hold_stack_lock
from declarun.stack.units import format_duration, parse_duration

__all__ = ["held_lock", "lock_timeout_option"]

F = TypeVar("F", bound=Callable[..., Any])


def _seconds(ctx: click.Context, param: click.Parameter, value: str) -> float:
    try:
        return parse_duration(value).total_seconds()
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


def lock_timeout_option(func: F) -> F:
    """``--lock-timeout DURATION``, given to ``func`` as ``lock_timeout`` (seconds)."""
    default = format_duration(timedelta(seconds=DEFAULT_LOCK_TIMEOUT))
    option: F = click.option(
        "--lock-timeout",
        "lock_timeout",
        default=default,
        show_default=True,
        metavar="DURATION",
        callback=_seconds,
        help="How long to wait while another declarun changes the stack on this engine "
        "(0: do not wait, fail at once).",
    )(func)
    return option


@contextlib.contextmanager
def held_lock(engine: Engine, stack: str, command: str, timeout: float) -> Iterator[None]:
    """Hold ``stack``'s lock on ``engine`` for the block, saying on stderr when it waits."""

    def on_wait(message: str) -> None:
        stderr_console().print(message, markup=False, highlight=False, style="yellow")

    with hold_stack_lock(engine, stack, command, timeout=timeout, on_wait=on_wait):
        yield
