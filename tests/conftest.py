"""Session fixtures shared across test packages: the engines the end-to-end tests run on, and
a private cache directory.

One declarund and one dockerd serve the whole session (``tests.support.engine_fixtures``);
``engine`` runs a test on each in turn (``build_engine`` too, for builds: see
``tests.support.builds``). Fixtures are lazy: only tests that ask start them.

``DECLARUN_SETTLE`` is the tests' short settle period (``tests.support.settle`` says why), and
``COLUMNS``/``LINES`` are unset, as they are outside pytest-xdist's workers.

``XDG_CACHE_HOME`` points at a directory of the session's own, so what declarun keeps there
(build records, context digests, the compiled schema) never mixes with the user's; a test
that needs an empty cache sets its own.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.builds import build_engine
from tests.support.engine_fixtures import (
    declarund_engine,
    dockerd_engine,
    engine,
    engine_registry,
)
from tests.support.settle import TEST_SETTLE_TEXT

__all__ = [
    "build_engine",
    "declarund_engine",
    "dockerd_engine",
    "engine",
    "engine_registry",
    "private_cache",
    "pytest_collection_modifyitems",
    "session_environment",
]

#: The files that take longest (``make test``'s durations: the Swarm file ~220 s, the others
#: 45-100 s each), handed to the workers first: ``make test`` gives each of its two workers a
#: file at a time in collection order, and the Swarm file, collected last, kept one worker
#: busy for minutes after the other had finished (longest first is the classic cure).
LONGEST_FIRST = (
    "tests/swarm/test_swarm_e2e.py",
    "tests/compose/test_parity_engine.py",
    "tests/hostile/test_api_fuzz.py",
    "tests/cli/test_interrupted_apply.py",
    "tests/cli/test_engine_commands.py",
    "tests/reconcile/test_build_apply.py",
    "tests/hostile/test_soak.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The files of :data:`LONGEST_FIRST` first, in that order; the rest as collected."""
    rank = {path: index for index, path in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """The session's own ``XDG_CACHE_HOME`` (subprocesses inherit it)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("XDG_CACHE_HOME", str(tmp_path_factory.mktemp("xdg-cache")))
        yield


@pytest.fixture(scope="session", autouse=True)
def session_environment() -> Iterator[None]:
    """``DECLARUN_SETTLE`` for every ``declarun`` the session runs (subprocesses inherit it);
    and no ``COLUMNS``/``LINES``: pytest-xdist gives its workers the terminal's size there,
    and the programs the tests run read it (docker-compose wraps its tables at 80 columns),
    so a test would see other output in a worker than in one process. A test that wants a
    width sets it."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("DECLARUN_SETTLE", TEST_SETTLE_TEXT)
        patch.delenv("COLUMNS", raising=False)
        patch.delenv("LINES", raising=False)
        yield
