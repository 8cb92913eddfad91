"""Which events a ``GET /events`` client asked for: its ``filters`` and ``since``/``until``.

The matching rules are dockerd's (``daemon/events/filter.go``): ``type`` and ``event`` are
exact; ``container``, ``network``, ``volume`` and ``daemon`` match the actor's ID (or an ID
prefix) or its ``name`` attribute, and exclude events of other types; ``image`` matches an
image event's ID or name, or a container event's ``image`` attribute, with or without the
tag; every ``label`` must be among the actor's attributes.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import datetime

from declarun.daemon.api.filters import Filters
from declarun.daemon.events import Event
from declarun.errdefs import InvalidArgument

__all__ = ["ACCEPTED_FILTERS", "event_matcher", "parse_event_time"]

ACCEPTED_FILTERS = frozenset(
    {
        "config",
        "container",
        "daemon",
        "event",
        "image",
        "label",
        "network",
        "node",
        "plugin",
        "scope",
        "secret",
        "service",
        "type",
        "volume",
    }
)
# Actions with a ": detail" suffix (``exec_start: sh``); a bare filter value matches them.
_PREFIX_ACTIONS = frozenset({"health_status", "exec_create", "exec_start"})
# Filter names that select an actor of the same event type by ID prefix or name.
_NAMED_TYPES = (
    "container",
    "network",
    "volume",
    "daemon",
    "plugin",
    "node",
    "service",
    "secret",
    "config",
)

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


def parse_event_time(raw: str | None, name: str, now_nano: int | None = None) -> int | None:
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


def _strip_tag(image: str) -> str:
    """``busybox:latest`` -> ``busybox``; a registry port or a digest is left alone."""
    if "@" in image:
        return image
    slash = image.rfind("/")
    colon = image.rfind(":")
    return image[:colon] if colon > slash else image


def event_matcher(filters: Filters) -> Callable[[Event], bool]:
    """A predicate that is True for the events these filters let through."""

    def fuzzy_name(event: Event, kind: str) -> bool:
        if kind not in filters:
            return True
        if event.type != kind:
            return False
        return filters.fuzzy_match(kind, event.actor_id) or (
            "name" in event.attributes and filters.fuzzy_match(kind, event.attributes["name"])
        )

    def action_ok(event: Event) -> bool:
        values = filters.get("event")
        if not values:
            return True
        if event.action in values:
            return True
        if values & _PREFIX_ACTIONS:
            return any(event.action.startswith(v) for v in values)
        return False

    def image_ok(event: Event) -> bool:
        if "image" not in filters:
            return True
        name_attr = "name" if event.type == "image" else "image"
        name = event.attributes.get(name_attr, "")
        candidates = {event.actor_id, name, _strip_tag(event.actor_id), _strip_tag(name)}
        candidates.discard("")
        return bool(candidates & filters.get("image"))

    def include(event: Event) -> bool:
        return (
            action_ok(event)
            and filters.exact_match("type", event.type)
            and filters.exact_match("scope", event.scope)
            and all(fuzzy_name(event, kind) for kind in _NAMED_TYPES)
            and image_ok(event)
            and filters.match_kv_list("label", event.attributes)
        )

    return include
