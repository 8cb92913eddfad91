"""Crafted hostile layers: each is refused or kept inside its root, and the host is untouched.

Every test runs against a "host" tree next to the snapshot (a sentinel directory and a
shadow-like decoy file) and proves it is byte-identical afterwards, that nothing new
appeared outside the snapshot, and that a refused layer left no directory behind.
"""

from __future__ import annotations

import io
import os
import stat
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from declarun.daemon.images.unpack import apply_layer
from declarun.errors import UnpackError
from tests.daemon.images.layertar import LayerBuilder, tree_manifest

MODES = ["overlay", "flat"]
needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (whiteout devices)")


@dataclass
class Host:
    """A fake host next to the snapshot area; ``check`` proves nothing changed."""

    tmp: Path
    sentinel: Path
    shadow: Path
    work: Path
    before: dict[str, tuple[object, ...]]
    etc_shadow: os.stat_result | None

    def check(self, *, target: Path, refused: bool) -> None:
        assert tree_manifest(self.tmp / "host") == self.before, "host tree changed"
        assert sorted(p.name for p in self.tmp.iterdir()) == ["host", "work"]
        left = sorted(p.name for p in self.work.iterdir())
        assert left == ([] if refused else [target.name]), f"left behind: {left}"
        if self.etc_shadow is not None:
            now = os.stat("/etc/shadow")
            assert (now.st_nlink, now.st_mtime_ns, now.st_ino) == (
                self.etc_shadow.st_nlink,
                self.etc_shadow.st_mtime_ns,
                self.etc_shadow.st_ino,
            )


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    sentinel = tmp_path / "host" / "sentinel"
    sentinel.mkdir(parents=True)
    (sentinel / "important").write_bytes(b"do not touch")
    (sentinel / "sub").mkdir()
    (sentinel / "sub" / "deep").write_bytes(b"deep")
    shadow = tmp_path / "host" / "shadow"
    shadow.write_bytes(b"root:$6$secret:19000::::::\n")
    os.chmod(shadow, 0o600)
    work = tmp_path / "work"
    work.mkdir()
    etc_shadow = os.stat("/etc/shadow") if os.path.exists("/etc/shadow") else None
    yield Host(tmp_path, sentinel, shadow, work, tree_manifest(tmp_path / "host"), etc_shadow)


def _apply(host: Host, layer: LayerBuilder | bytes, mode: str, base: Path | None = None) -> Path:
    raw = layer if isinstance(layer, bytes) else layer.build()
    target = host.work / "snap"
    apply_layer(io.BytesIO(raw), target, mode=mode, base=base)  # type: ignore[arg-type]
    return target


def _refused(host: Host, layer: LayerBuilder | bytes, mode: str, match: str) -> None:
    with pytest.raises(UnpackError, match=match):
        _apply(host, layer, mode)
    host.check(target=host.work / "snap", refused=True)


# ---- refused outright ------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "name",
    [
        "../escape",
        "../../../../../../../../tmp/escape",
        "a/../../escape",
        "./../x",
        "a/b/../../../x",
    ],
)
def test_names_climbing_out_of_the_root_are_refused(host: Host, mode: str, name: str) -> None:
    _refused(host, LayerBuilder().dir("a").file("ok", b"1").file(name, b"pwned"), mode, "escapes")


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_to_an_absolute_host_path_is_refused(host: Host, mode: str) -> None:
    layer = LayerBuilder().file("innocent", b"x").hardlink("stolen", str(host.shadow))
    _refused(host, layer, mode, "stolen")
    assert host.shadow.stat().st_nlink == 1


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_to_etc_shadow_is_refused(host: Host, mode: str) -> None:
    _refused(host, LayerBuilder().hardlink("shadow", "/etc/shadow"), mode, "shadow")


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_climbing_out_is_refused(host: Host, mode: str) -> None:
    layer = LayerBuilder().hardlink("stolen", "../host/shadow")
    _refused(host, layer, mode, "escapes")


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_through_a_planted_symlink_is_refused(host: Host, mode: str) -> None:
    layer = (
        LayerBuilder()
        .symlink("hostdir", str(host.shadow.parent))
        .hardlink("stolen", "hostdir/shadow")
    )
    _refused(host, layer, mode, "stolen")
    assert host.shadow.stat().st_nlink == 1


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_to_a_directory_is_refused(host: Host, mode: str) -> None:
    _refused(host, LayerBuilder().dir("d").hardlink("l", "d"), mode, "directory")


@pytest.mark.parametrize("mode", MODES)
def test_nul_in_a_name_is_refused(host: Host, mode: str) -> None:
    layer = LayerBuilder().file("x", b"1", pax={"path": "a\x00/../../escape"})
    _refused(host, layer, mode, "NUL")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kind", ["file", "symlink"])
