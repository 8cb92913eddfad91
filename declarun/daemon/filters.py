"""Docker's list filters, parsed and matched like dockerd, and the times they take.

The API reads them from the ``filters`` query parameter; the services match their objects
against them (a list, a prune), so they live below the API.

Clients send a JSON object of filter names to values. Two encodings exist and dockerd
accepts both: the current ``{"label": ["a=b"]}`` (docker-py) and the legacy
``{"label": {"a=b": true}}`` (the docker CLI still sends this). Within one filter name the
values are alternatives (OR); different names must all match (AND) — except ``label``,
where every value must match.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from declarun.errdefs import InvalidArgument

__all__ = ["Filters", "parse_filters", "parse_time"]


@dataclass(frozen=True)
class Filters:
    """Parsed filters: each name maps to the set of values given for it."""

    fields: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and bool(self.fields.get(name))

    def get(self, name: str) -> frozenset[str]:
        """The values given for ``name`` (empty if the filter is absent)."""
        return self.fields.get(name, frozenset())

    def validate(self, accepted: Iterable[str]) -> None:
        """Refuse filter names the endpoint does not know, with dockerd's message (400)."""
        allowed = set(accepted)
        for name in sorted(self.fields):
            if name not in allowed:
                raise InvalidArgument(f"invalid filter '{name}'")

    def exact_match(self, name: str, source: str) -> bool:
        """True when ``name`` is absent, or ``source`` is one of its values."""
        values = self.get(name)
        return not values or source in values

    def fuzzy_match(self, name: str, source: str) -> bool:
        """Like exact_match, but a value may also be a prefix of ``source`` (short IDs)."""
        values = self.get(name)
        if not values or source in values:
            return True
        return any(source.startswith(v) for v in values)

    def match_kv_list(self, name: str, sources: Mapping[str, str]) -> bool:
        """Every ``key`` or ``key=value`` given for ``name`` must be present in ``sources``."""
        values = self.get(name)
        if not values:
            return True
        for value in values:
            key, has_value, wanted = value.partition("=")
            if key not in sources:
                return False
            if has_value and sources[key] != wanted:
                return False
        return True


def parse_filters(raw: str | None) -> Filters:
    """Parse the ``filters`` query value; an empty or absent value means no filter."""
    if raw is None or raw.strip() == "":
        return Filters()
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise InvalidArgument(f"invalid filter: {exc.msg}") from None
    except RecursionError:
        raise InvalidArgument("invalid filter: nested too deeply") from None
    if not isinstance(data, dict):
        raise InvalidArgument("invalid filter: expected a JSON object of filter names to values")
    fields: dict[str, frozenset[str]] = {}
    for name, values in data.items():
        if isinstance(values, list) and all(isinstance(v, str) for v in values):
            fields[name] = frozenset(values)
        elif isinstance(values, dict) and all(isinstance(v, bool) for v in values.values()):
            # Legacy form: dockerd keeps every key, whatever its boolean.
            fields[name] = frozenset(values)
        else:
            raise InvalidArgument(f"invalid filter: values of '{name}' must be a list of strings")
    return Filters(fields)


_UNIX = re.compile(r"^(\d+)(?:\.(\d{1,9}))?$")
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNIT_NANOS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "ms": 1_000_000,
    "s": 1_000_000_000,
    "m": 60 * 1_000_000_000,
    "h": 3600 * 1_000_000_000,
}
_RFC3339_FRACTION = re.compile(r"^(.*T\d\d:\d\d:\d\d)\.(\d+)(.*)$")


def parse_time(raw: str | None, name: str, now_nano: int | None = None) -> int | None:
    """A ``since``/``until`` value in nanoseconds since the epoch, or None when absent.

    Accepts what dockerd and the docker CLI produce: Unix seconds with an optional
    fraction (``1700000000.123456789``), RFC 3339 (``2024-05-01T10:00:00Z``, fractional
    and with offsets; no offset means local time), a date, or a Go duration back from now
    (``10m``, ``1h30m``).
    """
    if raw is None or raw.strip() == "":
        return None
    text = raw.strip()
    now = time.time_ns() if now_nano is None else now_nano
    match = _UNIX.match(text)
    if match:
        seconds, fraction = match.group(1), match.group(2) or ""
        return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or "0")
    duration = _parse_duration(text)
    if duration is not None:
        return now - duration
    stamp = _parse_rfc3339(text)
    if stamp is not None:
        return stamp
    raise InvalidArgument(f"invalid value for {name}: {raw!r} is not a timestamp")


def _parse_duration(text: str) -> int | None:
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION_PART.match(text, pos)
        if match is None:
            return None
        total += float(match.group(1)) * _UNIT_NANOS[match.group(2)]
        pos = match.end()
    return int(total) if pos else None


def _parse_rfc3339(text: str) -> int | None:
    nanos = 0
    match = _RFC3339_FRACTION.match(text)
    if match:
        # datetime parses at most microseconds; keep all nine digits ourselves.
        text = match.group(1) + match.group(3)
        nanos = int(match.group(2)[:9].ljust(9, "0"))
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return int(parsed.timestamp()) * 1_000_000_000 + nanos
