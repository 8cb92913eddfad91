"""How ``declarun status`` prints a stack's resources, on one engine and on a Swarm alike:
as JSON (``{"stack": ..., "resources": [...]}``), or as a table, one line a resource.

The two tables differ in one column (HEALTH of a container, NODES of a service's tasks) and
in what the PLAN cell says (one engine also names a failing container's problem).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import click
from rich.table import Table

from declarun.cli.output import stdout_console

__all__ = ["Row", "planned", "print_status"]

Row = dict[str, Any]  # a resource of the status, as reconcile describes it

# Names and ports must stay whole (people copy them); other cells may wrap.
_WHOLE = ("RESOURCE", "ENGINE NAME", "PORTS")


def planned(row: Row) -> tuple[str, str]:
    """The PLAN cell of a resource and its style: ``ok``, or its action in yellow."""
    if row["action"] == "noop":
        return "ok", ""
    return row["action"], "yellow"


def print_status(
    stack: str,
    rows: list[Row],
    output_format: str,
    *,
    detail: tuple[str, Callable[[Row], str]],
    plan: Callable[[Row], tuple[str, str]] = planned,
) -> None:
    """Print ``rows`` (``output_format`` ``json`` or ``text``); in a table, ``detail`` is the
    title and the cell of the column between ACTUAL and PORTS, ``plan`` gives the PLAN cell
    and its style."""
    if output_format == "json":
        click.echo(json.dumps({"stack": stack, "resources": rows}, indent=2))
        return
    title, cell = detail
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("RESOURCE", "ENGINE NAME", "DESIRED", "ACTUAL", title, "PORTS", "PLAN"):
        table.add_column(column, no_wrap=column in _WHOLE)
    for row in rows:
        text, style = plan(row)
        table.add_row(
            f"{row['kind']} {row['name']}",
            row["engine_name"],
            row["desired"],
            row["actual"],
            cell(row),
            ", ".join(row["ports"]),
            f"[{style}]{text}[/{style}]" if style else text,
        )
    stdout_console().print(table)
