"""``specs/reliability.md`` is what ``python -m tests.support.reliability`` writes from the
fault tests' lists (so its figures follow the tests)."""

from __future__ import annotations

from tests.support.reliability import HAND_WRITTEN, PATH, render


def test_reliability_table_is_current() -> None:
    generated, marker, _ = PATH.read_text(encoding="utf-8").partition(HAND_WRITTEN)
    assert (generated[:-1] if marker else generated) == render(), (
        "regenerate the table: python -m tests.support.reliability"
    )
