"""Which events a ``GET /events`` client asked for: its ``filters``.

``since``/``until`` are read with :func:`declarun.daemon.filters.parse_time`.

The matching rules are dockerd's (``daemon/events/filter.go``): ``type`` and ``event`` are
exact; ``container``, ``network``, ``volume`` and ``daemon`` match the actor's ID (or an ID
prefix) or its ``name`` attribute, and exclude events of other types; ``image`` matches an
image event's ID or name, or a container event's ``image`` attribute, with or without the
tag; every ``label`` must be among the actor's attributes.
"""

from __future__ import annotations

from collections.abc import Callable

from declarun.daemon.events import Event
from declarun.daemon.filters import Filters

__all__ = ["ACCEPTED_FILTERS", "event_matcher"]

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
