"""One suite for both snapshotters: chains, reuse, whiteouts seen through a real mount."""

from __future__ import annotations

import hashlib
import io
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from declarun.daemon.snapshots import (
    CopySnapshotter,
    OverlaySnapshotter,
    SnapshotInUse,
    SnapshotNotFound,
    Snapshotter,
    chain_id,
    chain_ids,
    mount_overlay,
    open_snapshotter,
    overlay_supported,
    unmount,
)
from declarun.errors import UnpackError
from tests.daemon.images.layertar import LayerBuilder

A = "sha256:" + "a" * 64
B = "sha256:" + "b" * 64
# printf 'sha256:aaa…a sha256:bbb…b' | sha256sum
AB = "sha256:ccd722928bd92476ba1745586fed6e45a102504185ad88cd89e01ff116fd146c"

IS_ROOT = os.geteuid() == 0


def test_chain_id_of_a_base_layer_is_its_diff_id() -> None:
    assert chain_id(None, A) == A


def test_chain_id_matches_the_oci_definition() -> None:
    assert chain_id(A, B) == AB
    assert chain_ids([A, B]) == [A, AB]
    third = "sha256:" + hashlib.sha256(f"{AB} {A}".encode()).hexdigest()
    assert chain_ids([A, B, A]) == [A, AB, third]


@pytest.mark.parametrize("bad", ["sha256:abc", "sha512:" + "a" * 64, "sha256:" + "A" * 64, "../x"])
def test_chain_id_refuses_malformed_digests(bad: str) -> None:
    with pytest.raises(ValueError):
        chain_id(None, bad)


def _overlay_ok(tmp: Path) -> bool:
    return IS_ROOT and overlay_supported(tmp)


