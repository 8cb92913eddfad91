"""A plan as people read it: one line per change, its reasons below, and a summary.

::

      + create container web (shop-web)
    -/+ recreate container db (shop-db)
          env.LOG_LEVEL: "info" → "debug"
          env file changed: /srv/shop/.env (sha256 0a1b2c3d4e5f… → 9f8e7d6c5b4a…)
      - remove container old (shop-old)
          the container is no longer in the stack

    Plan: 1 to create, 1 to recreate, 1 to remove.

Unchanged resources are not listed unless they carry a note (an orphan kept by
``--no-prune``, a volume change declarun will not make). Colour follows the console, which
the CLI builds with its colour policy (``declarun.cli.output``): none off a terminal or with
``NO_COLOR``. Secrets arrive masked in the plan and are shown masked.
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

from declarun.plan.model import Change, Plan, Reason, is_conditional_replace
from declarun.plan.reasons import show

if TYPE_CHECKING:
    from rich.console import Console

__all__ = ["NO_CHANGES", "plain_plan_text", "plan_text", "render_plan", "summary_line"]

NO_CHANGES = "No changes. The machine matches the stack."

_VERB = {
    "create": "create",
    "recreate": "recreate",
    "update": "update",
    "start": "start",
    "stop": "stop",
    "remove": "remove",
    "pull": "pull",
    "build": "build",
    "noop": "keep",
    "error": "error",
}
_STYLE = {
    "create": "green",
    "recreate": "yellow",
    "update": "yellow",
    "start": "yellow",
    "stop": "yellow",
    "remove": "red",
    "pull": "cyan",
    "build": "cyan",
    "noop": "dim",
    "error": "bold red",
}
_SYMBOL_WIDTH = 3


def summary_line(plan: Plan) -> str:
    """``Plan: N to create, N to recreate, N to remove.`` plus non-zero update/start/stop/pull/
    build; recreations that happen only if a build gives a new image are said to be so."""
    counts = plan.counts()
    recreate = f"{counts['recreate']} to recreate"
    conditional = sum(1 for c in plan.changes if is_conditional_replace(c))
    if conditional and conditional == counts["recreate"]:
        recreate += f" (if {'its' if conditional == 1 else 'their'} image changes)"
    elif conditional:
        recreate += f" ({conditional} only if their image changes)"
    parts = [f"{counts['create']} to create", recreate, f"{counts['remove']} to remove"]
    for action in ("update", "start", "stop", "pull", "build"):
        if counts[action]:
            parts.append(f"{counts[action]} to {action}")
    return "Plan: " + ", ".join(parts) + "."


def _reason_text(reason: Reason) -> str:
    data = reason.to_data()  # masks any secret-looking env value that slipped through
    if reason.kind == "field_changed" and reason.field is not None:
        return f"{reason.field}: {show(data['before'])} → {show(data['after'])}"
    return reason.message


def _what(change: Change) -> str:
    if change.name == change.engine_name:
        return f"{change.kind} {change.name}"
    return f"{change.kind} {change.name} ({change.engine_name})"


def _change_lines(change: Change) -> list[str]:
    from rich.markup import escape

    style = _STYLE[change.action]
    symbol = "=" if change.action == "noop" else change.symbol
    head = (
        f"[{style}]{escape(symbol.rjust(_SYMBOL_WIDTH))} {_VERB[change.action]}[/{style}] "
        f"{escape(_what(change))}"
    )
    lines = [head]
    for reason in change.reasons:
        if change.action == "create" and reason.kind == "missing":
            continue  # "+ create" already says it does not exist
        tone = (
            "red"
            if reason.kind in ("foreign", "image_missing", "crashing", "no_healthcheck")
            else "dim"
        )
        lines.append(f"{' ' * (_SYMBOL_WIDTH + 3)}[{tone}]{escape(_reason_text(reason))}[/{tone}]")
    return lines


def _shown(plan: Plan) -> list[Change]:
    return [c for c in plan.changes if c.action != "noop" or c.reasons]


def plain_plan_text(plan: Plan) -> str | None:
    """What :func:`render_plan` prints for ``plan`` when that is plain text, the same on any
    console (a plan with nothing to do or to note: :data:`NO_CHANGES`), else None. A command
    prints it without building a rich console (issue 16: a no-op plan starts fast)."""
    if plan.is_empty and not _shown(plan):
        return NO_CHANGES + "\n"
    return None


def render_plan(plan: Plan, console: Console) -> None:
    """Print ``plan`` on ``console``: the changes with their reasons, then the summary."""
    from rich.markup import escape

    shown = _shown(plan)
    for change in shown:
        for line in _change_lines(change):
            console.print(line, markup=True, highlight=False)
    if shown:
        console.print()
    crashing = [c for c in plan.changes if any(r.kind == "crashing" for r in c.reasons)]
    if plan.is_empty and not crashing:
        console.print(NO_CHANGES, markup=False, highlight=False)
        return
    if plan.is_empty:
        console.print("No changes to make.", markup=False, highlight=False)
    else:
        console.print(f"[bold]{escape(summary_line(plan))}[/bold]", markup=True, highlight=False)
    if crashing:
        names = ", ".join(c.name for c in crashing)
        noun = "container keeps" if len(crashing) == 1 else "containers keep"
        console.print(
            f"[bold red]{len(crashing)} {noun} dying ({escape(names)}): apply fails until "
            "that is fixed.[/bold red]",
            markup=True,
            highlight=False,
        )
    errors = plan.errors
    if errors:
        noun = "change" if len(errors) == 1 else "changes"
        console.print(
            f"[bold red]{len(errors)} {noun} cannot be made: this plan cannot be applied.[/bold red]",
            markup=True,
            highlight=False,
        )


def plan_text(plan: Plan, *, width: int = 120) -> str:
    """The rendering as plain text, without colour (for logs, files and tests)."""
    from rich.console import Console

    buffer = io.StringIO()
    console = Console(
        file=buffer,
        width=width,
        no_color=True,
        force_terminal=False,
        highlight=False,
        soft_wrap=True,
    )
    render_plan(plan, console)
    return buffer.getvalue()
