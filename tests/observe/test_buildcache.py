"""What is kept about builds in the user's cache directory: records, context file lists."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from declarun.dockerfile import ContextDigest
from declarun.observe import buildcache
from declarun.observe.buildcache import (
    cache_dir,
    read_context_map,
    read_record,
    record_path,
    write_context_map,
    write_record,
)
from declarun.plan.buildinputs import BuildInputs

ID = "sha256:" + "1" * 64
CONTEXT = "sha256:" + "c" * 64


def _inputs(context: str = CONTEXT) -> BuildInputs:
    return BuildInputs(context=context, dockerfile="sha256:" + "d" * 64)


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))


def test_the_cache_dir_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert cache_dir() == tmp_path / "xdg" / "declarun"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "declarun"


def test_a_record_is_read_back_for_its_tag_and_image_only() -> None:
    write_record("shop-app:latest", ID, _inputs())
    assert read_record("shop-app:latest", ID) == _inputs()
    assert read_record("shop-other:latest", ID) is None
    assert read_record("shop-app:latest", "sha256:" + "2" * 64) is None
    assert read_record("shop-app:latest", "not-a-digest") is None
    with pytest.raises(ValueError):
        write_record("shop-app:latest", "not-a-digest", _inputs())


def test_a_damaged_record_or_map_is_as_if_nothing_was_kept() -> None:
    path = record_path("shop-app:latest", ID)
    assert path is not None
    path.parent.mkdir(parents=True)
    path.write_text("{not json")
    assert read_record("shop-app:latest", ID) is None
    path.write_text('{"tag": "shop-app:latest", "inputs": {"context": 1}}')
    assert read_record("shop-app:latest", ID) is None
    maps = cache_dir() / "contexts"
    maps.mkdir(parents=True)
    (maps / f"{CONTEXT[7:]}.json").write_text('{"digest": "sha256:other", "entries": {}}')
    assert read_context_map(CONTEXT) is None


def test_a_tag_keeps_its_newest_records_only() -> None:
    ids = [f"sha256:{index:064x}" for index in range(6)]
    for index, image in enumerate(ids):
        write_record("shop-app:latest", image, _inputs())
        path = record_path("shop-app:latest", image)
        assert path is not None
        os.utime(path, (1000 + index, 1000 + index))
    kept = [image for image in ids if read_record("shop-app:latest", image) is not None]
    assert kept == ids[-4:]


def test_context_maps_are_kept_once_and_dropped_a_day_after_no_record_needs_them() -> None:
    used = ContextDigest(CONTEXT, {"a.txt": "file 644 x"})
    unused = ContextDigest("sha256:" + "e" * 64, {"b.txt": "file 644 y"})
    write_context_map(used)
    write_context_map(unused)
    assert read_context_map(CONTEXT) == used
    old = time.time() - 2 * 24 * 3600
    for kept in (cache_dir() / "contexts").glob("*.json"):
        os.utime(kept, (old, old))
    write_record("shop-app:latest", ID, _inputs(CONTEXT))
    assert read_context_map(CONTEXT) == used  # its record refers to it
    assert read_context_map(unused.digest) is None


def test_an_unwritable_cache_only_costs_the_file_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(buildcache, "cache_dir", lambda: Path("/proc/declarun-cannot-write"))
    write_context_map(ContextDigest(CONTEXT, {}))  # no error: best effort
    with pytest.raises(OSError):
        write_record("shop-app:latest", ID, _inputs())
