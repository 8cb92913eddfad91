"""More hostile layers and archives, generated here: each refused with a clear error or
extracted inside its root, and the "host" beside it unchanged.

Kinds already covered elsewhere and not repeated here (``tests/daemon/images/``):
names climbing out, hardlinks out or through planted symlinks, ``.wh.`` of ``..`` and other
nameless whiteouts, whiteouts and opaque whiteouts through a planted symlink, a hardlink to
an escaping symlink, a lower layer's symlink written through, device nodes through a
symlink, 20,000 entries (``test_unpack_hostile.py``); docker-load members escaping, links
out of the archive, FIFOs/devices in the archive, duplicate members, a lying ``diff_id``,
an oversized metadata file (``test_archive_hostile.py``).

The stated limit for inflated size: a layer entry larger than the free space on the data
root's filesystem is refused before any of it is written (``unpack._check_room``); runs of
zeros are written as holes, so a gzip bomb of zeros that does fit takes no disk.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import stat
import tarfile
import time
import zlib
from pathlib import Path

import pytest

from declarun.daemon.images.archive_load import load_archive
from declarun.daemon.images.unpack import apply_layer
from declarun.errors import ContentError, UnpackError
from tests.daemon.images.archive_support import Daemon, TarEntry, digest_of, make_daemon, tar_bytes
from tests.daemon.images.layertar import LayerBuilder, tree_manifest
from tests.daemon.images.test_unpack_hostile import Host, host
from tests.support.images import build_busybox_layout

__all__ = ["host"]  # the fixture, shared with test_unpack_hostile

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (device nodes, owners)")


def _apply(host: Host, layer: bytes, *, base: Path | None = None, name: str = "snap") -> Path:
    target = host.work / name
    apply_layer(io.BytesIO(layer), target, mode="flat", base=base, durable=False)
    return target


# ---- special files and modes, kept as Docker keeps them --------------------------------


@root_only
def test_fifos_devices_and_setuid_files_are_kept_inside(host: Host) -> None:
    layer = (
        LayerBuilder()
        .fifo("pipe")
        .device("dev/sda", "blk", 8, 0)
        .device("dev/mem", "chr", 1, 1)
        .file("bin/su", b"#!/bin/sh\n", mode=0o4755)
        .file("bin/wall", b"#!/bin/sh\n", mode=0o2755, gid=5)
        .dir("shared", mode=0o3777)
        .build()
    )
    target = _apply(host, layer)
    host.check(target=target, refused=False)
    assert stat.S_ISFIFO((target / "pipe").lstat().st_mode)
    assert stat.S_ISBLK((target / "dev/sda").lstat().st_mode)
    assert stat.S_ISCHR((target / "dev/mem").lstat().st_mode)
    assert stat.S_IMODE((target / "bin/su").stat().st_mode) == 0o4755
    assert stat.S_IMODE((target / "bin/wall").stat().st_mode) == 0o2755
    assert stat.S_IMODE((target / "shared").stat().st_mode) == 0o3777


# ---- names ------------------------------------------------------------------------------


def test_names_with_newlines_and_non_utf8_bytes_are_extracted_as_given(host: Host) -> None:
    raw_name = "caf\udce9"  # b"caf\xe9": Latin-1, not UTF-8
    layer = (
        LayerBuilder()
        .file("two\nlines", b"1")
        .file(raw_name, b"2", pax={"path": raw_name})
        .file("tab\there", b"3")
        .build()
    )
    target = _apply(host, layer)
    host.check(target=target, refused=False)
    names = sorted(os.listdir(os.fsencode(target)))
    assert names == sorted([b"two\nlines", b"caf\xe9", b"tab\there"])


def test_a_4096_byte_path_is_refused_or_kept_inside(host: Host) -> None:
    deep = "/".join(["d" * 200] * 20) + "/" + "f" * 95  # 4,095 bytes: at PATH_MAX
    longer = "/".join(["e" * 250] * 20)  # 5,019 bytes: beyond it
    layer = LayerBuilder().file(deep, b"deep").file(longer + "/x", b"x").build()
    target = host.work / "snap"
    try:
        apply_layer(io.BytesIO(layer), target, mode="flat", durable=False)
    except UnpackError as exc:
        assert "Traceback" not in str(exc)
        host.check(target=target, refused=True)
    else:
        host.check(target=target, refused=False)
        fd = os.open(target, os.O_RDONLY)
        try:
            for part in deep.split("/")[:-1]:
                fd, old = os.open(part, os.O_RDONLY, dir_fd=fd), fd
                os.close(old)
            with open(os.open(deep.split("/")[-1], os.O_RDONLY, dir_fd=fd), "rb") as f:
                assert f.read() == b"deep"
        finally:
            os.close(fd)


def test_a_component_longer_than_255_bytes_is_refused(host: Host) -> None:
    layer = LayerBuilder().file("x" * 300, b"1").build()
    with pytest.raises(UnpackError, match=r"x{20}"):
        _apply(host, layer)
    host.check(target=host.work / "snap", refused=True)


# ---- volume -----------------------------------------------------------------------------


@pytest.mark.slow
def test_a_layer_of_100000_entries(host: Host) -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        for i in range(100_000):
            tar.addfile(tarfile.TarInfo(f"d{i % 100}/f{i}"), io.BytesIO(b""))
    started = time.monotonic()
    target = host.work / "snap"
    result = apply_layer(io.BytesIO(buf.getvalue()), target, mode="overlay", durable=False)
    print(f"100,000 entries applied in {time.monotonic() - started:.1f} s")
    assert result.entries == 100_000
    host.check(target=target, refused=False)


def _sparse_member(name: str, real_size: int) -> bytes:
    """A PAX 1.0 GNU sparse member: 512 bytes of data at offset 0, ``real_size`` in all."""
    data = b"sparse!".ljust(512, b"\0")
    sparse_map = b"1\n0\n512\n".ljust(512, b"\0")
    info = tarfile.TarInfo(f"GNUSparseFile.0/{name}")
    info.size = len(sparse_map) + len(data)
    info.pax_headers = {
        "GNU.sparse.major": "1",
        "GNU.sparse.minor": "0",
        "GNU.sparse.name": name,
        "GNU.sparse.realsize": str(real_size),
    }
    return info.tobuf(tarfile.PAX_FORMAT) + sparse_map + data + b"\0" * 1024


def test_a_sparse_terabyte_file_is_refused_before_it_is_written(host: Host) -> None:
    layer = _sparse_member("huge", 1 << 40)
    started = time.monotonic()
    with pytest.raises(UnpackError, match=r"more than the .* bytes free"):
        _apply(host, layer)
    assert time.monotonic() - started < 30
    host.check(target=host.work / "snap", refused=True)


def _gzip_member(data: bytes) -> bytes:
    compressor = zlib.compressobj(9, zlib.DEFLATED, 31)
    return compressor.compress(data) + compressor.flush()


def gzip_bomb(inflated: int, declared: int | None = None) -> bytes:
    """A gzip layer of one file of ``inflated`` zero bytes (``declared`` in its header),
    a few KB compressed: one small gzip member repeated (gzip streams concatenate)."""
    info = tarfile.TarInfo("bomb")
    info.size = inflated if declared is None else declared
    zeros = _gzip_member(b"\0" * (1 << 20))
    return (
        _gzip_member(info.tobuf(tarfile.PAX_FORMAT))
        + zeros * (inflated >> 20)
        + _gzip_member(b"\0" * 1024)
    )


def test_a_gzip_bomb_larger_than_the_disk_is_refused_at_once(host: Host) -> None:
    vfs = os.statvfs(host.work)
    declared = vfs.f_bavail * vfs.f_frsize * 4 + (1 << 40)
    layer = gzip_bomb(8 << 20, declared=declared)
    assert len(layer) < 100_000
    with pytest.raises(UnpackError, match=r"more than the .* bytes free"):
        _apply(host, layer)
    host.check(target=host.work / "snap", refused=True)


@pytest.mark.slow
def test_a_gzip_bomb_that_fits_takes_no_disk(host: Host) -> None:
    inflated = 256 << 20
    layer = gzip_bomb(inflated)
    assert len(layer) < 500_000  # 256 MiB inflated from ~260 KB
    target = _apply(host, layer)
    written = (target / "bomb").stat()
    assert written.st_size == inflated
    assert written.st_blocks * 512 < 1 << 20, "zeros are written as holes"
    host.check(target=target, refused=False)


# ---- across layers and duplicates ---------------------------------------------------------


def test_a_symlink_chain_that_escapes_only_across_layers_stays_inside(host: Host) -> None:
    # Layer 1: a -> b (dangling). Layer 2: b -> c. Layer 3: c -> the host's sentinel.
    # Layer 4 writes through a/: only the whole chain would reach the host.
    one = _apply(host, LayerBuilder().symlink("a", "b").build(), name="l1")
    two = _apply(host, LayerBuilder().symlink("b", "c").build(), base=one, name="l2")
    three = _apply(
        host, LayerBuilder().symlink("c", str(host.sentinel)).build(), base=two, name="l3"
    )
    four = _apply(
        host,
        LayerBuilder().file("a/important", b"pwned").file("a/new", b"pwned").build(),
        base=three,
        name="l4",
    )
    assert tree_manifest(host.tmp / "host") == host.before
    inside = four / str(host.sentinel).lstrip("/")
    assert (inside / "important").read_bytes() == b"pwned"


def test_duplicate_entries_in_a_layer_the_last_one_wins(host: Host) -> None:
    layer = (
        LayerBuilder()
        .file("f", b"first")
        .file("f", b"second")
        .dir("d")
        .file("d/x", b"x")
        .symlink("d", str(host.sentinel))  # replaces the directory, not what is behind it
        .file("d2", b"file")
        .dir("d2")
        .build()
    )
    target = _apply(host, layer)
    host.check(target=target, refused=False)
    assert (target / "f").read_bytes() == b"second"
    assert (target / "d").is_symlink()
    assert (target / "d2").is_dir()


# ---- docker load archives -------------------------------------------------------------------


@pytest.fixture
def daemon(tmp_path: Path) -> Daemon:
    return make_daemon(tmp_path / "daemon")


def _refuse(daemon: Daemon, body: bytes, match: str) -> None:
    with pytest.raises(ContentError, match=match):
        load_archive(daemon.store, daemon.metadata, io.BytesIO(body))
    assert daemon.metadata.list_images() == []
    assert daemon.store.ingests() == []


@pytest.mark.parametrize(
    ("config", "layer", "match"),
    [
        ("../../../etc/passwd", "l.tar", "invalid path '../../../etc/passwd'"),
        ("/etc/passwd", "l.tar", "invalid path '/etc/passwd'"),
        ("c.json", "../../../../etc/shadow", "invalid path '../../../../etc/shadow'"),
        ("c.json", "/etc/shadow", "invalid path '/etc/shadow'"),
    ],
)
def test_a_manifest_pointing_outside_the_archive_is_refused(
    daemon: Daemon, tmp_path: Path, config: str, layer: str, match: str
) -> None:
    image = build_busybox_layout(tmp_path / "layout")
    manifest = [{"Config": config, "RepoTags": ["evil:1"], "Layers": [layer]}]
    body = tar_bytes(
        [
            TarEntry("manifest.json", json.dumps(manifest).encode()),
            TarEntry("c.json", image.config.data),
            TarEntry("l.tar", gzip.decompress(image.layers[0].data)),
        ]
    )
    _refuse(daemon, body, match)


def test_a_config_of_100_mb_is_refused(daemon: Daemon, tmp_path: Path) -> None:
    image = build_busybox_layout(tmp_path / "layout")
    config = json.loads(image.config.data)
    config["config"] = {"Env": ["PAD=" + "x" * (100 << 20)]}
    config_data = json.dumps(config).encode()
    manifest = [{"Config": "c.json", "RepoTags": ["big:1"], "Layers": ["l.tar"]}]
    body = tar_bytes(
        [
            TarEntry("manifest.json", json.dumps(manifest).encode()),
            TarEntry("c.json", config_data),
            TarEntry("l.tar", gzip.decompress(image.layers[0].data)),
        ]
    )
    _refuse(daemon, body, "larger than 8388608 bytes")


def test_a_manifest_of_10000_layers_is_answered_in_bounded_time(
    daemon: Daemon, tmp_path: Path
) -> None:
    layer = LayerBuilder().file("x", b"1").build()
    diff_id = digest_of(layer)
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_id] * 10_000},
        "config": {},
    }
    manifest = [{"Config": "c.json", "RepoTags": ["deep:1"], "Layers": ["l.tar"] * 10_000}]
    body = tar_bytes(
        [
            TarEntry("manifest.json", json.dumps(manifest).encode()),
            TarEntry("c.json", json.dumps(config).encode()),
            TarEntry("l.tar", layer),
        ]
    )
    started = time.monotonic()
    try:
        load_archive(daemon.store, daemon.metadata, io.BytesIO(body))
    except ContentError as exc:
        print(f"refused: {exc}")
        assert daemon.metadata.list_images() == []
    else:
        # Loaded as content (as dockerd's containerd store would); running it is where the
        # depth limit applies (overlay: "too many layers to mount").
        assert [i.tags for i in daemon.metadata.list_images()] == [("docker.io/library/deep:1",)]
    assert time.monotonic() - started < 120
