"""Applying well-formed layers: every entry type, metadata, compression, whiteouts."""

from __future__ import annotations

import hashlib
import io
import os
import stat
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from declarun.daemon.images.unpack import OVERLAY_OPAQUE_XATTR, apply_into, apply_layer
from declarun.errors import UnpackError
from tests.daemon.images.layertar import DEFAULT_MTIME, LayerBuilder

IS_ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not IS_ROOT, reason="needs root (devices, ownership)")

MODES = ["overlay", "flat"]


def _sample_layer() -> LayerBuilder:
    return (
        LayerBuilder()
        .dir("./", mode=0o755)
        .dir("bin", mode=0o755, mtime=1_500_000_000)
        .file("bin/tool", b"#!/bin/sh\necho hi\n", mode=0o4755, uid=0, gid=0)
        .file("bin/owned", b"x", mode=0o640, uid=1234, gid=5678)
        .hardlink("bin/tool-link", "bin/tool")
        .symlink("bin/sh", "tool", uid=42, gid=43, mtime=1_400_000_000)
        .dir("shared", mode=0o2775, gid=100)
        .dir("tmp", mode=0o1777)
        .dir("dev", mode=0o755)
        .device("dev/null", "chr", 1, 3, mode=0o666)
        .device("dev/loop9", "blk", 7, 9, mode=0o660, gid=6)
        .fifo("run-fifo", mode=0o600)
        .file("etc/implied/parent.conf", b"conf", mode=0o600)
        .file("xattr-file", b"x", xattrs={"user.declarun.test": "hello"})
        .dir("xattr-dir", xattrs={"user.declarun.dir": "d"})
        .file("frac", b"f", pax={"mtime": "1600000000.123456789"})
    )


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_every_entry_type_and_its_metadata(tmp_path: Path, mode: str) -> None:
    raw = _sample_layer().build()
    target = tmp_path / "snap"
    result = apply_layer(io.BytesIO(raw), target, mode=mode)  # type: ignore[arg-type]

    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.size == len(raw)
    assert result.compression == "none"
    assert result.warnings == ()

    tool = target / "bin/tool"
    assert tool.read_bytes() == b"#!/bin/sh\necho hi\n"
    assert stat.S_IMODE(tool.stat().st_mode) == 0o4755, "setuid bit kept"
    assert tool.stat().st_mtime_ns == DEFAULT_MTIME * 10**9

    owned = (target / "bin/owned").stat()
    assert (owned.st_uid, owned.st_gid, stat.S_IMODE(owned.st_mode)) == (1234, 5678, 0o640)

    link = (target / "bin/tool-link").stat()
    assert link.st_ino == tool.stat().st_ino and link.st_nlink == 2

    sh = target / "bin/sh"
    assert sh.is_symlink() and os.readlink(sh) == "tool"
    sh_st = sh.lstat()
    assert (sh_st.st_uid, sh_st.st_gid) == (42, 43)
    assert sh_st.st_mtime_ns == 1_400_000_000 * 10**9

    shared = (target / "shared").stat()
    assert stat.S_IMODE(shared.st_mode) == 0o2775 and shared.st_gid == 100
    assert stat.S_IMODE((target / "tmp").stat().st_mode) == 0o1777

    null = (target / "dev/null").lstat()
    assert stat.S_ISCHR(null.st_mode) and os.major(null.st_rdev) == 1
    assert os.minor(null.st_rdev) == 3 and stat.S_IMODE(null.st_mode) == 0o666
    loop = (target / "dev/loop9").lstat()
    assert stat.S_ISBLK(loop.st_mode) and (os.major(loop.st_rdev), os.minor(loop.st_rdev)) == (7, 9)
    assert loop.st_gid == 6
    assert stat.S_ISFIFO((target / "run-fifo").lstat().st_mode)

    assert (target / "etc/implied/parent.conf").read_bytes() == b"conf"
    assert stat.S_IMODE((target / "etc/implied").stat().st_mode) == 0o755

    assert os.getxattr(target / "xattr-file", "user.declarun.test") == b"hello"
    assert os.getxattr(target / "xattr-dir", "user.declarun.dir") == b"d"
    assert (target / "frac").stat().st_mtime_ns == 1_600_000_000_123_456_789

    # Directory times survive the creation of their children (they are set last).
    assert (target / "bin").stat().st_mtime_ns == 1_500_000_000 * 10**9
    assert stat.S_IMODE(target.stat().st_mode) == 0o755


