"""Asking before destroying (Terraform's habit): the plan is shown, then the question.

``destroy`` always asks, and ``apply`` asks when its plan removes volumes (their data goes
with them); only ``yes`` goes ahead. ``--yes`` (``--auto-approve``) answers for scripts. Off a
terminal nobody can answer, so nothing is asked — but a plan that deletes volumes then needs
``--yes``, so a script never deletes data by accident.
"""

from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import click

from declarun.errors import DeclarunError
from declarun.plan.model import Plan

__all__ = ["Declined", "confirmation", "yes_option"]

F = TypeVar("F", bound=Callable[..., Any])


class Declined(DeclarunError):
    """The change was not confirmed: nothing was done."""


def yes_option(func: F) -> F:
    """``--yes`` / ``--auto-approve``, given to ``func`` as ``yes``."""
    option: F = click.option(
        "-y",
        "--yes",
        "--auto-approve",
        "yes",
        is_flag=True,
        help="Do not ask before destroying (needed off a terminal to delete volumes).",
    )(func)
    return option


def _on_terminal() -> bool:
    return os.isatty(0) and os.isatty(1)


def _ask(question: str) -> str:
    """Read the answer with Ctrl-C meaning 'stop now' (not 'finish what runs')."""
    if threading.current_thread() is not threading.main_thread():
        return str(click.prompt(question, default="", show_default=False))
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return str(click.prompt(question, default="", show_default=False))
    finally:
        signal.signal(signal.SIGINT, previous)


def confirmation(
    verb: str, *, yes: bool, always: bool, volumes_besides: Sequence[str] = ()
) -> Callable[[Plan], None]:
    """A check to run on each plan before it is carried out (after it is shown): raises
    :class:`Declined` unless confirmed. ``always``: ask even when no volume is deleted
    (``destroy``); otherwise only plans that delete volumes are asked about.
    ``volumes_besides``: volumes the command deletes outside the plan (a Swarm's, node by
    node), asked about as the plan's are, even with an empty plan."""

    def check(plan: Plan) -> None:
        volumes = [c.name for c in plan.actionable if c.kind == "volume" and c.action == "remove"]
        volumes += [name for name in volumes_besides if name not in volumes]
        if yes or (plan.is_empty and not volumes) or not (always or volumes):
            return
        data = (
            f" This deletes volume{'s' if len(volumes) != 1 else ''} {', '.join(volumes)} "
            "and the data in them."
            if volumes
            else ""
        )
        if not _on_terminal():
            if volumes:
                raise Declined(
                    f"{verb} would delete volume{'s' if len(volumes) != 1 else ''} "
                    f"{', '.join(volumes)} and the data in them; declarun cannot ask here (not "
                    "a terminal): give --yes to confirm"
                )
            return
        click.echo(f"Do you really want to {verb.lower()}?{data}")
        answer = _ask("Only 'yes' goes ahead").strip()
        if answer != "yes":
            raise Declined(f"{verb} cancelled: nothing was changed")

    return check
