"""Durations and sizes as people write them in stack files, and back.

Durations follow Go's ``time.ParseDuration`` units (``ns us µs ms s m h``), may chain several
components (``1m30s``) and may use decimals (``1.5s``); a plain number means seconds. Sizes
follow Docker: a number with an optional unit ``b k m g t`` (also ``kb``/``kib`` spellings),
case-insensitive, all binary multiples (``k`` = 1024), fractions truncated to whole bytes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from fractions import Fraction
from functools import lru_cache

__all__ = [
    "MAX_SIZE",
    "format_duration",
    "format_size",
    "parse_duration",
    "parse_size",
]

#: The largest size we accept: what fits in Docker's int64 byte counts.
MAX_SIZE = 2**63 - 1

# Microseconds per unit; timedelta cannot hold less than a microsecond, so ns are fractions.
_DURATION_UNITS: dict[str, Fraction] = {
    "ns": Fraction(1, 1000),
    "us": Fraction(1),
    "µs": Fraction(1),
    "μs": Fraction(1),  # Greek mu, which Go also accepts
    "ms": Fraction(1000),
    "s": Fraction(1_000_000),
    "m": Fraction(60_000_000),
    "h": Fraction(3_600_000_000),
}
_NUMBER = r"(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)"
_DURATION_COMPONENT = re.compile(rf"({_NUMBER})(ns|us|µs|μs|ms|s|m|h)")
_PLAIN_NUMBER = re.compile(rf"{_NUMBER}")

_SIZE = re.compile(rf"({_NUMBER})\s*([kmgt]i?b?|b)?", re.IGNORECASE)
_SIZE_MULTIPLIERS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}

_DURATION_HELP = "expected a duration such as 500ms, 90s, 1m30s or 1h (units: ns us ms s m h)"
_SIZE_HELP = "expected a size such as 512k, 256m or 1g (binary units: k=1024), or a number of bytes"


def _to_timedelta(micros: Fraction, text: object) -> timedelta:
    try:
        return timedelta(microseconds=round(micros))
    except OverflowError:
        raise ValueError(f"duration {text!r} is too large") from None


def _parse_duration(value: object) -> timedelta:
    """Parse a duration: ``"1m30s"``, ``"500ms"``, ``"1.5s"``, or a number of seconds.

    Raises ``ValueError`` with a message fit for a user when ``value`` is not a duration.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{_DURATION_HELP}, not {type(value).__name__}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{_DURATION_HELP}, not {value!r}")
        if value < 0:
            raise ValueError(f"duration must not be negative, got {value!r}")
        return _to_timedelta(Fraction(value) * 1_000_000, value)
    text = value.strip()
    if _PLAIN_NUMBER.fullmatch(text):
        return _to_timedelta(Fraction(text) * 1_000_000, value)
    if not text:
        raise ValueError(f"{_DURATION_HELP}, not an empty string")
    if text.startswith("-"):
        raise ValueError(f"duration must not be negative, got {value!r}")
    pos = 0
    total = Fraction(0)
    while pos < len(text):
        match = _DURATION_COMPONENT.match(text, pos)
        if match is None:
            raise ValueError(f"{_DURATION_HELP}, not {value!r}")
        total += Fraction(match.group(1)) * _DURATION_UNITS[match.group(2)]
        pos = match.end()
    return _to_timedelta(total, value)


def format_duration(value: timedelta) -> str:
    """Render a duration compactly and so that ``parse_duration`` reads it back: ``"1m30s"``."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    if micros < 0:
        raise ValueError(f"cannot format a negative duration: {value}")
    if micros == 0:
        return "0s"
    parts: list[str] = []
    for unit, size in (("h", 3_600_000_000), ("m", 60_000_000), ("s", 1_000_000), ("ms", 1000)):
        count, micros = divmod(micros, size)
        if count:
            parts.append(f"{count}{unit}")
    if micros:
        parts.append(f"{micros}us")
    return "".join(parts)


def _parse_size(value: object) -> int:
    """Parse a size into bytes: ``"256m"``, ``"1g"``, ``"1.5g"``, ``"512kb"``, or bytes as a number.

    Raises ``ValueError`` with a message fit for a user when ``value`` is not a size.
    """
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise ValueError(f"{_SIZE_HELP}, not {type(value).__name__}")
    if isinstance(value, int | float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError(f"{_SIZE_HELP}, not {value!r}")
        number, multiplier = Fraction(value), 1
    else:
        match = _SIZE.fullmatch(value.strip())
        if match is None:
            raise ValueError(f"{_SIZE_HELP}, not {value!r}")
        number = Fraction(match.group(1))
        unit = (match.group(2) or "").lower()
        multiplier = _SIZE_MULTIPLIERS[unit[:1]]
    if number < 0:
        raise ValueError(f"size must not be negative, got {value!r}")
    result = int(number * multiplier)  # Docker truncates fractional bytes too
    if result > MAX_SIZE:
        raise ValueError(f"size {value!r} is too large")
    return result


def format_size(value: int) -> str:
    """Render a byte count with the largest unit that divides it exactly: ``"256m"``, ``"1g"``."""
    if value < 0:
        raise ValueError(f"cannot format a negative size: {value}")
    for unit, size in (("t", 1024**4), ("g", 1024**3), ("m", 1024**2), ("k", 1024)):
        if value and value % size == 0:
            return f"{value // size}{unit}"
    return str(value)


# Stacks repeat the same few durations and sizes thousands of times: parse each text once.
@lru_cache(maxsize=4096)
def _cached_duration(value: int | float | str) -> timedelta:
    return _parse_duration(value)


@lru_cache(maxsize=4096)
def _cached_size(value: int | float | str) -> int:
    return _parse_size(value)


def parse_duration(value: object) -> timedelta:
    """Parse a duration: ``"1m30s"``, ``"500ms"``, ``"1.5s"``, or a number of seconds.

    Raises ``ValueError`` with a message fit for a user when ``value`` is not a duration.
    """
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return _cached_duration(value)
    return _parse_duration(value)


def parse_size(value: object) -> int:
    """Parse a size into bytes: ``"256m"``, ``"1g"``, ``"1.5g"``, ``"512kb"``, or bytes.

    Raises ``ValueError`` with a message fit for a user when ``value`` is not a size.
    """
    if isinstance(value, int | float | str) and not isinstance(value, bool):
        return _cached_size(value)
    return _parse_size(value)
