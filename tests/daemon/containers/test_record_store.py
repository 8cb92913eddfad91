"""Finding containers in the record store: Docker's order (full id, name, unique id prefix),
kept by the indexes that replaced the scans, through adds, renames, deletes and a reload."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.containers.lifecycle.record import ContainerRecord, record_from_json
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import Descriptor
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import ImageRecord, Metadata
from declarun.errdefs import Conflict, InvalidArgument, NotFound

IMAGE_ID = "sha256:" + "ab" * 32


@pytest.fixture
def store(tmp_path: Path) -> Iterator[RecordStore]:
    metadata = Metadata(tmp_path / "metadata.db")
    # The containers' image must exist (a foreign key); no layers or blobs are needed.
    image = ImageRecord(
        id=IMAGE_ID,
        manifest=Descriptor(mediatypes.OCI_MANIFEST, "sha256:" + "cd" * 32, 500),
        config=Descriptor(mediatypes.OCI_CONFIG, IMAGE_ID, 300),
        layers=(),
        platform=Platform("linux", "amd64"),
        created="2024-01-01T00:00:00Z",
        size=0,
    )
    metadata.put_image(image, names=["busybox:latest"])
    try:
        yield RecordStore(metadata, tmp_path / "root")
    finally:
        metadata.close()


def _record(store: RecordStore, cid: str, name: str, created_ns: int) -> ContainerRecord:
    doc = {
        "id": cid,
        "name": name,
        "created_ns": created_ns,
        "image_id": IMAGE_ID,
        "chain_id": None,
        "request": {"Image": "busybox:latest", "Cmd": ["true"]},
        "image_config": {},
        "state": {},
    }
    return record_from_json(doc, layout=store.layout_for(cid), runtime=store.runtime("runc"))


# Ids chosen so that prefixes overlap: "ab" is shared by two, "abc1"/"abd" pick one.
IDS = {
    "one": "abc1" + "0" * 60,
    "two": "abd2" + "0" * 60,
    "three": "f00d" + "1" * 60,
}


def _fill(store: RecordStore) -> dict[str, ContainerRecord]:
    # Added out of creation order: all() must still be oldest first.
    created = {"one": 30, "two": 10, "three": 20}
    records = {}
    for name, cid in IDS.items():
        records[name] = _record(store, cid, name, created[name])
        store.add(records[name])
    return records


def test_lookup_by_id_name_and_prefix(store: RecordStore) -> None:
    records = _fill(store)
    assert store.lookup(IDS["one"]) is records["one"]
    assert store.lookup("two") is records["two"]
    assert store.lookup("/three") is records["three"]
    assert store.lookup("abc") is records["one"]
    assert store.lookup("abd2") is records["two"]
    assert store.lookup("f") is records["three"]
    with pytest.raises(InvalidArgument, match="multiple IDs found with provided prefix: ab"):
        store.lookup("ab")
    for missing in ("abe", "0", "nothing", "", "ABC"):
        with pytest.raises(NotFound):
            store.lookup(missing)


def test_a_name_wins_over_an_id_prefix(store: RecordStore) -> None:
    records = _fill(store)
    named_like_a_prefix = _record(store, "9" * 64, "f00d", 40)
    store.add(named_like_a_prefix)
    assert store.lookup("f00d") is named_like_a_prefix
    assert store.lookup("f00d1") is records["three"]


def test_all_is_oldest_first_and_follows_adds_and_deletes(store: RecordStore) -> None:
    records = _fill(store)
    assert [r.name for r in store.all()] == ["two", "three", "one"]
    listed = store.all()
    listed.clear()  # the caller's copy
    assert len(store.all()) == 3
    store.delete(records["three"])
    assert [r.name for r in store.all()] == ["two", "one"]
    with pytest.raises(NotFound):
        store.lookup("f")
    newer = _record(store, "abc9" + "0" * 60, "four", 50)
    store.add(newer)
    assert [r.name for r in store.all()] == ["two", "one", "four"]
    with pytest.raises(InvalidArgument):
        store.lookup("abc")
    store.delete(records["one"])
    assert store.lookup("abc") is newer
    store.delete(records["one"])  # twice: nothing more happens
    assert [r.name for r in store.all()] == ["two", "four"]


def test_names_follow_renames_and_conflicts(store: RecordStore) -> None:
    records = _fill(store)
    store.rename(records["one"], "uno")
    assert store.lookup("uno") is records["one"]
    with pytest.raises(NotFound):
        store.lookup("one")
    with pytest.raises(Conflict):
        store.add(_record(store, "e" * 64, "uno", 60))
    assert store.name_owner("uno") == IDS["one"]


def test_a_reload_rebuilds_the_indexes(store: RecordStore, tmp_path: Path) -> None:
    _fill(store)
    again = RecordStore(store.metadata, tmp_path / "root")
    loaded = again.load()
    assert sorted(r.name for r in loaded) == ["one", "three", "two"]
    assert [r.name for r in again.all()] == ["two", "three", "one"]
    assert again.lookup("abd").name == "two"
    with pytest.raises(InvalidArgument):
        again.lookup("ab")
