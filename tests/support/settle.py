"""The settle period the end-to-end tests apply with.

An apply that started a container waits until that container has been up for the settle
period before it trusts it (``declarun.reconcile.settle``; 3 s unless ``--settle`` or
``DECLARUN_SETTLE`` says otherwise). The period itself is the subject of
``tests/cli/test_honest_outcomes.py``, which runs with the real default. Every other test
applies with a short one: the check still runs (each started container must still be running,
and healthy where it has a health check, at the end of it), but a suite of a few hundred
applies no longer waits 3 s after each. ``tests/conftest.py`` sets ``DECLARUN_SETTLE`` for
every ``declarun`` the tests run; in-process applies take :func:`apply_options`.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from declarun.reconcile.apply import ApplyOptions
from declarun.stack.units import format_duration

__all__ = ["TEST_SETTLE", "TEST_SETTLE_TEXT", "apply_options"]

#: Seconds a started container must stay up in the tests' applies.
TEST_SETTLE = 0.5
#: The same, as ``DECLARUN_SETTLE`` takes it.
TEST_SETTLE_TEXT = format_duration(timedelta(seconds=TEST_SETTLE))


def apply_options(**given: Any) -> ApplyOptions:
    """``ApplyOptions(**given)`` with the tests' settle period unless ``given`` names one."""
    return ApplyOptions(**{"settle": TEST_SETTLE, **given})
