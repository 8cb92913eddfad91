"""The build context: compressed bodies spooled with bounds, hostile tars refused before any
byte is written, good ones unpacked inside the build directory only."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from declarun.daemon.builder.context import (
    ContextIndex,
    ContextLimits,
    ContextSpool,
    extract_context,
    index_context_tar,
    looks_like_archive,
    sync_context,
)
from declarun.daemon.builder.contextcache import Checkout, ContextCache
from declarun.daemon.builder.errors import BuildContextError

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="unpacking sets owners: needs root")
DEFAULTS = ContextLimits()


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes = b"x") -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.mode = 0o644
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


def _receive(body: bytes, dest: Path, limits: ContextLimits = DEFAULTS) -> int:
    with (dest.parent / "spool").open("w+b") as spool:
        feeder = ContextSpool(spool, limits)
        for start in range(0, len(body), 4096):
            feeder.feed(body[start : start + 4096])
        feeder.finish()
        return extract_context(spool, dest, limits)


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    path = tmp_path / "build" / "context"
    path.mkdir(parents=True)
    return path


COMPRESSORS: dict[str, Callable[[bytes], bytes]] = {
    "plain": lambda data: data,
    "gzip": lambda data: gzip.compress(data, mtime=0),
    "bzip2": bz2.compress,
    "xz": lzma.compress,
}


@pytest.mark.parametrize("kind", sorted(COMPRESSORS))
def test_every_compression_unpacks(kind: str, dest: Path) -> None:
    body = COMPRESSORS[kind](
        _tar([_file("Dockerfile", b"FROM scratch\n"), _file("src/a.txt", b"hello")])
    )
    assert looks_like_archive(body.ljust(512, b"\0"))
    assert _receive(body, dest) == 2
    assert (dest / "src" / "a.txt").read_bytes() == b"hello"


def test_links_inside_are_kept_and_links_out_stay_data(dest: Path) -> None:
    body = _tar(
        [
            _file("a.txt", b"a"),
            _link("in", "a.txt"),
            _link("out", "/etc/shadow"),
            _link("up", "../../../../etc"),
            _link("hard", "a.txt", tarfile.LNKTYPE),
        ]
    )
    _receive(body, dest)
    assert os.readlink(dest / "out") == "/etc/shadow"
    assert os.readlink(dest / "up") == "../../../../etc"
    assert (dest / "hard").stat().st_ino == (dest / "a.txt").stat().st_ino


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ([_file("../escape.txt")], "has '..' in its name"),
        ([_file("a/../../escape.txt")], "has '..' in its name"),
        ([_file("/etc/cron.d/x")], "has an absolute name"),
        ([_file("a.txt"), _link("h", "/etc/passwd", tarfile.LNKTYPE)], "absolute hard link"),
        ([_file("a.txt"), _link("h", "../../etc/passwd", tarfile.LNKTYPE)], "hard link target"),
        ([_file(".wh.Dockerfile")], "whiteout"),
    ],
)
def test_hostile_entries_are_refused_before_anything_is_written(
    entries: list[tuple[tarfile.TarInfo, bytes | None]], message: str, dest: Path
) -> None:
    with pytest.raises(BuildContextError, match=message.replace("(", r"\(")):
        _receive(_tar(entries), dest)
    assert list(dest.iterdir()) == []
    assert not (dest.parent.parent / "escape.txt").exists()


def test_device_files_are_refused(dest: Path) -> None:
    info = tarfile.TarInfo("null")
    info.type = tarfile.CHRTYPE
    info.devmajor, info.devminor = 1, 3
    with pytest.raises(BuildContextError, match="device file"):
        _receive(_tar([(info, None)]), dest)


def test_a_compression_bomb_stops_at_the_limit(dest: Path) -> None:
    # 64 MiB of zeros in one entry, compressed to ~64 KiB; the limit is 1 MiB.
    zeros = _tar([_file("bomb", b"\0" * (64 * 1024 * 1024))])
    body = gzip.compress(zeros, compresslevel=9, mtime=0)
    assert len(body) < 200_000
    limits = ContextLimits(max_bytes=1024 * 1024)
    with pytest.raises(BuildContextError, match="larger than the 1048576 bytes allowed"):
        _receive(body, dest, limits)
    assert list(dest.iterdir()) == []
    assert (dest.parent / "spool").stat().st_size <= 1024 * 1024 + (1 << 20)


def test_an_oversized_plain_context_is_refused(dest: Path) -> None:
    body = _tar([_file("big", os.urandom(300_000))])
    with pytest.raises(BuildContextError, match="larger than"):
        _receive(body, dest, ContextLimits(max_bytes=100_000))


def test_too_many_entries_are_refused(dest: Path) -> None:
    body = _tar([_file(f"f{i}") for i in range(50)])
    with pytest.raises(BuildContextError, match="more than the 20 entries allowed"):
        _receive(body, dest, ContextLimits(max_entries=20))
    assert list(dest.iterdir()) == []


def test_garbage_and_empty_bodies(dest: Path) -> None:
    with pytest.raises(BuildContextError, match="not a valid tar archive"):
        _receive(b"this is not a tar archive at all" * 40, dest)
    with pytest.raises(BuildContextError, match="corrupt"):
        _receive(gzip.compress(_tar([_file("r", os.urandom(100_000))]))[:-30], dest)
    assert _receive(b"", dest) == 0


def _index(body: bytes, tmp: Path) -> tuple[ContextIndex, Path]:
    spool = tmp / f"spool-{len(list(tmp.iterdir()))}"
    spool.write_bytes(body)
    with spool.open("rb") as handle:
        return index_context_tar(handle, DEFAULTS), spool


def _sync(body: bytes, tree: Path, old: ContextIndex | None, tmp: Path) -> tuple[ContextIndex, int]:
    index, spool = _index(body, tmp)
    with spool.open("rb") as handle:
        written = sync_context(handle, index, old.entries if old else {}, tree, tmp)
    return index, written


def _tree(root: Path) -> dict[str, str]:
    out = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            out[rel] = "-> " + os.readlink(path)
        elif path.is_dir():
            out[rel] = "dir"
        else:
            out[rel] = path.read_text()
    return out


def test_a_kept_context_is_updated_with_only_the_differences(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    work = tmp_path / "work"
    work.mkdir()
    first = _tar(
        [
            _file("keep.txt", b"same"),
            _file("edit.txt", b"old"),
            _file("gone/deep/x.txt", b"x"),
            _file("becomes-dir", b"file"),
            _file("target.txt", b"t1"),
            _link("hard", "target.txt", tarfile.LNKTYPE),
            _link("sym", "keep.txt"),
        ]
    )
    index1, written = _sync(first, tree, None, work)
    assert written == len(index1)
    inode = (tree / "keep.txt").stat().st_ino
    dir_info = tarfile.TarInfo("becomes-dir")
    dir_info.type = tarfile.DIRTYPE
    second = _tar(
        [
            _file("keep.txt", b"same"),
            _file("edit.txt", b"new content"),
            (dir_info, None),
            _file("becomes-dir/inside.txt", b"in"),
            _file("target.txt", b"t2"),
            _link("hard", "target.txt", tarfile.LNKTYPE),
            _link("sym", "edit.txt"),
            _file("added.txt", b"added"),
        ]
    )
    index2, written = _sync(second, tree, index1, work)
    assert written < len(index2.entries) + 2
    assert (tree / "keep.txt").stat().st_ino == inode  # untouched
    assert _tree(tree) == {
        "added.txt": "added",
        "becomes-dir": "dir",
        "becomes-dir/inside.txt": "in",
        "edit.txt": "new content",
        "hard": "t2",
        "keep.txt": "same",
        "sym": "-> edit.txt",
        "target.txt": "t2",
    }
    assert (tree / "hard").stat().st_ino == (tree / "target.txt").stat().st_ino
    _, written = _sync(second, tree, index2, work)
    assert written == 0


def test_the_cache_hands_out_the_most_alike_context_once(tmp_path: Path) -> None:
    cache = ContextCache(tmp_path / "contexts", keep=2)
    cache.open()
    work = tmp_path / "work"
    work.mkdir()
    bodies = [_tar([_file(f"{n}-{i}", b"x") for i in range(5)]) for n in ("a", "b", "c")]
    for number, body in enumerate(bodies):
        tree = tmp_path / f"tree{number}"
        tree.mkdir()
        index, _ = _sync(body, tree, None, work)
        evicted = cache.give_back(tree, index)
        assert len(evicted) == (1 if number == 2 else 0)
    wanted, _ = _index(bodies[1], work)
    found, checkout = cache.take(wanted)
    assert found is not None and sorted(os.listdir(found)) == [f"b-{i}" for i in range(5)]
    assert set(checkout.entries) == set(wanted.entries)
    other, _ = cache.take(wanted)
    assert other is not None and other != found
    assert cache.take(wanted) == (None, Checkout())