@pytest.fixture(params=["overlay", "copy"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Snapshotter]:
    if request.param == "overlay":
        if not _overlay_ok(tmp_path / "probe"):
            pytest.skip("overlayfs with trusted xattrs is not available here")
        yield OverlaySnapshotter(tmp_path / "data")
    else:
        yield CopySnapshotter(tmp_path / "data")


@contextmanager
def rootfs(store: Snapshotter, chain: str | None, container_id: str) -> Iterator[Path]:
    """A container root over ``chain``: mounted for overlay, a copy for copy."""
    mounts = store.mounts_for(chain, container_id)
    if mounts.driver == "overlay":
        mount_overlay(mounts)
        try:
            yield mounts.rootfs
        finally:
            unmount(mounts.rootfs)
    else:
        yield mounts.rootfs


def _layers() -> list[bytes]:
    base = (
        LayerBuilder()
        .dir("etc")
        .file("etc/os-release", b"ID=test\n")
        .file("etc/remove-me", b"x")
        .dir("var")
        .dir("var/cache")
        .file("var/cache/old1", b"1")
        .dir("var/cache/sub")
        .file("var/cache/sub/old2", b"2")
        .file("bin/tool", b"tool", mode=0o4755)
    )
    middle = (
        LayerBuilder()
        .dir("etc")
        .whiteout("etc", "remove-me")
        .file("etc/added", b"added")
        .dir("var/cache")
        .opaque("var/cache")
        .file("var/cache/fresh", b"fresh")
    )
    top = LayerBuilder().file("etc/os-release", b"ID=top\n").symlink("bin/alias", "tool")
    return [base.build("gzip"), middle.build("zstd"), top.build()]


def _diff_id(blob: bytes) -> str:
    import gzip

    import zstandard

    if blob[:2] == b"\x1f\x8b":
        blob = gzip.decompress(blob)
    elif blob[:4] == b"\x28\xb5\x2f\xfd":
        blob = zstandard.ZstdDecompressor().decompressobj().decompress(blob)
    return "sha256:" + hashlib.sha256(blob).hexdigest()


def _apply_all(store: Snapshotter) -> list[str]:
    parent: str | None = None
    chains = []
    for blob in _layers():
        applied = store.apply_layer(parent, io.BytesIO(blob), diff_id=_diff_id(blob))
        assert not applied.reused
        parent = applied.snapshot.chain_id
        chains.append(parent)
    return chains


def test_a_chain_is_stored_under_its_chain_ids(store: Snapshotter) -> None:
    blobs = _layers()
    diff_ids = [_diff_id(b) for b in blobs]
    chains = _apply_all(store)
    assert chains == chain_ids(diff_ids)
    top = store.info(chains[-1])
    assert top.parent == chains[1] and top.diff_id == diff_ids[2]
    assert top.path == store.root / chains[-1].removeprefix("sha256:") / "fs"
    assert top.path.is_dir()
    assert sorted(s.chain_id for s in store.snapshots()) == sorted(chains)
    assert oct(store.root.stat().st_mode & 0o777) == oct(0o700)


def test_the_container_root_shows_the_merged_chain(store: Snapshotter) -> None:
    chains = _apply_all(store)
    with rootfs(store, chains[-1], "c1") as root:
        assert (root / "etc/os-release").read_bytes() == b"ID=top\n"
        assert (root / "etc/added").read_bytes() == b"added"
        assert not (root / "etc/remove-me").exists(), "whiteout deletes"
        assert sorted(p.name for p in (root / "var/cache").iterdir()) == ["fresh"], "opaque"
        assert os.readlink(root / "bin/alias") == "tool"
        assert (root / "bin/tool").stat().st_mode & 0o7777 == 0o4755
        (root / "etc/written-by-container").write_bytes(b"c")
        (root / "etc/os-release").unlink()
    for chain in chains:
        fs = store.info(chain).path
        assert not (fs / "etc/written-by-container").exists(), "snapshots stay read-only"
    assert (store.info(chains[-1]).path / "etc/os-release").exists()
    # a restart reuses the writable layer
    with rootfs(store, chains[-1], "c1") as root:
        assert (root / "etc/written-by-container").read_bytes() == b"c"
        assert not (root / "etc/os-release").exists()
    store.release("c1")
    assert not (store.root / "containers" / "c1").exists()


def test_an_intermediate_chain_shows_only_its_layers(store: Snapshotter) -> None:
    chains = _apply_all(store)
    with rootfs(store, chains[0], "c0") as root:
        assert (root / "etc/remove-me").exists()
        assert (root / "var/cache/sub/old2").read_bytes() == b"2"
        assert not (root / "etc/added").exists()
    store.release("c0")


def test_an_image_without_layers_gets_an_empty_root(store: Snapshotter) -> None:
    with rootfs(store, None, "empty") as root:
        assert list(root.iterdir()) == []
    store.release("empty")


class _Unreadable(io.RawIOBase):
    def read(self, size: int = -1) -> bytes:
        raise AssertionError("an existing snapshot must be reused without reading the layer")


def test_an_existing_chain_is_reused_without_reading_the_layer(store: Snapshotter) -> None:
    chains = _apply_all(store)
    blob = _layers()[0]
    again = store.apply_layer(None, _Unreadable(), diff_id=_diff_id(blob))
    assert again.reused and again.snapshot.chain_id == chains[0]


def test_without_a_diff_id_the_computed_one_is_used_and_duplicates_collapse(
    store: Snapshotter,
) -> None:
    blob = _layers()[0]
    first = store.apply_layer(None, io.BytesIO(blob))
    second = store.apply_layer(None, io.BytesIO(blob))
    assert first.snapshot.chain_id == second.snapshot.chain_id == _diff_id(blob)
    assert first.snapshot.size == len(__import__("gzip").decompress(blob))
    assert len(store.snapshots()) == 1
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []


def test_a_layer_not_matching_its_diff_id_is_refused(store: Snapshotter) -> None:
    with pytest.raises(UnpackError, match="does not match"):
        store.apply_layer(None, io.BytesIO(_layers()[0]), diff_id=A)
    assert store.snapshots() == []
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []


def test_a_hostile_layer_leaves_no_snapshot(store: Snapshotter) -> None:
    hostile = LayerBuilder().file("ok", b"1").file("../../../escape", b"x").build()
    with pytest.raises(UnpackError):
        store.apply_layer(None, io.BytesIO(hostile))
    assert store.snapshots() == []
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []
    assert not (store.root.parent.parent / "escape").exists()


def test_missing_parent_is_an_error(store: Snapshotter) -> None:
    with pytest.raises(SnapshotNotFound):
        store.apply_layer(A, io.BytesIO(_layers()[0]))
    with pytest.raises(SnapshotNotFound):
        store.info(B)


def test_remove_refuses_snapshots_in_use(store: Snapshotter) -> None:
    chains = _apply_all(store)
    with pytest.raises(SnapshotInUse, match="parent"):
        store.remove(chains[0])
    store.mounts_for(chains[-1], "user")
    with pytest.raises(SnapshotInUse, match="container"):
        store.remove(chains[-1])
    store.release("user")
    for chain in reversed(chains):
        store.remove(chain)
    assert store.snapshots() == []


def test_invalid_container_ids_are_refused(store: Snapshotter) -> None:
    for bad in ("../x", "", ".hidden", "a/b"):
        with pytest.raises(ValueError):
            store.mounts_for(None, bad)


def test_sweep_removes_interrupted_work(tmp_path: Path) -> None:
    store = CopySnapshotter(tmp_path / "data")
    prepared = store.prepare(None)
    (prepared.fs / "half").write_bytes(b"x")
    reopened = open_snapshotter(tmp_path / "data", driver="copy")
    assert not prepared.path.exists()
    assert reopened.snapshots() == []


@pytest.mark.skipif(not IS_ROOT, reason="needs root to mount")
def test_auto_picks_overlay_where_it_mounts(tmp_path: Path) -> None:
    store = open_snapshotter(tmp_path / "data")
    assert store.driver == ("overlay" if overlay_supported(tmp_path / "probe") else "copy")


def test_a_writable_layer_becomes_a_snapshot_without_copying(store: Snapshotter) -> None:
    chains = _apply_all(store)
    with rootfs(store, chains[-1], "w1") as root:
        (root / "etc/new-file").write_bytes(b"new")
        (root / "etc/added").unlink()
    fake_diff = "sha256:" + "d" * 64
    published = store.commit_writable("w1", fake_diff, 123)
    if store.driver != "overlay":
        assert published is None  # a flattened copy holds more than the layer
        return
    assert published is not None
    assert published.chain_id == chain_id(chains[-1], fake_diff)
    assert published.parent == chains[-1] and published.size == 123
    assert (published.path / "etc/new-file").read_bytes() == b"new"
    assert os.stat(published.path / "etc/added", follow_symlinks=False).st_rdev == 0  # whiteout
    # The container keeps an empty writable layer; the snapshot is now shared.
    assert list((store.root / "containers" / "w1" / "upper").iterdir()) == []
    with rootfs(store, published.chain_id, "w2") as root:
        assert (root / "etc/new-file").read_bytes() == b"new"
        assert not (root / "etc/added").exists()
    store.release("w1")
    store.release("w2")


def test_a_writable_layer_with_a_redirect_is_not_adopted(store: Snapshotter) -> None:
    if store.driver != "overlay":
        pytest.skip("only overlay adopts writable layers")
    mounts = store.mounts_for(None, "w3")
    assert mounts.upperdir is not None
    (mounts.upperdir / "moved").mkdir()
    os.setxattr(mounts.upperdir / "moved", "trusted.overlay.redirect", b"/elsewhere")
    assert store.commit_writable("w3", "sha256:" + "e" * 64, 1) is None
    assert (mounts.upperdir / "moved").is_dir()  # left as it was
    store.release("w3")


def test_layers_staged_out_of_order_are_committed_in_chain_order(store: Snapshotter) -> None:
    blobs = _layers()
    diff_ids = [_diff_id(blob) for blob in blobs]
    chains = chain_ids(diff_ids)
    parents = [None, *chains[:-1]]
    if not store.independent_layers:
        # A copy starts from the parent's tree: it cannot be staged before the parent.
        with pytest.raises(SnapshotNotFound):
            store.stage_layer(parents[1], io.BytesIO(blobs[1]), diff_id=diff_ids[1])
        assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []
        return
    # overlay: the top layers first, before their parents exist
    staged = {
        index: store.stage_layer(parents[index], io.BytesIO(blobs[index]), diff_id=diff_ids[index])
        for index in (2, 1, 0)
    }
    assert store.snapshots() == []
    with pytest.raises(SnapshotNotFound):
        store.commit_staged(staged[1])  # its parent is not committed: refused, discarded
    assert not staged[1].prepared.path.exists()
    staged[1] = store.stage_layer(parents[1], io.BytesIO(blobs[1]), diff_id=diff_ids[1])
    for index in (0, 1, 2):
        assert store.commit_staged(staged[index]).chain_id == chains[index]
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []
    with rootfs(store, chains[-1], "c") as root:
        assert (root / "etc/os-release").read_bytes() == b"ID=top\n"
        assert (root / "etc/added").read_bytes() == b"added"
        assert not (root / "etc/remove-me").exists()
        assert sorted(os.listdir(root / "var/cache")) == ["fresh"]
    store.release("c")


def test_a_staged_layer_not_matching_its_diff_id_leaves_nothing(store: Snapshotter) -> None:
    with pytest.raises(UnpackError, match="does not match"):
        store.stage_layer(None, io.BytesIO(_layers()[0]), diff_id=A)
    assert [p.name for p in store.root.iterdir() if p.name.startswith(".")] == []
