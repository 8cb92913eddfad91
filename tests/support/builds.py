"""The engines the build tests run on: ``build_engine``, like ``engine`` but for builds.

Both engines build: dockerd with its classic builder, declarund with its own
(``declarun/daemon/builder``); every build test runs on each in turn, so the two are held
to the same results.
"""

from __future__ import annotations

import pytest

from tests.support.engine_fixtures import ENGINE_KINDS, Engine

__all__ = ["build_engine"]


@pytest.fixture(scope="session", params=ENGINE_KINDS)
def build_engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine that builds, in turn (see the module docstring)."""
    chosen: Engine = request.getfixturevalue(f"{request.param}_engine")
    return chosen
