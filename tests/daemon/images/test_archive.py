"""docker save / docker load archives: our own round trips and the formats we must read."""

from __future__ import annotations

import gzip
import io
import json
import lzma
import tarfile
from pathlib import Path

import pytest

from declarun.daemon.images import mediatypes
from declarun.daemon.images.archive_load import load_archive, stream_body, stream_messages
from declarun.daemon.images.archive_save import (
    iter_save_archive,
    resolve_save_names,
    write_save_archive,
)
from declarun.daemon.images.content import ANNOTATION_IMAGE_NAME, ANNOTATION_REF_NAME
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import ImageNotFoundError
from declarun.errors import ContentError
from tests.daemon.images.archive_support import (
    Daemon,
    TarEntry,
    add_busybox,
    digest_of,
    legacy_entries,
    make_daemon,
    tar_bytes,
)
from tests.support.images import build_busybox_layout, build_multiplatform_layout


@pytest.fixture
def source(tmp_path: Path) -> Daemon:
    return make_daemon(tmp_path / "source")


@pytest.fixture
def target(tmp_path: Path) -> Daemon:
    return make_daemon(tmp_path / "target")


def save(daemon: Daemon, *names: str) -> bytes:
    return b"".join(iter_save_archive(daemon.store, resolve_save_names(daemon.metadata, names)))


def members(archive: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        return {m.name: m for m in tar.getmembers()}


def member_json(archive: bytes, name: str) -> object:
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return json.loads(handle.read())


def load(daemon: Daemon, archive: bytes) -> list[str]:
    return list(load_archive(daemon.store, daemon.metadata, io.BytesIO(archive)).messages)


# -- save ----------------------------------------------------------------------------------


def test_save_writes_docker_and_oci_formats(source: Daemon, tmp_path: Path) -> None:
    image = add_busybox(source, tmp_path / "layout", ("busybox:test",))
    archive = save(source, "busybox:test")
    names = list(members(archive))
    assert names[:4] == ["oci-layout", "index.json", "manifest.json", "repositories"]
    blob_names = {f"blobs/sha256/{d.digest[7:]}" for d in (image.manifest, image.config)}
    blob_names |= {f"blobs/sha256/{layer.digest[7:]}" for layer in image.layers}
    assert set(names[4:]) == {"blobs", "blobs/sha256"} | blob_names
    for info in members(archive).values():
        assert (info.mtime, info.uid, info.gid, info.uname, info.gname) == (0, 0, 0, "", "")

    assert member_json(archive, "manifest.json") == [
        {
            "Config": f"blobs/sha256/{image.config.digest[7:]}",
            "RepoTags": ["busybox:test"],
            "Layers": [f"blobs/sha256/{layer.digest[7:]}" for layer in image.layers],
        }
    ]
    index = member_json(archive, "index.json")
    assert isinstance(index, dict)
    (entry,) = index["manifests"]
    assert entry["digest"] == image.manifest.digest and entry["size"] == image.manifest.size
    assert entry["annotations"] == {
        ANNOTATION_IMAGE_NAME: "docker.io/library/busybox:test",
        ANNOTATION_REF_NAME: "test",
    }
    assert entry["platform"] == {"os": "linux", "architecture": "amd64"}
    assert member_json(archive, "repositories") == {"busybox": {"test": image.diff_ids[-1][7:]}}
    # Blobs go in exactly as stored.
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        handle = tar.extractfile(f"blobs/sha256/{image.layers[0].digest[7:]}")
        assert handle is not None and handle.read() == image.layers[0].data
    assert save(source, "busybox:test") == archive  # deterministic


def test_save_by_id_has_no_tags(source: Daemon, tmp_path: Path) -> None:
    image = add_busybox(source, tmp_path / "layout", ("busybox:test",))
    archive = save(source, image.config.digest[7:19])  # a short ID, as users type it
    assert member_json(archive, "manifest.json") == [
        {
            "Config": f"blobs/sha256/{image.config.digest[7:]}",
            "RepoTags": None,
            "Layers": [f"blobs/sha256/{layer.digest[7:]}" for layer in image.layers],
        }
    ]
    assert "repositories" not in members(archive)
    index = member_json(archive, "index.json")
    assert isinstance(index, dict) and "annotations" not in index["manifests"][0]


def test_save_repository_name_takes_every_tag(source: Daemon, tmp_path: Path) -> None:
    first = add_busybox(source, tmp_path / "a", ("app:1", "app:2", "other:x"))
    second = add_busybox(source, tmp_path / "b", ("app:3",), extra_layers=1)
    items = resolve_save_names(source.metadata, ["app"])
    tags = {item.record.id: sorted(ref.familiar() for ref in item.tags) for item in items}
    assert tags == {first.config.digest: ["app:1", "app:2"], second.config.digest: ["app:3"]}
    archive = save(source, "app", "other:x")
    manifest = member_json(archive, "manifest.json")
    assert isinstance(manifest, list) and len(manifest) == 2
    by_config = {item["Config"]: sorted(item["RepoTags"]) for item in manifest}
    assert by_config[f"blobs/sha256/{first.config.digest[7:]}"] == ["app:1", "app:2", "other:x"]
    # The shared base layer is written once.
    names = list(members(archive))
    assert names.count(f"blobs/sha256/{first.layers[0].digest[7:]}") == 1


def test_save_unknown_name_fails_before_any_byte(source: Daemon) -> None:
    with pytest.raises(ImageNotFoundError):
        resolve_save_names(source.metadata, ["nothing:here"])


def test_save_missing_blob_fails_before_any_byte(source: Daemon, tmp_path: Path) -> None:
    image = add_busybox(source, tmp_path / "layout", ("busybox:test",))
    source.store.delete(image.layers[0].digest)
    with pytest.raises(ContentError):
        iter_save_archive(source.store, resolve_save_names(source.metadata, ["busybox:test"]))


def test_save_detects_blob_corrupted_on_disk(source: Daemon, tmp_path: Path) -> None:
    image = add_busybox(source, tmp_path / "layout", ("busybox:test",))
    path = source.store.blob_path(image.layers[0].digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[100] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(ContentError, match="corrupt"):
        write_save_archive(
            source.store,
            resolve_save_names(source.metadata, ["busybox:test"]),
            io.BytesIO(),
        )


# -- round trips ---------------------------------------------------------------------------


def test_round_trip_keeps_ids_digests_and_names(
    source: Daemon, target: Daemon, tmp_path: Path
) -> None:
    image = add_busybox(source, tmp_path / "layout", ("busybox:test", "busybox:latest"))
    archive = save(source, "busybox")
    assert sorted(load(target, archive)) == [
        "Loaded image: busybox:latest",
        "Loaded image: busybox:test",
    ]
    loaded = target.metadata.resolve("busybox:test")
    assert loaded.id == image.config.digest
    assert loaded.record.manifest.digest == image.manifest.digest
    assert [layer.blob.digest for layer in loaded.record.layers] == [
        layer.digest for layer in image.layers
    ]
    assert loaded.record.platform == Platform("linux", "amd64")
    for digest in loaded.record.blob_digests():
        target.store.verify(digest)
    assert target.store.ingests() == []
    # index.json of the target store now names the image (the daemon's wiring).
    assert {d.digest for d in target.store.read_index()} == {image.manifest.digest}


def test_round_trip_of_untagged_image_and_rename_message(
    source: Daemon, target: Daemon, tmp_path: Path
) -> None:
    image = add_busybox(source, tmp_path / "a", ("busybox:test",))
    assert load(target, save(source, image.config.digest)) == [
        f"Loaded image ID: {image.config.digest}"
    ]
    assert target.metadata.get_image(image.config.digest).tags == ()
    # A tag that pointed at another image moves, and Docker says so.
    other = add_busybox(target, tmp_path / "b", ("busybox:test",), extra_layers=1)
    assert load(target, save(source, "busybox:test")) == [
        f"The image busybox:test already exists, renaming the old one with ID "
        f"{other.config.digest} to empty string",
        "Loaded image: busybox:test",
    ]
    assert target.metadata.resolve("busybox:test").id == image.config.digest


def test_round_trip_many_images_and_compressed_archives(source: Daemon, tmp_path: Path) -> None:
    add_busybox(source, tmp_path / "a", ("one:1", "one:2"))
    add_busybox(source, tmp_path / "b", ("localhost:5000/two/three:x",), extra_layers=2)
    archive = save(source, "one", "localhost:5000/two/three:x")
    for number, body in enumerate(
        [archive, gzip.compress(archive), lzma.compress(archive, format=lzma.FORMAT_XZ)]
    ):
        target = make_daemon(tmp_path / f"target-{number}")
        assert sorted(load(target, body)) == [
            "Loaded image: localhost:5000/two/three:x",
            "Loaded image: one:1",
            "Loaded image: one:2",
        ]
        assert len(target.metadata.list_images()) == 2


def test_load_is_idempotent(source: Daemon, target: Daemon, tmp_path: Path) -> None:
    add_busybox(source, tmp_path / "a", ("busybox:test",))
    archive = save(source, "busybox:test")
    assert load(target, archive) == load(target, archive) == ["Loaded image: busybox:test"]
    assert len(target.metadata.list_images()) == 1


# -- formats written by others ------------------------------------------------------------


def test_load_legacy_docker_archive_with_uncompressed_layers_and_links(
    target: Daemon, tmp_path: Path
) -> None:
    image = build_busybox_layout(tmp_path / "layout", extra_layers=1)
    archive = tar_bytes(legacy_entries(image, ["legacy:v1"]))
    assert load(target, archive) == ["Loaded image: legacy:v1"]
    loaded = target.metadata.resolve("legacy:v1")
    assert loaded.id == image.config.digest
    # The layer blobs are the tars themselves, so their digests are the diff IDs.
    assert [layer.blob.digest for layer in loaded.record.layers] == list(image.diff_ids)
    assert {layer.blob.media_type for layer in loaded.record.layers} == {mediatypes.OCI_LAYER}
    manifest = json.loads(target.store.read(loaded.record.manifest.digest))
    assert manifest["mediaType"] == mediatypes.OCI_MANIFEST
    assert manifest["config"]["digest"] == image.config.digest
    assert loaded.record.manifest.media_type == mediatypes.OCI_MANIFEST


def test_load_legacy_archive_with_gzip_layers_checks_diff_ids(
    target: Daemon, tmp_path: Path
) -> None:
    image = build_busybox_layout(tmp_path / "layout")
    layer_hex = image.layers[0].digest[7:]
    manifest = [
        {
            "Config": "config.json",
            "RepoTags": ["gz:1"],
            "Layers": [f"{layer_hex}.tar.gz"],
        }
    ]
    entries = [
        TarEntry("manifest.json", json.dumps(manifest).encode()),
        TarEntry("config.json", image.config.data),
        TarEntry(f"{layer_hex}.tar.gz", image.layers[0].data),
    ]
    assert load(target, tar_bytes(entries)) == ["Loaded image: gz:1"]
    (layer,) = target.metadata.resolve("gz:1").record.layers
    assert layer.blob.media_type == mediatypes.OCI_LAYER_GZIP
    assert layer.diff_id == image.diff_ids[0]


def test_load_oci_layout_with_bare_tag_and_platform_index(target: Daemon, tmp_path: Path) -> None:
    index = build_multiplatform_layout(tmp_path / "layout", tag="v2")
    entries = [TarEntry("oci-layout", (index.layout / "oci-layout").read_bytes())]
    entries.append(TarEntry("index.json", (index.layout / "index.json").read_bytes()))
    for blob in sorted((index.layout / "blobs" / "sha256").iterdir()):
        entries.append(TarEntry(f"blobs/sha256/{blob.name}", blob.read_bytes()))
    archive = tar_bytes(entries)
    amd64, arm64 = index.images
    # The ref.name "v2" names no repository: the image is loaded without a name.
    assert load(target, archive) == [f"Loaded image ID: {amd64.config.digest}"]
    record = target.metadata.get_image(amd64.config.digest).record
    assert record.index is not None and record.index.digest == index.index.digest
    assert record.manifest.digest == amd64.manifest.digest

    other = make_daemon(tmp_path / "arm")
    result = load_archive(
        other.store, other.metadata, io.BytesIO(archive), platform=Platform("linux", "arm64")
    )
    assert [i.record.id for i in result.images] == [arm64.config.digest]
    bad = make_daemon(tmp_path / "s390x")
    with pytest.raises(ContentError, match="s390x"):
        load_archive(
            bad.store, bad.metadata, io.BytesIO(archive), platform=Platform("linux", "s390x")
        )


def test_index_entry_without_layers_falls_back_to_manifest_json(
    source: Daemon, target: Daemon, tmp_path: Path
) -> None:
    """moby 25.0.0 wrote OCI manifests without layers; manifest.json still had them."""
    image = add_busybox(source, tmp_path / "a", ("busybox:test",))
    archive = save(source, "busybox:test")
    broken = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": image.config.descriptor(),
            "layers": [],
        }
    ).encode()
    entries = []
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        for info in tar.getmembers():
            handle = tar.extractfile(info)
            data = handle.read() if handle is not None else b""
            if info.name == "index.json":
                doc = json.loads(data)
                doc["manifests"][0].update(digest=digest_of(broken), size=len(broken))
                data = json.dumps(doc).encode()
            kind = tarfile.DIRTYPE if info.isdir() else tarfile.REGTYPE
            entries.append(TarEntry(info.name, data, kind))
    entries.append(TarEntry(f"blobs/sha256/{digest_of(broken)[7:]}", broken))
    assert load(target, tar_bytes(entries)) == ["Loaded image: busybox:test"]
    assert target.metadata.resolve("busybox:test").id == image.config.digest


def test_stream_messages_are_dockers_json_lines() -> None:
    lines = ["Loaded image: busybox:test", "Loaded image ID: sha256:" + "a" * 64]
    assert stream_messages(lines)[0] == {"stream": "Loaded image: busybox:test\n"}
    body = stream_body(lines).decode().splitlines()
    assert json.loads(body[1]) == {"stream": f"Loaded image ID: sha256:{'a' * 64}\n"}