def test_the_root_can_only_be_a_directory(host: Host, mode: str, kind: str) -> None:
    layer = LayerBuilder()
    if kind == "file":
        layer.file("", b"data")
    else:
        layer.symlink(".", str(host.sentinel))
    _refused(host, layer, mode, "root must be a directory")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", [".wh.", "d/.wh..", "d/.wh..."])
def test_whiteouts_without_a_proper_name_are_refused(host: Host, mode: str, name: str) -> None:
    _refused(host, LayerBuilder().dir("d").file(name), mode, "invalid whiteout")


@pytest.mark.parametrize("mode", MODES)
def test_symlink_loops_are_refused(host: Host, mode: str) -> None:
    layer = LayerBuilder().symlink("a", "b").symlink("b", "a").file("a/x", b"1")
    _refused(host, layer, mode, "too many levels")


@pytest.mark.parametrize("mode", MODES)
def test_a_file_used_as_a_directory_is_refused(host: Host, mode: str) -> None:
    _refused(host, LayerBuilder().file("f", b"1").file("f/x", b"2"), mode, "not a directory")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("field", ["uid", "gid"])
def test_out_of_range_ids_are_refused(host: Host, mode: str, field: str) -> None:
    _refused(host, LayerBuilder().file("f", b"1", **{field: 2**40}), mode, "layer entry 'f'")


@pytest.mark.parametrize("mode", MODES)
def test_empty_symlink_target_is_refused(host: Host, mode: str) -> None:
    _refused(host, LayerBuilder().symlink("s", ""), mode, "symlink target")


