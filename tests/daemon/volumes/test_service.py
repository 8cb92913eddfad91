"""The volume service on a real volume store and metadata database: list filters, prune
policy, container mounts, and which containers use a volume."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.lifecycle.record import ContainerRecord, record_from_json
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import OciRuntime
from declarun.daemon.events import EventBus
from declarun.daemon.filters import Filters
from declarun.daemon.metadata import Container, Metadata
from declarun.daemon.volumes.service import VolumeService, bool_filter
from declarun.daemon.volumes.store import ANONYMOUS_LABEL, VolumeStore
from declarun.errdefs import Conflict, InvalidArgument

ANONYMOUS_NAME = "f" * 64


def _filters(**values: list[str]) -> Filters:
    return Filters({k.replace("_not", "!"): frozenset(v) for k, v in values.items()})


@pytest.fixture
def metadata(tmp_path: Path) -> Iterator[Metadata]:
    db = Metadata(tmp_path / "metadata.db")
    yield db
    db.close()


@pytest.fixture
def volumes(tmp_path: Path, metadata: Metadata) -> VolumeService:
    return VolumeService(VolumeStore(metadata, tmp_path / "volumes"), EventBus())


def _use(metadata: Metadata, container_id: str, *names: str, created: float = 1.0) -> None:
    """A container row whose mounts use the volumes ``names`` (as the container store writes)."""
    metadata.put_container(
        Container(container_id, f"c-{container_id}", None, None, created,
                  volumes={f"/m{i}": n for i, n in enumerate(names)})
    )  # fmt: skip


def _actions(volumes: VolumeService) -> list[tuple[str, str]]:
    return [(e.action, e.actor_id) for e in volumes.events.recent()]


def test_create_publishes_once_and_returns_an_existing_volume(volumes: VolumeService) -> None:
    first = volumes.create("data", labels={"tier": "db"})
    again = volumes.create("data", labels={"other": "x"})
    assert again == first and dict(again.labels) == {"tier": "db"}
    assert _actions(volumes) == [("create", "data")]
    anonymous = volumes.create()
    assert anonymous.anonymous and len(anonymous.name) == 64


def test_list_filters(volumes: VolumeService, metadata: Metadata) -> None:
    volumes.create("web-data", labels={"tier": "web"})
    volumes.create("db-data", labels={"tier": "db"})
    _use(metadata, "c1", "db-data")

    def names(filters: Filters) -> list[str]:
        return [v.name for v in volumes.list(filters)]

    assert names(Filters()) == ["db-data", "web-data"]
    assert names(_filters(name=["^web"])) == ["web-data"]
    assert names(_filters(name=["data"])) == ["db-data", "web-data"]
    assert names(_filters(label=["tier=db"])) == ["db-data"]
    assert names(_filters(dangling=["true"])) == ["web-data"]
    assert names(_filters(dangling=["false"])) == ["db-data"]
    with pytest.raises(InvalidArgument, match="dangling=maybe"):
        volumes.list(_filters(dangling=["maybe"]))
    with pytest.raises(InvalidArgument, match="invalid filter 'size'"):
        volumes.list(_filters(size=["1"]))


def test_prune_takes_unused_anonymous_volumes_unless_all(
    volumes: VolumeService, metadata: Metadata
) -> None:
    volumes.create("named")
    anonymous = volumes.create()
    used = volumes.create(labels={"keep": "no"})
    _use(metadata, "c1", used.name)
    (anonymous.mountpoint / "file").write_bytes(b"x" * 8192)

    result = volumes.prune(Filters(), all_by_default=False)
    assert result.deleted == [anonymous.name] and result.space_reclaimed >= 8192
    assert ("prune", "") in _actions(volumes)

    assert volumes.prune(
        _filters(all=["true"], label_not=["missing"]), all_by_default=False
    ).deleted == ["named"]
    assert [v.name for v in volumes.list(Filters())] == [used.name]


def test_remove_refuses_a_volume_in_use(volumes: VolumeService, metadata: Metadata) -> None:
    volumes.create("data")
    _use(metadata, "c2", "data", created=2.0)
    _use(metadata, "c1", "other", "data")
    with pytest.raises(Conflict, match=r"remove data: volume is in use - \[c1, c2\]"):
        volumes.remove("data")
    metadata.delete_container("c1")
    metadata.delete_container("c2")
    volumes.remove("data")
    volumes.remove("data", force=True)  # gone: no error with force
    assert _actions(volumes)[-1] == ("destroy", "data")


def test_bool_filters_take_dockers_spellings() -> None:
    assert bool_filter(_filters(all=["1"]), "all") is True
    assert bool_filter(_filters(all=["FALSE"]), "all") is False
    assert bool_filter(Filters(), "all") is None
    with pytest.raises(InvalidArgument, match="invalid filter 'all=yes'"):
        bool_filter(_filters(all=["yes"]), "all")


def _container(tmp_path: Path, volume_names: dict[str, str]) -> ContainerRecord:
    doc = {
        "id": "c" * 64,
        "name": "web",
        "created_ns": 1,
        "image_id": "sha256:" + "ab" * 32,
        "chain_id": None,
        "request": {"Image": "busybox", "Cmd": ["true"]},
        "image_config": {},
        "volume_names": volume_names,
    }
    layout = MonitorLayout(bundle=tmp_path / "bundle", exit_dir=tmp_path / "exits")
    return record_from_json(doc, layout=layout, runtime=OciRuntime("runc", "runc", tmp_path))


def test_mounts_create_volumes_and_rm_v_removes_the_anonymous_ones(
    volumes: VolumeService, tmp_path: Path
) -> None:
    named = volumes.resolve_mount(MountSpec(type="volume", target="/data", source="data"))
    anonymous = volumes.resolve_mount(MountSpec(type="volume", target="/x", source=ANONYMOUS_NAME))
    assert named.is_dir() and anonymous.is_dir()
    assert ANONYMOUS_LABEL in volumes.get(ANONYMOUS_NAME).labels
    assert ANONYMOUS_LABEL not in volumes.get("data").labels

    record = _container(tmp_path, {"/data": "data", "/x": ANONYMOUS_NAME})
    volumes.container_removed(record, False)
    assert len(volumes.list(Filters())) == 2
    volumes.container_removed(record, True)
    assert [v.name for v in volumes.list(Filters())] == ["data"]
    assert _actions(volumes)[-1] == ("destroy", ANONYMOUS_NAME)


def _old_volume(root: Path, name: str, doc: object) -> Path:
    """A volume as the code before the metadata database wrote it: ``<name>/volume.json``."""
    (root / name / "_data").mkdir(parents=True)
    (root / name / "_data" / "kept").write_text("data\n")
    meta = root / name / "volume.json"
    meta.write_text(doc if isinstance(doc, str) else json.dumps(doc))
    return meta


def test_volumes_of_an_older_data_root_are_imported_once(
    tmp_path: Path, metadata: Metadata
) -> None:
    root = tmp_path / "volumes"
    named = _old_volume(root, "data", {"Name": "data", "Driver": "local",
                                        "CreatedAt": "2024-05-01T10:00:00Z",
                                        "Labels": {"team": "a"}, "Options": {}})  # fmt: skip
    anonymous = _old_volume(root, ANONYMOUS_NAME, {"Name": ANONYMOUS_NAME, "Driver": "local",
                                                   "CreatedAt": "2024-05-01T10:00:01Z",
                                                   "Labels": {ANONYMOUS_LABEL: ""},
                                                   "Options": {"type": "tmpfs",
                                                               "o": "size=1m"}})  # fmt: skip
    damaged = _old_volume(root, "damaged", "{not json")
    _use(metadata, "c1", "data")

    volumes = VolumeService(VolumeStore(metadata, root), EventBus())
    assert [v.name for v in volumes.list(Filters())] == ["data", ANONYMOUS_NAME]
    data = volumes.get("data")
    assert data.created_at == "2024-05-01T10:00:00Z" and dict(data.labels) == {"team": "a"}
    assert (data.mountpoint / "kept").read_text() == "data\n"
    assert volumes.get(ANONYMOUS_NAME).anonymous
    assert dict(volumes.get(ANONYMOUS_NAME).options) == {"type": "tmpfs", "o": "size=1m"}
    assert not named.exists() and not anonymous.exists()
    assert damaged.exists()  # unreadable, as before: left alone, not listed
    # Who uses it is the database's answer, for imported volumes too.
    with pytest.raises(Conflict, match=r"volume is in use - \[c1\]"):
        volumes.remove("data")
    assert [v.name for v in volumes.list(_filters(dangling=["true"]))] == [ANONYMOUS_NAME]

    # Opening again imports nothing twice and loses nothing.
    again = VolumeStore(metadata, root)
    assert [v.name for v in again.list()] == ["data", ANONYMOUS_NAME]


def test_a_failed_create_leaves_no_record(tmp_path: Path, metadata: Metadata) -> None:
    store = VolumeStore(metadata, tmp_path / "volumes")
    # A directory without a record (not empty: rename does not replace it) holds the name.
    (tmp_path / "volumes" / "taken" / "_data").mkdir(parents=True)
    with pytest.raises(Conflict, match="volume directory already exists"):
        store.create("taken")
    assert store.find("taken") is None and metadata.get_volume("taken") is None
    assert not list((tmp_path / "volumes").glob(".tmp-*"))
