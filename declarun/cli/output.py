"""Terminal output shared by the commands: colour policy and error exits."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape

from declarun.errors import DeclarunError

__all__ = ["exit_on_declarun_error", "stderr_console", "stdout_console", "use_colour"]


def use_colour(stream: object) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set (https://no-color.org)."""
    if os.environ.get("NO_COLOR"):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _width(stream: object) -> int | None:
    """Tables piped to a file or a CI log get room; rich would squeeze them into 80 columns."""
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        return None
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() else 160


def stdout_console() -> Console:
    """A rich console on stdout that follows the colour policy."""
    colour = use_colour(sys.stdout)
    return Console(
        file=sys.stdout,
        no_color=not colour,
        force_terminal=colour,
        highlight=False,
        soft_wrap=True,
        width=_width(sys.stdout),
    )


def stderr_console() -> Console:
    """A rich console on stderr that follows the colour policy."""
    colour = use_colour(sys.stderr)
    return Console(
        file=sys.stderr,
        no_color=not colour,
        force_terminal=colour,
        highlight=False,
        soft_wrap=True,
        width=_width(sys.stderr),
    )


@contextmanager
def exit_on_declarun_error() -> Iterator[None]:
    """Print a DeclarunError as ``error: ...`` on stderr and exit 1 instead of a traceback."""
    try:
        yield
    except DeclarunError as exc:
        stderr_console().print(
            f"[red]error:[/red] {escape(str(exc))}", markup=True, highlight=False
        )
        sys.exit(1)
    except KeyboardInterrupt:
        # Interrupted for good (a second Ctrl-C during a change, or Ctrl-C elsewhere): exit at
        # once. os._exit, because an abandoned change still runs on a worker thread that a
        # normal exit would wait for.
        stderr_console().print("Interrupted.", markup=False, highlight=False)
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(130)
