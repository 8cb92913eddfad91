"""The content store: atomic, verified, resumable writes; OCI layout read by skopeo/umoci."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import (
    BlobExistsError,
    BlobNotFoundError,
    Descriptor,
    IngestLockedError,
    LocalStore,
    Store,
    import_layout,
)
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import ImageLayer, ImageRecord, Metadata
from declarun.errors import ContentError

REPO_ROOT = Path(__file__).resolve().parents[3]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    return LocalStore(tmp_path / "content")


def blob_files(store: LocalStore) -> list[str]:
    return sorted(p.name for p in (store.root / "blobs" / "sha256").iterdir())


# -- layout and basic operations ---------------------------------------------------------


def test_layout_files_created(store: LocalStore) -> None:
    assert json.loads((store.root / "oci-layout").read_text()) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads((store.root / "index.json").read_text())
    assert index["schemaVersion"] == 2 and index["manifests"] == []
    assert isinstance(store, Store)


def test_put_read_info_list_delete(store: LocalStore) -> None:
    data = b"hello blob"
    info = store.put(data)
    assert info.digest == digest_of(data) and info.size == len(data)
    assert store.exists(info.digest)
    assert store.read(info.digest) == data
    with store.open(info.digest) as handle:
        assert handle.read() == data
    assert [b.digest for b in store.list()] == [info.digest]
    assert store.blob_path(info.digest).stat().st_mode & 0o777 == 0o444
    assert store.ingests() == []  # the ingest directory is gone after commit
    store.delete(info.digest)
    assert not store.exists(info.digest)
    with pytest.raises(BlobNotFoundError):
        store.read(info.digest)
    with pytest.raises(BlobNotFoundError):
        store.delete(info.digest)


@pytest.mark.parametrize(
    "bad",
    [
        "sha256:../../../etc/passwd",
        "sha256:" + "A" * 64,
        "sha256:" + "a" * 63,
        "md5:" + "a" * 32,
        "nodigest",
    ],
)
def test_malformed_digests_refused(store: LocalStore, bad: str) -> None:
    with pytest.raises(ContentError):
        store.exists(bad)
    with pytest.raises(ContentError):
        store.writer("r", expected=bad)


def test_digest_mismatch_discards_everything(store: LocalStore) -> None:
    wrong = digest_of(b"something else")
    with pytest.raises(ContentError, match="digest mismatch"):
        store.ingest("ref-1", [b"actual ", b"content"], expected=wrong)
    assert blob_files(store) == []
    assert store.ingests() == []
    assert not store.exists(wrong)


def test_size_mismatch_and_overflow_rejected(store: LocalStore) -> None:
    data = b"0123456789"
    with pytest.raises(ContentError, match="size mismatch"):
        store.ingest("short", [data[:5]], expected=digest_of(data), size=len(data))
    with pytest.raises(ContentError, match="more data"):
        store.ingest("long", [data, b"x"], expected=digest_of(data), size=len(data))
    assert blob_files(store) == [] and store.ingests() == []


def test_commit_without_expected_digest_names_content(store: LocalStore) -> None:
    with store.writer("anon") as writer:
        writer.write(b"abc")
        info = writer.commit()
    assert info.digest == digest_of(b"abc")
    assert store.verify(info.digest).size == 3


def test_verify_and_read_detect_corruption(store: LocalStore) -> None:
    info = store.put(b'{"a": 1}')
    path = store.blob_path(info.digest)
    path.chmod(0o644)
    path.write_bytes(b'{"a": 2}')
    with pytest.raises(ContentError, match="corrupt"):
        store.verify(info.digest)
    with pytest.raises(ContentError, match="corrupt"):
        store.read(info.digest)


# -- interrupted writes and resume ------------------------------------------------------


class Interrupted(Exception):
    pass


def test_interrupted_write_leaves_no_blob_and_resumes(store: LocalStore) -> None:
    data = os.urandom(300_000)
    digest = digest_of(data)
    with pytest.raises(Interrupted), store.writer("layer-x", expected=digest) as writer:
        writer.write(data[:100_000])
        raise Interrupted  # e.g. the registry connection dropped
    assert not store.exists(digest) and blob_files(store) == []
    [status] = store.ingests()
    assert (status.ref, status.offset) == ("layer-x", 100_000)

    with store.writer("layer-x", expected=digest, size=len(data)) as writer:
        assert writer.offset == 100_000
        assert writer.hasher().hexdigest() == hashlib.sha256(data[:100_000]).hexdigest()
        writer.write(data[writer.offset :])
        info = writer.commit()
    assert info.digest == digest
    assert store.verify(digest).size == len(data)
    assert store.ingests() == []


def test_truncate_restarts_from_zero(store: LocalStore) -> None:
    data = b"abcdef"
    with store.writer("t", expected=digest_of(data)) as writer:
        writer.write(b"garbage")
    with store.writer("t", expected=digest_of(data)) as writer:
        assert writer.offset == 7
        writer.truncate()  # the server ignored our Range request
        assert writer.offset == 0
        writer.write(data)
        writer.commit()
    assert store.read(digest_of(data)) == data


_CHILD = """
import os, sys, time
from declarun.daemon.images.content import LocalStore
store = LocalStore(sys.argv[1])
with open(sys.argv[2], "rb") as source:
    data = source.read()
