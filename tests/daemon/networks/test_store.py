"""Network records and container network states in the metadata database, and the import of
the JSON files older data roots kept them in."""

from __future__ import annotations

import ipaddress
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from declarun.daemon.metadata import Metadata
from declarun.daemon.networks.store import AttachedNetwork, LiveState, NetworkRecord, NetworkStore

NET = "a" * 64
BRIDGE = "b" * 64
CID = "c" * 64


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[Metadata]:
    db = Metadata(tmp_path / "metadata.db")
    yield db
    db.close()


def _network(network_id: str, name: str, **fields: Any) -> NetworkRecord:
    return NetworkRecord(id=network_id, name=name, driver="bridge",
                         created="2024-05-01T10:00:00.000000Z",
                         subnet=ipaddress.IPv4Network("10.231.9.0/24"),
                         gateway=ipaddress.IPv4Address("10.231.9.1"), **fields)  # fmt: skip


def _state(container_id: str, *network_ids: str) -> LiveState:
    attached = {
        n: AttachedNetwork(n, f"eth{i}", ipaddress.IPv4Interface(f"10.231.9.{i + 2}/24"),
                           ipaddress.IPv4Address("10.231.9.1"), "02:42:0a:e7:09:02", "e" * 64)
        for i, n in enumerate(network_ids)
    }  # fmt: skip
    return LiveState(container_id, f"/run/netns/{container_id}", attached,
                     [(80, "tcp", "0.0.0.0", 8080)], network_ids[0] if network_ids else "")  # fmt: skip


def test_records_and_states_round_trip_and_answer_who_uses_a_network(
    tmp_path: Path, metadata: Metadata
) -> None:
    store = NetworkStore(metadata, tmp_path / "network")
    record = _network(NET, "backend", labels={"tier": "db"}, configured=True)
    store.save_network(record)
    assert store.load_networks() == [record]
    state = _state(CID, NET, BRIDGE)
    store.save_live(state)
    assert store.load_live(CID) == state and store.all_live() == [state]
    assert store.users(NET) == [CID] and store.users(BRIDGE) == [CID]
    # A disconnect stores the state without the network: it is no longer in use.
    state.networks.pop(BRIDGE)
    store.save_live(state)
    assert store.users(BRIDGE) == [] and store.users(NET) == [CID]
    store.delete_live(CID)
    assert store.users(NET) == [] and store.load_live(CID) is None
    store.delete_network(NET)
    assert store.load_networks() == []


def test_the_json_files_of_an_older_data_root_are_imported_once(
    tmp_path: Path, metadata: Metadata
) -> None:
    state_dir = tmp_path / "network"
    (state_dir / "networks").mkdir(parents=True)
    (state_dir / "endpoints").mkdir()
    (state_dir / "cache").mkdir()  # the CNI driver's: not touched
    record = _network(NET, "backend", attachable=True)
    builtin = NetworkRecord(id=BRIDGE, name="none", driver="null",
                            created="2024-05-01T10:00:00.000000Z", builtin=True)  # fmt: skip
    # Written exactly as the code before the metadata database wrote them.
    (state_dir / "networks" / f"{NET}.json").write_text(json.dumps(record.to_json()))
    (state_dir / "networks" / f"{BRIDGE}.json").write_text(json.dumps(builtin.to_json()))
    state = _state(CID, NET)
    (state_dir / "endpoints" / f"{CID}.json").write_text(json.dumps(state.to_json()))

    store = NetworkStore(metadata, state_dir)
    assert sorted(store.load_networks(), key=lambda r: r.id) == [record, builtin]
    assert store.load_live(CID) == state and store.users(NET) == [CID]
    assert not (state_dir / "networks").exists() and not (state_dir / "endpoints").exists()
    assert (state_dir / "cache").is_dir()
    # Opening again imports nothing twice.
    again = NetworkStore(metadata, state_dir)
    assert len(again.load_networks()) == 2 and again.all_live() == [state]


def test_an_unreadable_old_file_is_left_alone(tmp_path: Path, metadata: Metadata) -> None:
    state_dir = tmp_path / "network"
    (state_dir / "networks").mkdir(parents=True)
    damaged = state_dir / "networks" / "broken.json"
    damaged.write_text("{not json")
    store = NetworkStore(metadata, state_dir)
    assert store.load_networks() == [] and damaged.exists()