@pytest.mark.parametrize("compression", ["none", "gzip", "zstd"])
def test_compressions_detected_by_magic_give_the_same_tree_and_diff_id(
    tmp_path: Path, compression: str
) -> None:
    builder = LayerBuilder().dir("a").file("a/b", b"payload" * 1000).symlink("c", "a/b")
    raw = builder.build()
    result = apply_layer(io.BytesIO(builder.build(compression)), tmp_path / "s", mode="flat")
    assert result.compression == compression
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert (tmp_path / "s/a/b").read_bytes() == b"payload" * 1000
    assert os.readlink(tmp_path / "s/c") == "a/b"


def test_diff_id_covers_trailing_padding(tmp_path: Path) -> None:
    raw = LayerBuilder().file("f", b"1").build() + b"\0" * 4096
    result = apply_layer(io.BytesIO(raw), tmp_path / "s", mode="flat")
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert result.size == len(raw)


@pytest.mark.parametrize("raw", [b"", b"\0" * 1024], ids=["zero-bytes", "end-marker-only"])
def test_empty_layers(tmp_path: Path, raw: bytes) -> None:
    result = apply_layer(io.BytesIO(raw), tmp_path / "s", mode="overlay")
    assert result.entries == 0
    assert result.diff_id == "sha256:" + hashlib.sha256(raw).hexdigest()
    assert list((tmp_path / "s").iterdir()) == []


def test_replacing_entries_across_types(tmp_path: Path) -> None:
    layer = (
        LayerBuilder()
        .dir("d")
        .file("d/inner", b"1")
        .file("d", b"now a file")
        .file("f", b"file")
        .dir("f")
        .symlink("s", "elsewhere")
        .dir("s")
        .file("same", b"old")
        .file("same", b"new")
    )
    apply_layer(io.BytesIO(layer.build()), tmp_path / "s", mode="flat")
    root = tmp_path / "s"
    assert (root / "d").read_bytes() == b"now a file"
    assert (root / "f").is_dir() and (root / "s").is_dir() and not (root / "s").is_symlink()
    assert (root / "same").read_bytes() == b"new"


def test_unknown_xattr_namespace_is_a_warning_not_a_failure(tmp_path: Path) -> None:
    layer = LayerBuilder().file("f", b"x", xattrs={"bogus.ns": "v", "user.ok": "1"})
    result = apply_layer(io.BytesIO(layer.build()), tmp_path / "s", mode="flat")
    assert (tmp_path / "s/f").read_bytes() == b"x"
    assert os.getxattr(tmp_path / "s/f", "user.ok") == b"1"
    assert any("bogus.ns" in w for w in result.warnings)


@needs_root
def test_overlay_metadata_xattrs_in_a_layer_are_not_applied(tmp_path: Path) -> None:
    layer = LayerBuilder().dir("d", xattrs={"trusted.overlay.redirect": "/etc"})
    result = apply_layer(io.BytesIO(layer.build()), tmp_path / "s", mode="overlay")
    assert "trusted.overlay.redirect" not in os.listxattr(tmp_path / "s/d")
    assert any("reserved for overlayfs" in w for w in result.warnings)


# ---- whiteouts --------------------------------------------------------------------


def _lower() -> LayerBuilder:
    return (
        LayerBuilder()
        .dir("keep")
        .file("keep/a", b"a")
        .file("keep/b", b"b")
        .dir("opq")
        .file("opq/lower1", b"1")
        .dir("opq/sub")
        .file("opq/sub/lower2", b"2")
        .file("opq/implicit/lowerchild", b"3")
        .dir("gone-dir")
        .file("gone-dir/x", b"x")
    )


def _upper() -> LayerBuilder:
    return (
        LayerBuilder()
        .dir("keep")
        .whiteout("keep", "b")
        .whiteout("", "gone-dir")
        .whiteout("", "never-existed")
        .dir("opq")
        .file("opq/before-marker", b"mine")
        .file("opq/implicit/child", b"c")  # no entry for opq/implicit itself
        .opaque("opq")
        .dir("opq/sub")
        .file("opq/sub/new", b"n")
        .file(".wh..wh.plnk", b"")  # aufs bookkeeping: ignored
    )