writer = store.writer("killed-ref", expected=sys.argv[3])
writer.write(data[: len(data) // 2])
print(writer.offset, flush=True)
time.sleep(600)
"""


def test_sigkill_mid_write_leaves_no_corrupt_blob(store: LocalStore, tmp_path: Path) -> None:
    data = os.urandom(256 * 1024)
    digest = digest_of(data)
    (tmp_path / "source").write_bytes(data)
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(store.root), str(tmp_path / "source"), digest],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    try:
        assert child.stdout is not None
        written = int(child.stdout.readline())
        # While the child lives it holds the ref: a non-waiting writer is refused.
        with pytest.raises(IngestLockedError):
            store.writer("killed-ref", expected=digest, wait=False)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert written == len(data) // 2
    assert not store.exists(digest) and blob_files(store) == []
    # The kernel dropped the dead writer's flock: we take over and resume.
    with store.writer("killed-ref", expected=digest, wait=False) as writer:
        assert writer.offset == written
        writer.write(data[written:])
        writer.commit()
    assert store.verify(digest).size == len(data)


# -- concurrency ----------------------------------------------------------------------


def test_concurrent_writers_of_one_blob(store: LocalStore) -> None:
    data = os.urandom(512 * 1024)
    digest = digest_of(data)
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    results: list[str] = []
    errors: list[BaseException] = []
    barrier = threading.Barrier(16)

    def work(n: int) -> None:
        try:
            barrier.wait()
            # Half share one ref (they queue on its lock), half use their own refs.
            ref = "shared" if n % 2 else f"own-{n}"
            results.append(store.ingest(ref, chunks, expected=digest, size=len(data)).digest)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results == [digest] * 16
    assert store.verify(digest).size == len(data)
    assert blob_files(store) == [digest.split(":")[1]]
    assert store.ingests() == []


def test_second_writer_learns_blob_exists(store: LocalStore) -> None:
    data = b"layer bytes"
    digest = digest_of(data)
    outcome: list[str] = []
    first = store.writer("same", expected=digest)
    first.write(data)

    def second() -> None:
        try:
            store.writer("same", expected=digest).close()
            outcome.append("opened")
        except BlobExistsError:
            outcome.append("exists")

    thread = threading.Thread(target=second)
    thread.start()
    first.commit()
    thread.join()
    assert outcome == ["exists"]
    with pytest.raises(BlobExistsError):
        store.writer("other-ref", expected=digest)


def test_abort_respects_active_writer(store: LocalStore) -> None:
    writer = store.writer("busy")
    writer.write(b"x")
    assert store.abort("busy", wait=False) is False
    writer.close()
    assert store.abort("busy", wait=False) is True
    assert store.ingests() == []


# -- a tiny real image -----------------------------------------------------------------


def make_layer() -> tuple[bytes, bytes]:
    """A gzip layer tarball and its uncompressed tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        body = b"hello from declarun\n"
        info = tarfile.TarInfo("hello.txt")
        info.size, info.mode, info.mtime = len(body), 0o644, 1_700_000_000
        tar.addfile(info, io.BytesIO(body))
    tar_bytes = raw.getvalue()
    return gzip.compress(tar_bytes, mtime=0), tar_bytes


def store_image(store: LocalStore, db: Metadata, names: list[str]) -> ImageRecord:
    """Write an OCI image (one layer) through the store and register it in the metadata."""
    layer_gz, layer_tar = make_layer()
    diff_id = digest_of(layer_tar)
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "created": "2024-01-01T00:00:00Z",
            "config": {"Cmd": ["/hello"]},
            "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        },
        sort_keys=True,
    ).encode()
    layer = store.ingest("layer", [layer_gz], expected=digest_of(layer_gz), size=len(layer_gz))
    cfg = store.put(config)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": mediatypes.OCI_MANIFEST,
            "config": {"mediaType": mediatypes.OCI_CONFIG, "digest": cfg.digest, "size": cfg.size},
            "layers": [
                {
                    "mediaType": mediatypes.OCI_LAYER_GZIP,
                    "digest": layer.digest,
                    "size": layer.size,
                }
            ],
        },
        sort_keys=True,
    ).encode()
    man = store.put(manifest)
    record = ImageRecord(
        id=cfg.digest,
        manifest=Descriptor(mediatypes.OCI_MANIFEST, man.digest, man.size),
        config=Descriptor(mediatypes.OCI_CONFIG, cfg.digest, cfg.size),
        layers=(
            ImageLayer(
                Descriptor(mediatypes.OCI_LAYER_GZIP, layer.digest, layer.size),
                diff_id=diff_id,
                chain_id=diff_id,
            ),
        ),
        platform=Platform("linux", "amd64"),
        created="2024-01-01T00:00:00Z",
        size=layer.size,
    )
    db.put_image(record, names=names)
    return record


