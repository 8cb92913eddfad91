"""Session fixtures shared across test packages: the engines the end-to-end tests run on.

One declarund and one dockerd serve the whole session (``tests.support.engine_fixtures``);
``engine`` runs a test on each in turn. Fixtures are lazy: only tests that ask start them.
"""

from __future__ import annotations

from tests.support.engine_fixtures import (
    declarund_engine,
    dockerd_engine,
    engine,
    engine_registry,
)

__all__ = ["declarund_engine", "dockerd_engine", "engine", "engine_registry"]