@pytest.mark.parametrize(
    "damage",
    ["truncated-data", "truncated-header", "bad-checksum", "garbage", "bad-gzip", "bad-zstd"],
)
def test_damaged_archives_are_refused_and_leave_nothing(host: Host, damage: str) -> None:
    good = LayerBuilder().file("a", b"A" * 5000).file("b", b"B" * 10).build()
    if damage == "truncated-data":
        raw = good[: 512 + 100]
    elif damage == "truncated-header":
        raw = good[: 512 * 2 + 5000 // 512 * 512 + 512 + 200]
    elif damage == "bad-checksum":
        second = 512 + 512 + (5000 + 511) // 512 * 512  # pax header + data, then "b"
        buf = bytearray(good)
        # corrupt the second member's ustar header (after its own pax header block)
        buf[second + 512 + 10] ^= 0xFF
        raw = bytes(buf)
    elif damage == "garbage":
        raw = os.urandom(4096)
    elif damage == "bad-gzip":
        raw = LayerBuilder().file("a", b"A" * 5000).build("gzip")[:-20]
    else:
        raw = b"\x28\xb5\x2f\xfd" + os.urandom(200)
    _refused(host, raw, "flat", "truncated|corrupt|damaged|not a tar")


# ---- accepted, but kept inside the root ----------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_absolute_names_land_inside_the_root(host: Host, mode: str) -> None:
    layer = LayerBuilder().file(f"{host.sentinel}/important", b"pwned")
    target = _apply(host, layer, mode)
    host.check(target=target, refused=False)
    assert (target / str(host.sentinel).lstrip("/") / "important").read_bytes() == b"pwned"


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("relative", [False, True])
def test_writing_through_a_planted_symlink_stays_inside(
    host: Host, mode: str, relative: bool
) -> None:
    link = "../" * 40 + str(host.sentinel).lstrip("/") if relative else str(host.sentinel)
    layer = (
        LayerBuilder()
        .symlink("evil", link)
        .file("evil/important", b"pwned")
        .dir("evil/sub")
        .file("evil/sub/deep", b"pwned")
        .file("evil/new", b"pwned")
    )
    target = _apply(host, layer, mode)
    host.check(target=target, refused=False)
    inside = target / str(host.sentinel).lstrip("/")
    assert (inside / "important").read_bytes() == b"pwned"
    assert (inside / "new").read_bytes() == b"pwned"
    assert (target / "evil").is_symlink()


@pytest.mark.parametrize("mode", MODES)
def test_a_file_entry_replaces_a_symlink_instead_of_writing_through_it(
    host: Host, mode: str
) -> None:
    layer = LayerBuilder().symlink("passwd", str(host.shadow)).file("passwd", b"pwned", mode=0o666)
    target = _apply(host, layer, mode)
    host.check(target=target, refused=False)
    assert not (target / "passwd").is_symlink()
    assert (target / "passwd").read_bytes() == b"pwned"


@pytest.mark.parametrize("mode", MODES)
def test_metadata_entries_do_not_follow_a_symlink(host: Host, mode: str) -> None:
    # A directory entry over a symlink to a host dir must not chmod/chown the host dir.
    layer = (
        LayerBuilder()
        .symlink("d", str(host.sentinel))
        .dir("d", mode=0o777, uid=4242, xattrs={"user.pwned": "1"})
    )
    target = _apply(host, layer, mode)
    host.check(target=target, refused=False)
    assert (target / "d").is_dir() and not (target / "d").is_symlink()


@pytest.mark.parametrize("mode", MODES)
def test_hardlink_to_a_symlink_links_the_symlink_itself(host: Host, mode: str) -> None:
    layer = LayerBuilder().symlink("s", str(host.shadow)).hardlink("h", "s")
    target = _apply(host, layer, mode)
    host.check(target=target, refused=False)
    assert (target / "h").is_symlink()
    assert (target / "h").lstat().st_ino == (target / "s").lstat().st_ino


@pytest.mark.parametrize("mode", MODES)
def test_writing_a_hardlinked_name_does_not_change_the_other_name(host: Host, mode: str) -> None:
    layer = LayerBuilder().file("orig", b"original").hardlink("alias", "orig").file("alias", b"new")
    target = _apply(host, layer, mode)
    assert (target / "orig").read_bytes() == b"original"
    assert (target / "alias").read_bytes() == b"new"


@needs_root
@pytest.mark.parametrize("mode", MODES)
def test_whiteouts_through_a_planted_symlink_stay_inside(host: Host, mode: str) -> None:
    layer = (
        LayerBuilder()
        .symlink("evil", str(host.sentinel))
        .whiteout("evil", "important")
        .whiteout("evil/sub", "deep")
        .opaque("evil")
    )
    target = _apply(host, layer, mode)
    host.check(target=target, refused=False)


@needs_root
def test_whiteout_of_a_symlinked_dir_removes_the_link_not_its_target(host: Host) -> None:
    base = host.tmp / "work" / "base"
    apply_layer(io.BytesIO(LayerBuilder().symlink("lnk", str(host.sentinel)).build()), base, "flat")
    target = host.work / "snap"
    apply_layer(io.BytesIO(LayerBuilder().whiteout("", "lnk").build()), target, "flat", base=base)
    assert not os.path.lexists(target / "lnk")
    assert tree_manifest(host.tmp / "host") == host.before


# ---- a lower layer's symlink, written through by a later layer (flat mode) --------


def _base_with_symlink(host: Host) -> Path:
    base = host.work / "base"
    lower = LayerBuilder().dir("usr").symlink("lib", str(host.sentinel)).symlink("up", "../..")
    apply_layer(io.BytesIO(lower.build()), base, mode="flat")
    return base


def test_lower_layer_symlink_cannot_be_written_through(host: Host) -> None:
    base = _base_with_symlink(host)
    before_base = tree_manifest(base)
    upper = (
        LayerBuilder()
        .file("lib/important", b"pwned")
        .file("lib/sub/deep", b"pwned")
        .file("up/host/shadow", b"pwned")
    )
    target = host.work / "snap"
    apply_layer(io.BytesIO(upper.build()), target, mode="flat", base=base)
    assert tree_manifest(host.tmp / "host") == host.before
    assert tree_manifest(base) == before_base, "the parent snapshot is never modified"
    assert (target / "host/shadow").read_bytes() == b"pwned"
    assert (target / str(host.sentinel).lstrip("/") / "important").read_bytes() == b"pwned"
    assert sorted(p.name for p in host.work.iterdir()) == ["base", "snap"]


def test_lower_layer_symlink_cannot_be_used_to_hardlink_host_files(host: Host) -> None:
    base = _base_with_symlink(host)
    upper = LayerBuilder().hardlink("stolen", "lib/important")
    with pytest.raises(UnpackError):
        apply_layer(io.BytesIO(upper.build()), host.work / "snap", mode="flat", base=base)
    assert tree_manifest(host.tmp / "host") == host.before
    assert (host.sentinel / "important").stat().st_nlink == 1
    assert sorted(p.name for p in host.work.iterdir()) == ["base"]


# ---- volume -----------------------------------------------------------------------


@pytest.mark.slow
def test_many_entries_stream_through(host: Host) -> None:
    count = 20_000
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i in range(count):
            info = tarfile.TarInfo(f"d{i % 10}/f{i}")
            tar.addfile(info, io.BytesIO(b""))
    target = host.work / "snap"
    result = apply_layer(io.BytesIO(buf.getvalue()), target, mode="flat", durable=False)
    assert result.entries == count
    assert sum(len(os.listdir(target / f"d{i}")) for i in range(10)) == count
    host.check(target=target, refused=False)


def test_device_nodes_are_created_inside_the_root_only(host: Host) -> None:
    if os.geteuid() != 0:
        pytest.skip("needs root")
    layer = LayerBuilder().symlink("dev", str(host.sentinel)).device("dev/sda", "blk", 8, 0)
    target = _apply(host, layer, "flat")
    host.check(target=target, refused=False)
    node = target / str(host.sentinel).lstrip("/") / "sda"
    assert stat.S_ISBLK(node.lstat().st_mode)
