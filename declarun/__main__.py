"""Allow ``python -m declarun``."""

from __future__ import annotations

from declarun.cli.main import main

main()
