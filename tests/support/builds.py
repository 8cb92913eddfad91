"""The engines the build tests run on: ``build_engine``, like ``engine`` but for builds.

declarund answers ``POST /build`` only once its builder lands (issue 10, built on another
branch); until then its variant of every build test is *skipped* with that reason, and
:data:`DECLARUND_BUILDS` is the one switch to turn it on when the branches meet.
"""

from __future__ import annotations

import pytest

from tests.support.engine_fixtures import ENGINE_KINDS, Engine

__all__ = ["DECLARUND_BUILDS", "WAITING_FOR_BUILDER", "build_engine"]

#: True once declarund serves POST /build (flip at the merge with the builder's branch).
DECLARUND_BUILDS = False
WAITING_FOR_BUILDER = (
    "declarund does not serve POST /build yet: its builder lands on another branch "
    "(issue 10); set tests.support.builds.DECLARUND_BUILDS when they are merged"
)


def _params() -> list[object]:
    return [
        pytest.param(
            kind,
            marks=pytest.mark.skipif(
                kind == "declarund" and not DECLARUND_BUILDS, reason=WAITING_FOR_BUILDER
            ),
        )
        for kind in ENGINE_KINDS
    ]


@pytest.fixture(scope="session", params=_params())
def build_engine(request: pytest.FixtureRequest) -> Engine:
    """Each engine that builds, in turn (see the module docstring)."""
    chosen: Engine = request.getfixturevalue(f"{request.param}_engine")
    return chosen
