"""Which networks ``docker network ls`` shows and ``docker network prune`` removes.

dockerd's rules: ``name`` is a substring, ``id`` an ID prefix, ``driver`` and ``scope``
exact, ``type`` ``custom`` or ``builtin``, every ``label`` present, and ``dangling`` a
network that is user-made and has no endpoint. Prune removes unused user networks whose
labels match ``label`` and not ``label!``, created before ``until``.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from declarun.daemon.filters import Filters, parse_time
from declarun.daemon.networks.service import NetworkService
from declarun.daemon.networks.store import NetworkRecord
from declarun.errdefs import InvalidArgument

__all__ = [
    "LIST_FILTERS",
    "PRUNE_FILTERS",
    "created_after",
    "list_networks",
    "network_matches",
    "prune_keeps",
]

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("label", "label!", "until")


def _truthy(value: str) -> bool:
    if value.lower() in ("1", "true"):
        return True
    if value.lower() in ("0", "false"):
        return False
    raise InvalidArgument(f"invalid filter 'dangling={value}'")


def network_matches(record: NetworkRecord, filters: Filters, *, in_use: bool) -> bool:
    """Whether ``docker network ls`` with these filters shows ``record`` (``in_use``: it has
    endpoints)."""
    names = filters.get("name")
    if names and not any(n in record.name for n in names):
        return False
    if not filters.fuzzy_match("id", record.id):
        return False
    if not filters.exact_match("driver", record.driver):
        return False
    if not filters.exact_match("scope", "local"):
        return False
    kind = "builtin" if record.builtin else "custom"
    for wanted in filters.get("type"):
        if wanted not in ("custom", "builtin"):
            raise InvalidArgument(f"invalid filter: 'type'='{wanted}'")
    if not filters.exact_match("type", kind):
        return False
    if not filters.match_kv_list("label", record.labels):
        return False
    for value in filters.get("dangling"):
        dangling = not record.builtin and not in_use
        if _truthy(value) != dangling:
            return False
    return True


def list_networks(service: NetworkService, filters: Filters) -> list[NetworkRecord]:
    """The networks ``docker network ls`` shows with these filters, built-ins first."""
    filters.validate(LIST_FILTERS)
    return [
        record
        for record in service.all()
        if network_matches(record, filters, in_use=bool(service.users(record.id)))
    ]


def created_after(record: NetworkRecord, until_ns: int) -> bool:
    """Whether the network was created after ``until_ns`` (nanoseconds since the epoch)."""
    try:
        created = datetime.strptime(record.created, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    except ValueError:
        return False
    return created.timestamp() * 1e9 > until_ns


def prune_keeps(filters: Filters) -> Callable[[NetworkRecord], bool]:
    """The prune policy: a predicate true for the unused networks prune must keep."""
    filters.validate(PRUNE_FILTERS)
    until = None
    for value in filters.get("until"):
        until = parse_time(value, "until")
    negated = filters.get("label!")

    def keep(record: NetworkRecord) -> bool:
        if not filters.match_kv_list("label", record.labels):
            return True
        if negated and Filters({"label": negated}).match_kv_list("label", record.labels):
            return True
        return until is not None and created_after(record, until)

    return keep
