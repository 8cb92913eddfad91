"""The volume service on a real volume store: list filters, prune policy, container mounts."""

from __future__ import annotations

from pathlib import Path

import pytest

from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.lifecycle.record import ContainerRecord, record_from_json
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import OciRuntime
from declarun.daemon.events import EventBus
from declarun.daemon.filters import Filters
from declarun.daemon.volumes.service import VolumeService, bool_filter
from declarun.daemon.volumes.store import ANONYMOUS_LABEL, VolumeStore
from declarun.errdefs import Conflict, InvalidArgument

ANONYMOUS_NAME = "f" * 64


def _filters(**values: list[str]) -> Filters:
    return Filters({k.replace("_not", "!"): frozenset(v) for k, v in values.items()})


@pytest.fixture
def users() -> dict[str, list[str]]:
    """Volume name -> IDs of the containers using it (what the container service answers)."""
    return {}


@pytest.fixture
def volumes(tmp_path: Path, users: dict[str, list[str]]) -> VolumeService:
    service = VolumeService(VolumeStore(tmp_path / "volumes"), EventBus())
    service.use_users(lambda name: users.get(name, []))
    return service


def _actions(volumes: VolumeService) -> list[tuple[str, str]]:
    return [(e.action, e.actor_id) for e in volumes.events.recent()]


def test_create_publishes_once_and_returns_an_existing_volume(volumes: VolumeService) -> None:
    first = volumes.create("data", labels={"tier": "db"})
    again = volumes.create("data", labels={"other": "x"})
    assert again == first and dict(again.labels) == {"tier": "db"}
    assert _actions(volumes) == [("create", "data")]
    anonymous = volumes.create()
    assert anonymous.anonymous and len(anonymous.name) == 64


def test_list_filters(volumes: VolumeService, users: dict[str, list[str]]) -> None:
    volumes.create("web-data", labels={"tier": "web"})
    volumes.create("db-data", labels={"tier": "db"})
    users["db-data"] = ["c1"]

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
    volumes: VolumeService, users: dict[str, list[str]]
) -> None:
    volumes.create("named")
    anonymous = volumes.create()
    used = volumes.create(labels={"keep": "no"})
    users[used.name] = ["c1"]
    (anonymous.mountpoint / "file").write_bytes(b"x" * 8192)

    result = volumes.prune(Filters(), all_by_default=False)
    assert result.deleted == [anonymous.name] and result.space_reclaimed >= 8192
    assert ("prune", "") in _actions(volumes)

    assert volumes.prune(
        _filters(all=["true"], label_not=["missing"]), all_by_default=False
    ).deleted == ["named"]
    assert [v.name for v in volumes.list(Filters())] == [used.name]


def test_remove_refuses_a_volume_in_use(
    volumes: VolumeService, users: dict[str, list[str]]
) -> None:
    volumes.create("data")
    users["data"] = ["c1"]
    with pytest.raises(Conflict, match=r"remove data: volume is in use - \[c1\]"):
        volumes.remove("data")
    users.clear()
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
