"""The ``filters`` query parameter of the Docker API, parsed and matched like dockerd.

Clients send a JSON object of filter names to values. Two encodings exist and dockerd
accepts both: the current ``{"label": ["a=b"]}`` (docker-py) and the legacy
``{"label": {"a=b": true}}`` (the docker CLI still sends this). Within one filter name the
values are alternatives (OR); different names must all match (AND) — except ``label``,
where every value must match.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from declarun.errdefs import InvalidArgument

__all__ = ["Filters", "parse_filters"]


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
