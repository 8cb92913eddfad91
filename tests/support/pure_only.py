"""A pytest plugin for the inner loop (``make check``): only the tests that start no real parts.

Loaded explicitly (``pytest -p tests.support.pure_only``), never by default. It deselects a
test when it is marked ``root``, when one of its fixtures (its whole closure) is one that
starts or needs a real part (a daemon, dockerd, a registry, runc, a network namespace: the
names below), when its module uses a helper of the support modules that start real parts
(declarund, dockerd, the registry, runc and conmon, the CLI against an engine), or when its
module drives real parts directly through subprocesses (listed). The fuzzing tests (a
``fuzz`` module or test name: thousands of generated inputs each) and the tests marked
``slow`` (a pure test that needs seconds of CPU: a layer of 100,000 entries) are left to
``make test`` too: they are half of the pure tests' time.
Everything else is pure logic, fakes and in-process servers; ``make test`` still runs all.
"""

from __future__ import annotations

import re

import pytest

__all__ = ["pytest_collection_modifyitems"]

# Fixture names of the real parts: session engines, daemons, registries, images pushed to
# them, the network lab. Matched as whole words within a fixture's name.
_REAL_FIXTURES = re.compile(
    r"(^|_)(engine|engines|daemon|ndaemon|cdaemon|dockerd|registry|lab|pushed|runc|netns)(_|$)"
)

# Modules whose tests run the CLI, docker or runc against real parts without a fixture
# saying so.
_REAL_MODULES = (
    "tests/cli/test_compose_commands.py",
    "tests/cli/test_engine_commands.py",
    "tests/cli/test_errors.py",
    "tests/cli/test_examples.py",
    "tests/cli/test_honest_outcomes.py",
    "tests/cli/test_interactive.py",
    "tests/cli/test_one_at_a_time.py",
    "tests/cli/test_outputs.py",
    "tests/compose/test_parity_config.py",
    "tests/compose/test_parity_engine.py",
    "tests/dockerfile/test_dockerd_golden.py",
    "tests/observe/test_observe_dockerd.py",
)


# Helpers that start or drive real parts; a test module using one needs them.
_REAL_HELPER_MODULES = frozenset(
    {
        "tests.support.builds",
        "tests.support.cli",
        "tests.support.daemon",
        "tests.support.dockerd",
        "tests.support.engine",
        "tests.support.engine_fixtures",
        "tests.support.registry",
        "tests.support.rootfs",
        "tests.daemon.containers.conmon_support",
        "tests.daemon.containers.daemon_fixtures",
        "tests.daemon.containers.extras_support",
        "tests.daemon.containers.runc_helpers",
        "tests.daemon.builder.support",
        "tests.daemon.images.daemon_support",
        "tests.daemon.networks.daemon_net",
    }
)


def _uses_real_helpers(module: object) -> bool:
    for value in vars(module).values():
        origin = getattr(value, "__module__", None) or getattr(value, "__name__", None)
        if origin in _REAL_HELPER_MODULES:
            return True
    return False


def _is_fuzzing(item: pytest.Item) -> bool:
    module_name = item.nodeid.split("::")[0].rsplit("/", 1)[-1]
    return "fuzz" in module_name or "fuzz" in item.name


def _needs_real_parts(item: pytest.Item) -> bool:
    if item.get_closest_marker("root") is not None:
        return True
    if item.nodeid.split("::")[0] in _REAL_MODULES:
        return True
    module = getattr(item, "module", None)
    if module is not None and _uses_real_helpers(module):
        return True
    fixtures = getattr(item, "fixturenames", ())
    return any(_REAL_FIXTURES.search(name) for name in fixtures)


def _left_to_make_test(item: pytest.Item) -> bool:
    return (
        _needs_real_parts(item) or _is_fuzzing(item) or item.get_closest_marker("slow") is not None
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Keep only the tests that need no real parts, are not fuzzing and are not slow."""
    kept = [item for item in items if not _left_to_make_test(item)]
    dropped = [item for item in items if _left_to_make_test(item)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept
