"""docker load of hostile or broken archives: a clear ContentError, and nothing registered."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from declarun.daemon.images import mediatypes
from declarun.daemon.images.archive_load import load_archive
from declarun.daemon.images.archive_save import iter_save_archive, resolve_save_names
from declarun.errors import ContentError
from tests.daemon.images.archive_support import (
    Daemon,
    TarEntry,
    add_busybox,
    digest_of,
    make_daemon,
    tar_bytes,
)
from tests.support.images import OciImage, build_busybox_layout


@pytest.fixture
def target(tmp_path: Path) -> Daemon:
    """A daemon that already holds one image, which a failed load must not disturb."""
    daemon = make_daemon(tmp_path / "target")
    # Shares the base layer with the images below, not the config or manifest.
    add_busybox(daemon, tmp_path / "existing", ("existing:1",), extra_layers=1)
    return daemon


@pytest.fixture
def image(tmp_path: Path) -> OciImage:
    return build_busybox_layout(tmp_path / "layout")


def refuse(daemon: Daemon, body: bytes, match: str) -> None:
    """Load ``body``, expecting ContentError; check the daemon is exactly as before."""
    before = [(i.id, i.tags) for i in daemon.metadata.list_images()]
    index_before = daemon.store.read_index()
    with pytest.raises(ContentError, match=match):
        load_archive(daemon.store, daemon.metadata, io.BytesIO(body))
    assert [(i.id, i.tags) for i in daemon.metadata.list_images()] == before
    assert daemon.store.read_index() == index_before
    assert daemon.store.ingests() == []  # no spool left behind
    assert daemon.metadata.leases() == []


def legacy(
    image: OciImage, layer_data: bytes | None = None, tags: list[str] | None = None
) -> list[TarEntry]:
    layer = gzip.decompress(image.layers[0].data) if layer_data is None else layer_data
    manifest = [{"Config": "c.json", "RepoTags": tags or ["bad:1"], "Layers": ["l/layer.tar"]}]
    return [
        TarEntry("manifest.json", json.dumps(manifest).encode()),
        TarEntry("c.json", image.config.data),
        TarEntry("l/layer.tar", layer),
    ]


def saved(tmp_path: Path) -> bytes:
    daemon = make_daemon(tmp_path / "saver")
    add_busybox(daemon, tmp_path / "saved-layout", ("busybox:test",))
    items = resolve_save_names(daemon.metadata, ["busybox:test"])
    return b"".join(iter_save_archive(daemon.store, items))


@pytest.mark.parametrize(
    ("name", "match"),
    [
        ("../escape", "escapes"),
        ("blobs/../../escape", "escapes"),
        ("/tmp/declarun-archive-escape", "absolute"),
    ],
)
def test_member_names_that_escape(target: Daemon, name: str, match: str) -> None:
    refuse(target, tar_bytes([TarEntry(name, b"x")]), match)
    assert not Path("/tmp/declarun-archive-escape").exists()


@pytest.mark.parametrize(
    ("entry", "match"),
    [
        (TarEntry("c.json", kind=tarfile.SYMTYPE, linkname="/etc/passwd"), "absolute"),
        (TarEntry("c.json", kind=tarfile.SYMTYPE, linkname="../../etc/passwd"), "leaves"),
        (TarEntry("c.json", kind=tarfile.LNKTYPE, linkname="/etc/shadow"), "leaves"),
        (TarEntry("c.json", kind=tarfile.LNKTYPE, linkname="../etc/shadow"), "leaves"),
        (TarEntry("dev/null", kind=tarfile.CHRTYPE), "unsupported type"),
        (TarEntry("fifo", kind=tarfile.FIFOTYPE), "unsupported type"),
    ],
)
def test_links_out_of_the_archive_and_special_files(
    target: Daemon, image: OciImage, entry: TarEntry, match: str
) -> None:
    entries = [e for e in legacy(image) if e.name != "c.json"] + [entry]
    refuse(target, tar_bytes(entries), match)


def test_link_loop(target: Daemon, image: OciImage) -> None:
    entries = [e for e in legacy(image) if e.name != "c.json"]
    entries += [
        TarEntry("c.json", kind=tarfile.SYMTYPE, linkname="d.json"),
        TarEntry("d.json", kind=tarfile.SYMTYPE, linkname="c.json"),
    ]
    refuse(target, tar_bytes(entries), "too many levels")


def test_duplicate_member(target: Daemon, image: OciImage) -> None:
    entries = legacy(image)
    refuse(target, tar_bytes([*entries, TarEntry("c.json", b"{}")]), "more than once")


def test_digest_mismatch(target: Daemon, image: OciImage) -> None:
    name = f"blobs/sha256/{image.config.digest[7:]}"
    refuse(target, tar_bytes([TarEntry(name, b"not the config")]), "mismatch")


def test_layer_that_does_not_match_its_diff_id(target: Daemon, image: OciImage) -> None:
    refuse(target, tar_bytes(legacy(image, layer_data=b"\0" * 1024)), "does not match")


def test_corrupt_gzip_layer(target: Daemon, image: OciImage) -> None:
    broken = image.layers[0].data[:200]
    refuse(target, tar_bytes(legacy(image, layer_data=broken)), "cannot be decompressed")


def test_missing_files_and_blobs(target: Daemon, image: OciImage, tmp_path: Path) -> None:
    refuse(target, tar_bytes(legacy(image)[:2]), "not in the archive")
    # An OCI layout whose manifest is not in the archive.
    index = {"schemaVersion": 2, "manifests": [image.manifest.descriptor()]}
    body = tar_bytes(
        [
            TarEntry("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'),
            TarEntry("index.json", json.dumps(index).encode()),
        ]
    )
    refuse(target, body, "missing from the archive")
    # Our own archive without its config blob.
    archive = saved(tmp_path)
    entries = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            if handle is not None and info.name != f"blobs/sha256/{image.config.digest[7:]}":
                entries.append(TarEntry(info.name, handle.read()))
    refuse(target, tar_bytes(entries), "missing from the archive|not in the archive")


def test_one_bad_image_loads_none(target: Daemon, image: OciImage, tmp_path: Path) -> None:
    good = legacy(image, tags=["good:1"])
    other = build_busybox_layout(tmp_path / "other", extra_layers=1)
    bad = {"Config": "o.json", "RepoTags": ["bad:2"], "Layers": ["l/layer.tar"] * 2}
    manifest = [*json.loads(good[0].data), bad]
    entries = [TarEntry("manifest.json", json.dumps(manifest).encode()), *good[1:]]
    entries.append(TarEntry("o.json", other.config.data))
    refuse(target, tar_bytes(entries), "does not match")


@pytest.mark.parametrize(
    ("tags", "match"),
    [(["UPPER:case"], "invalid image name"), (["x@sha256:" + "a" * 64], "digest")],
)
def test_bad_names(target: Daemon, image: OciImage, tags: list[str], match: str) -> None:
    refuse(target, tar_bytes(legacy(image, tags=tags)), match)


@pytest.mark.parametrize(
    ("body", "match"),
    [
        (b"", "empty"),
        (b'{"not": "a tar"}\n' * 64, "not a valid tar"),
        (os.urandom(4096), "not a valid tar|cannot be read"),
        (b"\x1f\x8b" + os.urandom(1000), "cannot be read"),
        (tar_bytes([TarEntry("README", b"hello")]), "neither manifest.json nor index.json"),
    ],
)
def test_not_an_image_archive(target: Daemon, body: bytes, match: str) -> None:
    refuse(target, body, match)


@pytest.mark.parametrize("cut", [100, 512 + 300, 4096, 50_000, -1024 - 700])
def test_truncated_stream(target: Daemon, tmp_path: Path, cut: int) -> None:
    archive = saved(tmp_path)
    refuse(target, archive[:cut], "truncated|empty")


def test_truncated_gzip_stream(target: Daemon, tmp_path: Path) -> None:
    body = gzip.compress(saved(tmp_path))
    refuse(target, body[: len(body) // 2], "cannot be read|truncated")


def test_absurd_sizes(target: Daemon) -> None:
    refuse(target, tar_bytes([TarEntry("manifest.json", b" " * (9 << 20))]), "too large")
    huge = tarfile.TarInfo("blobs/sha256/" + "a" * 64)
    huge.size = 1 << 60  # more than any disk; the stream ends right after the header
    refuse(target, huge.tobuf(tarfile.PAX_FORMAT), "free in the content store")
    # A PAX header claiming megabytes of metadata is refused before it is read.
    pax = tarfile.TarInfo("././@PaxHeader")
    pax.type = tarfile.XHDTYPE
    pax.size = 2 << 20
    refuse(target, pax.tobuf(tarfile.USTAR_FORMAT) + b"\0" * (2 << 20), "extended header")


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda doc: doc.update(manifests="no"), "no manifests list"),
        (lambda doc: doc["manifests"][0].update(digest="sha256:xyz"), "invalid or unsupported"),
        (lambda doc: doc["manifests"][0].update(mediaType=mediatypes.OCI_LAYER), "media type"),
        (lambda doc: doc["manifests"][0].update(size=1), "descriptor says 1 bytes"),
    ],
)
def test_malformed_index(
    target: Daemon, tmp_path: Path, mutate: Callable[[dict[str, Any]], None], match: str
) -> None:
    entries = []
    with tarfile.open(fileobj=io.BytesIO(saved(tmp_path))) as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            if handle is None or info.name == "manifest.json":
                continue  # without the Docker half, index.json must hold on its own
            data = handle.read()
            if info.name == "index.json":
                doc = json.loads(data)
                mutate(doc)
                data = json.dumps(doc).encode()
            entries.append(TarEntry(info.name, data))
    refuse(target, tar_bytes(entries), match)


def test_digest_of_helper_matches_store(target: Daemon) -> None:
    # Guards the fixtures above: blobs are named by sha256 exactly as the store names them.
    info = target.store.put(b"abc")
    assert info.digest == digest_of(b"abc")
