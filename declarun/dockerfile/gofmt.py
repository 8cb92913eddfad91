"""Go's ``fmt`` renderings that dockerd writes into image history, reproduced exactly.

dockerd's classic builder records metadata steps with ``fmt.Sprintf``: ``CMD %q`` of a
string slice gives ``["a" "b"]``, ``SHELL %v`` gives ``[a b]``, and ``HEALTHCHECK %q`` of a
``*HealthConfig`` gives ``&{["CMD" "x"] "5s" "0s" "0s" '\\x03'}`` (durations through
``time.Duration.String``, the retry count as a quoted rune). These helpers produce the same
bytes so an image's ``created_by`` strings match dockerd's. ``parse_go_duration`` reads
``HEALTHCHECK --interval=1m30s`` as Go's ``time.ParseDuration`` does.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = [
    "go_duration",
    "go_quote",
    "go_quote_rune",
    "go_strings_q",
    "go_strings_v",
    "parse_go_duration",
]

_SIMPLE_ESCAPES = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
    "\\": "\\\\",
}


def _escape(ch: str, quote: str) -> str:
    if ch == quote:
        return "\\" + ch
    if ch in _SIMPLE_ESCAPES:
        return _SIMPLE_ESCAPES[ch]
    if ch.isprintable():
        return ch
    code = ord(ch)
    if code < 0x80:
        return f"\\x{code:02x}"
    if code < 0x10000:
        return f"\\u{code:04x}"
    return f"\\U{code:08x}"


def go_quote(text: str) -> str:
    """``strconv.Quote``: a double-quoted Go string literal."""
    return '"' + "".join(_escape(ch, '"') for ch in text) + '"'


def go_quote_rune(code: int) -> str:
    """``strconv.QuoteRune``: what ``%q`` prints for an integer (``'\\x03'`` for 3)."""
    if code < 0 or code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:
        code = 0xFFFD
    return "'" + _escape(chr(code), "'") + "'"


def go_strings_q(values: Sequence[str] | None) -> str:
    """``%q`` of a ``[]string``: ``["a" "b"]`` (``[]`` for nil)."""
    return "[" + " ".join(go_quote(v) for v in values or ()) + "]"


def go_strings_v(values: Sequence[str] | None) -> str:
    """``%v`` of a ``[]string``: ``[a b]``."""
    return "[" + " ".join(values or ()) + "]"


def _fraction(value: int, digits: int) -> str:
    # value holds `digits` decimal places; trailing zeros (and a bare point) are dropped.
    whole, frac = divmod(value, 10**digits)
    text = str(whole)
    frac_text = f"{frac:0{digits}d}".rstrip("0")
    return f"{text}.{frac_text}" if frac_text else text


def go_duration(nanoseconds: int) -> str:
    """``time.Duration.String``: ``1h0m0s``, ``1m30s``, ``1.5s``, ``100ms``, ``0s``."""
    if nanoseconds == 0:
        return "0s"
    sign = "-" if nanoseconds < 0 else ""
    ns = abs(nanoseconds)
    if ns < 1_000:
        return f"{sign}{ns}ns"
    if ns < 1_000_000:
        return f"{sign}{_fraction(ns, 3)}µs"
    if ns < 1_000_000_000:
        return f"{sign}{_fraction(ns, 6)}ms"
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    seconds = _fraction(rest, 9) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{seconds}"
    if minutes:
        return f"{sign}{minutes}m{seconds}"
    return sign + seconds


_DURATION_UNITS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60_000_000_000,
    "h": 3_600_000_000_000,
}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?([^\d.]*)")


def parse_go_duration(text: str) -> int:
    """``time.ParseDuration``: ``1h30m``, ``1.5s``, ``300ms`` -> nanoseconds.

    Raises ValueError with Go's message (``time: unknown unit "x" in duration "1x"``).
    """
    quoted = go_quote(text)
    rest = text
    sign = 1
    if rest[:1] in ("-", "+"):
        sign = -1 if rest[0] == "-" else 1
        rest = rest[1:]
    if rest == "0":
        return 0
    if not rest:
        raise ValueError(f"time: invalid duration {quoted}")
    total = 0
    while rest:
        found = _DURATION_PART.match(rest)
        if found is None or not (found.group(1) or found.group(2)):
            raise ValueError(f"time: invalid duration {quoted}")
        whole, frac, unit = found.group(1), found.group(2) or "", found.group(3)
        if not unit:
            raise ValueError(f"time: missing unit in duration {quoted}")
        if unit not in _DURATION_UNITS:
            raise ValueError(f"time: unknown unit {go_quote(unit)} in duration {quoted}")
        scale = _DURATION_UNITS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        rest = rest[found.end() :]
    return sign * total