def test_flat_whiteouts_delete_and_opaque_keeps_only_this_layer(tmp_path: Path) -> None:
    base = tmp_path / "base"
    apply_layer(io.BytesIO(_lower().build()), base, mode="flat")
    top = tmp_path / "top"
    apply_layer(io.BytesIO(_upper().build()), top, mode="flat", base=base)

    assert (top / "keep/a").read_bytes() == b"a"
    assert not (top / "keep/b").exists()
    assert not (top / "gone-dir").exists()
    assert sorted(p.name for p in (top / "opq").iterdir()) == ["before-marker", "implicit", "sub"]
    assert [p.name for p in (top / "opq/sub").iterdir()] == ["new"]
    assert [p.name for p in (top / "opq/implicit").iterdir()] == ["child"]
    assert not list(top.rglob(".wh.*"))
    # The base snapshot itself is untouched by the copy-and-apply.
    assert (base / "keep/b").read_bytes() == b"b"
    assert (base / "opq/sub/lower2").exists()


@needs_root
def test_overlay_whiteouts_are_char_devices_and_opaque_xattrs(tmp_path: Path) -> None:
    top = tmp_path / "top"
    apply_layer(io.BytesIO(_upper().build()), top, mode="overlay")
    for victim in ("keep/b", "gone-dir", "never-existed"):
        st = (top / victim).lstat()
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == os.makedev(0, 0), victim
    assert os.getxattr(top / "opq", OVERLAY_OPAQUE_XATTR) == b"y"
    assert OVERLAY_OPAQUE_XATTR not in os.listxattr(top / "keep")
    assert not (top / ".wh..wh.plnk").exists()


@contextmanager
def _overlay(lowers: list[Path], tmp: Path) -> Iterator[Path]:
    upper, work, merged = tmp / "upper", tmp / "work", tmp / "merged"
    for d in (upper, work, merged):
        d.mkdir()
    lowerdir = ":".join(str(p) for p in lowers)
    opts = f"lowerdir={lowerdir},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, str(merged)], check=True)
    try:
        yield merged
    finally:
        subprocess.run(["umount", str(merged)], check=True)


@needs_root
def test_overlay_mode_layers_mount_to_the_same_tree_as_flat_mode(tmp_path: Path) -> None:
    lower, upper = tmp_path / "l0", tmp_path / "l1"
    apply_layer(io.BytesIO(_lower().build()), lower, mode="overlay")
    apply_layer(io.BytesIO(_upper().build()), upper, mode="overlay")
    flat_base, flat = tmp_path / "f0", tmp_path / "f1"
    apply_layer(io.BytesIO(_lower().build()), flat_base, mode="flat")
    apply_layer(io.BytesIO(_upper().build()), flat, mode="flat", base=flat_base)

    mnt = tmp_path / "mnt"
    mnt.mkdir()
    with _overlay([upper, lower], mnt) as merged:
        assert not (merged / "keep/b").exists()
        assert not (merged / "gone-dir").exists()
        assert (merged / "keep/a").read_bytes() == b"a"
        assert not (merged / "opq/lower1").exists(), "opaque dir hides the lower layer"
        assert not (merged / "opq/sub/lower2").exists()
        assert not (merged / "opq/implicit/lowerchild").exists()
        assert (merged / "opq/implicit/child").read_bytes() == b"c"
        merged_names = sorted(str(p.relative_to(merged)) for p in merged.rglob("*"))
    flat_names = sorted(str(p.relative_to(flat)) for p in flat.rglob("*"))
    assert merged_names == flat_names


def test_apply_into_rejects_unknown_mode(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        apply_into(io.BytesIO(b""), tmp_path, mode="bogus")  # type: ignore[arg-type]


def test_apply_layer_refuses_an_existing_target(tmp_path: Path) -> None:
    (tmp_path / "s").mkdir()
    with pytest.raises(UnpackError):
        apply_layer(io.BytesIO(b""), tmp_path / "s", mode="flat")