@pytest.fixture
def wired(tmp_path: Path) -> Iterator[tuple[LocalStore, Metadata]]:
    """A store and a metadata DB wired as the daemon wires them: names -> index.json."""
    content = LocalStore(tmp_path / "content")
    db = Metadata(tmp_path / "metadata.db")
    db.subscribe(lambda: content.write_index(db.oci_index()))
    yield content, db
    db.close()


def run(*args: str) -> str:
    proc = subprocess.run(args, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, f"{args} failed: {proc.stderr}"
    return proc.stdout


def test_index_follows_tags(wired: tuple[LocalStore, Metadata]) -> None:
    content, db = wired
    record = store_image(content, db, ["hello:1", "localhost:5000/hello:latest"])
    refs = sorted(d.annotations["org.opencontainers.image.ref.name"] for d in content.read_index())
    assert refs == ["docker.io/library/hello:1", "localhost:5000/hello:latest"]
    assert all(d.digest == record.manifest.digest for d in content.read_index())
    db.untag("hello:1")
    db.untag("localhost:5000/hello")
    # A dangling image stays listed (without a name), so the layout lists every image.
    [entry] = content.read_index()
    assert entry.annotations == {} and entry.digest == record.manifest.digest
    db.delete_image(record.id)
    assert content.read_index() == []


def test_skopeo_and_umoci_read_our_store(
    wired: tuple[LocalStore, Metadata], tmp_path: Path
) -> None:
    content, db = wired
    record = store_image(content, db, ["hello:1", "other/app:v2"])
    name = "docker.io/library/hello:1"
    inspected = json.loads(run("skopeo", "inspect", f"oci:{content.root}:{name}"))
    assert inspected["Digest"] == record.manifest.digest
    assert inspected["Layers"] == [record.layers[0].blob.digest]
    raw = run("skopeo", "inspect", "--raw", f"oci:{content.root}:{name}")
    assert digest_of(raw.encode()) == record.manifest.digest

    listed = run("umoci", "ls", "--layout", str(content.root)).split()
    assert sorted(listed) == ["docker.io/library/hello:1", "docker.io/other/app:v2"]
    # umoci unpacks the image, checking the layer against its diff ID from the config.
    bundle = tmp_path / "bundle"
    run("umoci", "unpack", "--image", f"{content.root}:{name}", str(bundle))
    assert (bundle / "rootfs" / "hello.txt").read_text() == "hello from declarun\n"

    # skopeo copies out of our store, verifying every blob digest on the way.
    out = tmp_path / "copied"
    run("skopeo", "--insecure-policy", "copy", f"oci:{content.root}:{name}", f"dir:{out}")
    assert digest_of((out / "manifest.json").read_bytes()) == record.manifest.digest
    for blob in (record.config, record.layers[0].blob):
        assert digest_of((out / blob.digest.split(":")[1]).read_bytes()) == blob.digest


def test_import_what_skopeo_wrote(wired: tuple[LocalStore, Metadata], tmp_path: Path) -> None:
    content, db = wired
    record = store_image(content, db, ["hello:1"])
    name = "docker.io/library/hello:1"
    # A dir: image (as skopeo writes it) copied by skopeo into a foreign OCI layout.
    dir_image, foreign = tmp_path / "dir-image", tmp_path / "foreign"
    run("skopeo", "--insecure-policy", "copy", f"oci:{content.root}:{name}", f"dir:{dir_image}")
    run("skopeo", "--insecure-policy", "copy", f"dir:{dir_image}", f"oci:{foreign}:imported")

    fresh = LocalStore(tmp_path / "fresh")
    [top] = import_layout(fresh, foreign)
    assert top.annotations["org.opencontainers.image.ref.name"] == "imported"
    assert top.media_type == mediatypes.OCI_MANIFEST
    manifest = json.loads(fresh.read(top.digest))
    needed = [manifest["config"]["digest"], *(x["digest"] for x in manifest["layers"])]
    assert record.layers[0].blob.digest in needed
    for digest in [top.digest, *needed]:
        assert fresh.verify(digest).digest == digest
    assert fresh.ingests() == []


def test_import_rejects_tampered_layout(wired: tuple[LocalStore, Metadata], tmp_path: Path) -> None:
    content, db = wired
    record = store_image(content, db, ["hello:1"])
    foreign = tmp_path / "foreign"
    shutil.copytree(content.root, foreign)
    layer_path = foreign / "blobs" / "sha256" / record.layers[0].blob.digest.split(":")[1]
    layer_path.chmod(0o644)
    data = bytearray(layer_path.read_bytes())
    data[-1] ^= 0xFF
    layer_path.write_bytes(bytes(data))
    fresh = LocalStore(tmp_path / "fresh")
    with pytest.raises(ContentError, match="mismatch"):
        import_layout(fresh, foreign)
    assert not fresh.exists(record.layers[0].blob.digest)
    assert fresh.ingests() == []


def test_import_rejects_non_layout(tmp_path: Path, store: LocalStore) -> None:
    (tmp_path / "junk").mkdir()
    with pytest.raises(ContentError, match="not an OCI image layout"):
        import_layout(store, tmp_path / "junk")
