"""``docker ps`` filters and the container prune policy, without HTTP or processes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from declarun.daemon.containers.lifecycle.record import ContainerRecord, record_from_json
from declarun.daemon.containers.rootfs.changes import (
    CHANGE_ADDED,
    CHANGE_MODIFIED,
    Change,
    mount_targets,
    without_mountpoints,
)
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import OciRuntime
from declarun.daemon.containers.views.listing import matches, name_matches, prune_keeps
from declarun.daemon.filters import Filters
from declarun.errdefs import InvalidArgument, NotFound

IMAGE_ID = "sha256:" + "ab" * 32
OTHER_IMAGE_ID = "sha256:" + "cd" * 32


def _record(
    tmp_path: Path,
    name: str,
    *,
    created_ns: int,
    state: dict[str, Any] | None = None,
    labels: dict[str, str] | None = None,
    image_id: str = IMAGE_ID,
    volumes: dict[str, str] | None = None,
) -> ContainerRecord:
    cid = (name.encode().hex() * 64)[:64]
    doc = {
        "id": cid,
        "name": name,
        "created_ns": created_ns,
        "image_id": image_id,
        "chain_id": None,
        "request": {"Image": "busybox:latest", "Cmd": ["true"], "Labels": labels or {}},
        "image_config": {},
        "state": state or {},
        "volume_names": volumes or {},
    }
    layout = MonitorLayout(bundle=tmp_path / cid, exit_dir=tmp_path / "exits")
    return record_from_json(doc, layout=layout, runtime=OciRuntime("runc", "runc", tmp_path))


def _matches(rec: ContainerRecord, filters: dict[str, list[str]], **kwargs: Any) -> bool:
    records = kwargs.pop("others", {})

    def lookup(ref: str) -> ContainerRecord:
        if ref not in records:
            raise NotFound(f"No such container: {ref}")
        found: ContainerRecord = records[ref]
        return found

    def resolve_image(ref: str) -> str:
        if ref == "busybox:musl":
            return OTHER_IMAGE_ID
        raise NotFound(f"No such image: {ref}")

    return matches(
        rec,
        Filters({k: frozenset(v) for k, v in filters.items()}),
        show_all=kwargs.pop("show_all", True),
        lookup=lookup,
        resolve_image=resolve_image,
    )


RUNNING = {"running": True, "pid": 42, "started_at": 1}
EXITED_3 = {"exit_code": 3, "started_at": 1, "finished_at": 2}


def test_without_all_only_running_containers_show(tmp_path: Path) -> None:
    running = _record(tmp_path, "web", created_ns=1, state=RUNNING)
    created = _record(tmp_path, "db", created_ns=2)
    assert _matches(running, {}, show_all=False)
    assert not _matches(created, {}, show_all=False)
    assert _matches(created, {"status": ["created"]}, show_all=False)


def test_name_is_a_regular_expression_against_slash_name(tmp_path: Path) -> None:
    rec = _record(tmp_path, "web-1", created_ns=1)
    assert _matches(rec, {"name": ["^/web"]})
    assert not _matches(rec, {"name": ["^web"]})
    assert name_matches("web-[", "web-[x")  # not a valid pattern: a plain substring


def test_exited_wants_a_run_that_ended_with_the_code(tmp_path: Path) -> None:
    exited = _record(tmp_path, "job", created_ns=1, state=EXITED_3)
    never_ran = _record(tmp_path, "new", created_ns=2)
    assert _matches(exited, {"exited": ["3"]})
    assert not _matches(exited, {"exited": ["0"]})
    assert not _matches(never_ran, {"exited": ["0"]})


def test_labels_ancestor_and_volumes(tmp_path: Path) -> None:
    rec = _record(
        tmp_path, "web", created_ns=1, labels={"tier": "front"}, volumes={"/data": "webdata"}
    )
    assert _matches(rec, {"label": ["tier=front"]})
    assert not _matches(rec, {"label": ["tier=back"]})
    assert _matches(rec, {"ancestor": ["busybox:latest"]})
    assert _matches(rec, {"ancestor": [IMAGE_ID[7:19]]})  # an ID prefix
    assert not _matches(rec, {"ancestor": ["busybox:musl"]})  # another image
    assert not _matches(rec, {"ancestor": ["nosuchimage"]})
    assert _matches(rec, {"volume": ["webdata"]})
    assert not _matches(rec, {"volume": ["other"]})


def test_before_and_since_compare_creation_with_another_container(tmp_path: Path) -> None:
    old = _record(tmp_path, "old", created_ns=1)
    mid = _record(tmp_path, "mid", created_ns=2)
    new = _record(tmp_path, "new", created_ns=3)
    others = {"mid": mid}
    assert _matches(old, {"before": ["mid"]}, others=others)
    assert not _matches(new, {"before": ["mid"]}, others=others)
    assert _matches(new, {"since": ["mid"]}, others=others)
    assert not _matches(mid, {"since": ["mid"]}, others=others)
    with pytest.raises(NotFound, match="No such container: gone"):
        _matches(old, {"since": ["gone"]}, others=others)


def test_prune_keeps_what_the_label_and_until_filters_spare(tmp_path: Path) -> None:
    plain = _record(tmp_path, "a", created_ns=10)
    keep_me = _record(tmp_path, "b", created_ns=10, labels={"keep": "yes"})
    recent = _record(tmp_path, "c", created_ns=5_000_000_000)
    keep = prune_keeps(Filters({"label!": frozenset({"keep"}), "until": frozenset({"1"})}))
    assert not keep(plain)
    assert keep(keep_me)
    assert keep(recent)  # created after `until`
    with pytest.raises(InvalidArgument, match="invalid filter 'status'"):
        prune_keeps(Filters({"status": frozenset({"exited"})}))


def test_changes_leave_out_mount_points_and_their_parents(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(
        json.dumps({"mounts": [{"destination": "/data/"}, {"destination": "/proc"}]})
    )
    targets = mount_targets(tmp_path)
    assert {"/data", "/proc", "/etc/hosts", "/.dockerenv"} <= targets
    changes = [
        Change("/etc", CHANGE_MODIFIED),
        Change("/etc/hosts", CHANGE_ADDED),
        Change("/data", CHANGE_ADDED),
        Change("/data/x", CHANGE_ADDED),
        Change("/tmp", CHANGE_MODIFIED),
        Change("/tmp/new", CHANGE_ADDED),
    ]
    kept = [c.path for c in without_mountpoints(changes, targets)]
    assert kept == ["/tmp", "/tmp/new"]  # /etc changed only by its mount point
    assert mount_targets(tmp_path / "missing") >= {"/etc/resolv.conf"}
