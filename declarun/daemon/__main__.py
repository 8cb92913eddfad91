"""``python -m declarun.daemon``: run declarund in the foreground, same flags as ``declarun daemon``."""

from __future__ import annotations

import sys

from declarun.cli.daemon import daemon
from declarun.cli.output import exit_on_declarun_error

__all__: list[str] = []

if __name__ == "__main__":
    with exit_on_declarun_error():
        daemon.main(prog_name="declarund")
    sys.exit(0)
