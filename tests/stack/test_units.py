"""Durations and sizes as people write them, and back."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from declarun.stack.units import (
    MAX_SIZE,
    format_duration,
    format_size,
    parse_duration,
    parse_size,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("500ms", timedelta(milliseconds=500)),
        ("1m30s", timedelta(seconds=90)),
        ("90s", timedelta(seconds=90)),
        ("1h", timedelta(hours=1)),
        ("1.5s", timedelta(seconds=1.5)),
        (".5s", timedelta(milliseconds=500)),
        ("1h2m3s4ms5us", timedelta(hours=1, minutes=2, seconds=3, milliseconds=4, microseconds=5)),
        ("250us", timedelta(microseconds=250)),
        ("250µs", timedelta(microseconds=250)),
        ("1500ns", timedelta(microseconds=2)),  # rounded to timedelta's microsecond resolution
        ("0", timedelta(0)),
        ("0s", timedelta(0)),
        ("30", timedelta(seconds=30)),
        (" 2m ", timedelta(minutes=2)),
        (30, timedelta(seconds=30)),
        (1.25, timedelta(seconds=1.25)),
        (0, timedelta(0)),
    ],
)
def test_parse_duration(text: object, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "empty"),
        ("5 s", "expected a duration"),
        ("1d", "expected a duration"),
        ("ms", "expected a duration"),
        ("1m30", "expected a duration"),
        ("-5s", "negative"),
        (-1, "negative"),
        (True, "not bool"),
        (None, "not NoneType"),
        ([1], "not list"),
        (float("nan"), "expected a duration"),
        ("99999999999999999h", "too large"),
    ],
)
def test_parse_duration_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_duration(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (timedelta(0), "0s"),
        (timedelta(seconds=90), "1m30s"),
        (timedelta(milliseconds=500), "500ms"),
        (timedelta(hours=1), "1h"),
        (timedelta(hours=1, seconds=5), "1h5s"),
        (timedelta(seconds=1.5), "1s500ms"),
        (timedelta(microseconds=7), "7us"),
        (timedelta(days=2), "48h"),
    ],
)
def test_format_duration(value: timedelta, text: str) -> None:
    assert format_duration(value) == text


def test_format_duration_rejects_negative() -> None:
    with pytest.raises(ValueError, match="negative"):
        format_duration(timedelta(seconds=-1))


@given(st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=10_000)))
def test_duration_round_trip(value: timedelta) -> None:
    assert parse_duration(format_duration(value)) == value


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100", 100),
        (100, 100),
        ("512k", 512 * 1024),
        ("256m", 256 * 1024**2),
        ("256M", 256 * 1024**2),
        ("1g", 1024**3),
        ("1gb", 1024**3),
        ("1GiB", 1024**3),
        ("1.5g", 1024**3 * 3 // 2),
        ("2t", 2 * 1024**4),
        ("10b", 10),
        ("1.3k", 1331),  # fractions of a byte are truncated, as Docker does
        ("64 m", 64 * 1024**2),
        (0, 0),
        (2.0, 2),
    ],
)
def test_parse_size(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "expected a size"),
        ("1x", "expected a size"),
        ("m", "expected a size"),
        ("1.2.3m", "expected a size"),
        ("-1m", "expected a size"),
        (-5, "negative"),
        (False, "not bool"),
        (None, "not NoneType"),
        ("99999999999t", "too large"),
        (float("inf"), "expected a size"),
    ],
)
def test_parse_size_rejects(value: object, fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        parse_size(value)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0, "0"),
        (100, "100"),
        (1024, "1k"),
        (1536, "1536"),
        (256 * 1024**2, "256m"),
        (1024**3, "1g"),
    ],
)
def test_format_size(value: int, text: str) -> None:
    assert format_size(value) == text


@given(st.integers(min_value=0, max_value=MAX_SIZE))
def test_size_round_trip(value: int) -> None:
    assert parse_size(format_size(value)) == value
