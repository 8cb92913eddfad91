"""``docker network ls`` filters and the network prune policy (pure logic)."""

from __future__ import annotations

import pytest

from declarun.daemon.filters import Filters
from declarun.daemon.networks.listing import created_after, network_matches, prune_keeps
from declarun.daemon.networks.store import NetworkRecord
from declarun.errdefs import InvalidArgument

BRIDGE = NetworkRecord(id="a" * 64, name="bridge", driver="bridge", created="", builtin=True)
FRONT = NetworkRecord(
    id="b" * 64,
    name="front-net",
    driver="bridge",
    created="2024-01-01T00:00:00.000000Z",
    labels={"tier": "web"},
)


def _filters(**values: list[str]) -> Filters:
    return Filters({k.replace("_not", "!"): frozenset(v) for k, v in values.items()})


def test_list_filters() -> None:
    assert network_matches(FRONT, _filters(name=["front"]), in_use=False)
    assert not network_matches(BRIDGE, _filters(name=["front"]), in_use=False)
    assert network_matches(FRONT, _filters(id=["bbbb"]), in_use=False)
    assert network_matches(BRIDGE, _filters(type=["builtin"]), in_use=False)
    assert not network_matches(FRONT, _filters(type=["builtin"]), in_use=False)
    assert network_matches(FRONT, _filters(label=["tier=web"]), in_use=False)
    with pytest.raises(InvalidArgument, match="'type'='other'"):
        network_matches(FRONT, _filters(type=["other"]), in_use=False)


def test_dangling_is_a_user_network_without_endpoints() -> None:
    assert network_matches(FRONT, _filters(dangling=["true"]), in_use=False)
    assert not network_matches(FRONT, _filters(dangling=["true"]), in_use=True)
    assert not network_matches(BRIDGE, _filters(dangling=["1"]), in_use=False)
    with pytest.raises(InvalidArgument, match="dangling=maybe"):
        network_matches(FRONT, _filters(dangling=["maybe"]), in_use=False)


def test_prune_keeps_labelled_and_recent_networks() -> None:
    assert prune_keeps(_filters(label_not=["tier"]))(FRONT)
    assert not prune_keeps(_filters(label=["tier=web"]))(FRONT)
    assert prune_keeps(_filters(label=["tier=db"]))(FRONT)
    assert prune_keeps(_filters(until=["2023-01-01T00:00:00Z"]))(FRONT)
    assert not prune_keeps(_filters(until=["2025-01-01T00:00:00Z"]))(FRONT)
    assert not created_after(BRIDGE, 0)  # no parsable creation time: never "recent"
