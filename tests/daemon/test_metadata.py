"""The metadata database: schema, transactions, names, Docker's lookup rules, crashes."""

from __future__ import annotations

import hashlib
import json
import signal
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import Descriptor
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import (
    SCHEMA_VERSION,
    AmbiguousImageError,
    Container,
    ImageInUseError,
    ImageLayer,
    ImageNotFoundError,
    ImageRecord,
    Layer,
    LeaseNotFoundError,
    LeaseResource,
    Metadata,
    MetadataError,
    NetworkRow,
    NetworkStateRow,
    VolumeRow,
    canonical_name,
)
from declarun.daemon.metadata.schema import MIGRATIONS
from declarun.errors import ImageReferenceError

REPO_ROOT = Path(__file__).resolve().parents[2]


def sha(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def record(seed: str, *, image_id: str | None = None, layers: int = 2) -> ImageRecord:
    """An image record whose digests derive from ``seed`` (no blobs needed here)."""
    chain: list[ImageLayer] = []
    parent = ""
    for n in range(layers):
        diff = sha(f"{seed}-diff-{n}")
        chain_id = diff if not parent else sha(f"{parent} {diff}")
        chain.append(
            ImageLayer(
                Descriptor(mediatypes.OCI_LAYER_GZIP, sha(f"{seed}-blob-{n}"), 100 + n),
                diff_id=diff,
                chain_id=chain_id,
            )
        )
        parent = chain_id
    return ImageRecord(
        id=image_id or sha(f"{seed}-config"),
        manifest=Descriptor(mediatypes.OCI_MANIFEST, sha(f"{seed}-manifest"), 500),
        config=Descriptor(mediatypes.OCI_CONFIG, image_id or sha(f"{seed}-config"), 300),
        layers=tuple(chain),
        platform=Platform("linux", "amd64"),
        created="2024-01-01T00:00:00Z",
        size=1234,
    )


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Metadata]:
    meta = Metadata(tmp_path / "metadata.db")
    yield meta
    meta.close()


def test_wal_foreign_keys_and_schema_version(db: Metadata, tmp_path: Path) -> None:
    assert db.journal_mode() == "wal"
    assert db.schema_version() == SCHEMA_VERSION == 3
    raw = sqlite3.connect(tmp_path / "metadata.db")
    try:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"  # persistent
        tables = {r[0] for r in raw.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    finally:
        raw.close()
    assert {"images", "image_names", "image_blobs", "layers", "leases", "containers"} <= tables
    assert {"volumes", "container_volumes", "networks", "network_states"} <= tables
    assert "network_endpoints" in tables
    # Foreign keys are enforced: a name cannot point at a missing image.
    with pytest.raises(ImageNotFoundError):
        db.tag("busybox", sha("nothing"))


def test_reopen_is_idempotent_and_newer_schema_refused(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    first = Metadata(path)
    first.put_image(record("a"), names=["a:1"])
    first.close()
    second = Metadata(path)
    assert second.resolve("a:1").id == record("a").id
    second.close()
    raw = sqlite3.connect(path)
    raw.execute("PRAGMA user_version=99")
    raw.commit()
    raw.close()
    with pytest.raises(MetadataError, match="newer"):
        Metadata(path)


def test_put_and_get_round_trip(db: Metadata) -> None:
    rec = record("a")
    image = db.put_image(rec, names=["busybox", "busybox@" + rec.manifest.digest])
    assert image.record == rec
    assert image.tags == ("docker.io/library/busybox:latest",)
    assert image.digests == (f"docker.io/library/busybox@{rec.manifest.digest}",)
    assert db.get_image(rec.id) == image
    assert [i.id for i in db.images_by_manifest(rec.manifest.digest)] == [rec.id]
    # Storing the same ID again keeps names and the first added time.
    again = db.put_image(rec, now=image.added_at + 100)
    assert again.tags == image.tags and again.added_at == image.added_at


def test_list_images_newest_first(db: Metadata) -> None:
    db.put_image(record("old"), now=1.0)
    db.put_image(record("new"), now=2.0)
    assert [i.id for i in db.list_images()] == [record("new").id, record("old").id]


def test_tag_moves_and_untag(db: Metadata) -> None:
    a, b = record("a"), record("b")
    db.put_image(a, names=["app:1"])
    db.put_image(b)
    assert db.tag("app:1", b.id) == a.id  # the tag moves; a becomes dangling
    assert db.tag("app:1", b.id) == b.id  # idempotent
    assert db.get_image(a.id).tags == ()
    assert db.untag("docker.io/library/app:1") == b.id
    with pytest.raises(ImageNotFoundError):
        db.untag("app:1")
    with pytest.raises(ImageReferenceError):
        db.tag("Not/Valid", b.id)


def test_failed_write_rolls_back_entirely(db: Metadata) -> None:
    rec = record("a")
    with pytest.raises(ImageReferenceError):
        db.put_image(rec, names=["ok:1", "BAD NAME"])
    assert db.list_images() == []
    with pytest.raises(ImageNotFoundError):
        db.resolve("ok:1")


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("busybox", "docker.io/library/busybox:latest"),
        ("library/busybox:1.36", "docker.io/library/busybox:1.36"),
        ("localhost:5000/x", "localhost:5000/x:latest"),
        ("index.docker.io/user/app:v1", "docker.io/user/app:v1"),
        ("busybox:1@sha256:" + "a" * 64, "docker.io/library/busybox@sha256:" + "a" * 64),
    ],
)
def test_canonical_names(name: str, expected: str) -> None:
    assert canonical_name(name) == expected


def test_resolve_like_docker(db: Metadata) -> None:
    rec = record("a")
    db.put_image(rec, names=["127.0.0.1:5000/busybox:test", "busybox"])
    hex_id = rec.id.split(":")[1]
    for query in (
        rec.id,
        hex_id,
        hex_id[:12],
        hex_id[:3],
        "sha256:" + hex_id[:10],
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox:latest",
        "127.0.0.1:5000/busybox:test",
    ):
        assert db.resolve(query).id == rec.id, query
    for missing in ("busybox:other", "sha256:" + "0" * 64, "0" * 64, "nothing", "Bad Name"):
        with pytest.raises(ImageNotFoundError):
            db.resolve(missing)


def test_resolve_name_wins_over_id_prefix(db: Metadata) -> None:
    named, other = record("named"), record("other")
    db.put_image(named)
    prefix = other.id.split(":")[1][:6]
    db.put_image(other)
    db.tag(prefix, named.id)  # a repository named like the other image's ID prefix
    assert db.resolve(prefix).id == named.id


def test_ambiguous_prefix(db: Metadata) -> None:
    one = record("one", image_id="sha256:abcd" + "1" * 60)
    two = record("two", image_id="sha256:abcd" + "2" * 60)
    db.put_image(one)
    db.put_image(two)
    with pytest.raises(AmbiguousImageError):
        db.resolve("abcd")
    assert db.resolve("abcd1").id == one.id


def test_delete_image_and_container_references(db: Metadata) -> None:
    rec = record("a")
    db.put_image(rec, names=["app:1", "app:2"])
    db.put_container(
        Container("c1", "web", rec.id, "c1-rw", created=1.0, record={"Config": {"Cmd": ["sh"]}})
    )
    refs = db.image_references(rec.id)
    assert refs.tags == ("docker.io/library/app:1", "docker.io/library/app:2")
    assert refs.containers == ("c1",)
    with pytest.raises(ImageInUseError):
        db.delete_image(rec.id)
    assert db.get_container("c1") == Container(
        "c1", "web", rec.id, "c1-rw", 1.0, {"Config": {"Cmd": ["sh"]}}
    )
    with pytest.raises(MetadataError):  # names are unique
        db.put_container(Container("c2", "web", rec.id, None, created=2.0))
    assert db.delete_container("c1") is True
    deleted = db.delete_image(rec.id)
    assert deleted.id == rec.id
    with pytest.raises(ImageNotFoundError):
        db.resolve("app:1")
    assert db.image_references(rec.id).tags == ()


def test_layers(db: Metadata) -> None:
    db.put_layer(Layer("sha256:c1", "sha256:d1", None, 10, 1.0))
    db.put_layer(Layer("sha256:c2", "sha256:d2", "sha256:c1", 20, 2.0))
    assert db.get_layer("sha256:c2") == Layer("sha256:c2", "sha256:d2", "sha256:c1", 20, 2.0)
    assert [layer.chain_id for layer in db.list_layers()] == ["sha256:c1", "sha256:c2"]
    db.delete_layer("sha256:c2")
    assert db.get_layer("sha256:c2") is None


def test_leases(db: Metadata) -> None:
    lease = db.create_lease(60, now=1000.0, resources=[LeaseResource("content", "sha256:x")])
    db.add_lease_resources(lease.id, [LeaseResource("ingest", "ref-1")], now=1010.0)
    got = db.get_lease(lease.id, now=1010.0)
    assert set(got.resources) == {
        LeaseResource("content", "sha256:x"),
        LeaseResource("ingest", "ref-1"),
    }
    assert [x.id for x in db.leases(now=1059.0)] == [lease.id]
    assert db.leases(now=1061.0) == []  # expired: no longer protects
    with pytest.raises(LeaseNotFoundError):
        db.add_lease_resources(lease.id, [], now=1061.0)
    db.renew_lease(lease.id, 100, now=1050.0)
    assert [x.id for x in db.leases(now=1100.0)] == [lease.id]
    assert db.expire_leases(now=1200.0) == [lease.id]
    assert db.leases(include_expired=True) == []
    with db.lease(ttl=30) as held:
        assert [x.id for x in db.leases()] == [held.id]
    assert db.leases(include_expired=True) == []
    with pytest.raises(MetadataError):
        db.create_lease(lease_id="fixed")
        db.create_lease(lease_id="fixed")


def test_subscribers_see_every_name_change(db: Metadata) -> None:
    seen: list[list[str]] = []
    db.subscribe(lambda: seen.append(sorted(t for i in db.list_images() for t in i.tags)))
    rec = record("a")
    db.put_image(rec, names=["a:1"])
    db.tag("a:2", rec.id)
    db.tag("a:2", rec.id)  # no change, no notification
    db.untag("a:1")
    db.create_lease()  # not a name change
    assert seen == [
        ["docker.io/library/a:1"],
        ["docker.io/library/a:1", "docker.io/library/a:2"],
        ["docker.io/library/a:2"],
    ]


def test_concurrent_writers_from_threads(db: Metadata) -> None:
    rec = record("a")
    db.put_image(rec)
    errors: list[BaseException] = []

    def work(n: int) -> None:
        try:
            for k in range(20):
                db.tag(f"t{n}:{k}", rec.id)
                db.resolve(f"t{n}:{k}")
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(db.get_image(rec.id).tags) == 160


_CHILD = """
import sys, time
sys.path.insert(0, sys.argv[2])
from tests.daemon.test_metadata import record
from declarun.daemon.metadata import Metadata
db = Metadata(sys.argv[1])
n = 0
while True:
    db.put_image(record(f"img{n}"), names=[f"img:{n}"])
    print(n, flush=True)
    n += 1
    if n == 25:
        # Die in the middle of a transaction: half an image written, not committed.
        with db.transaction():
            db.put_image(record("half"), names=["half:1"])
            print("in-transaction", flush=True)
            time.sleep(600)
"""


def test_sigkill_during_writes_keeps_committed_state(tmp_path: Path) -> None:
    path = tmp_path / "m.db"
    child = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(path), str(REPO_ROOT)],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO_ROOT,
    )
    committed = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            if line.strip() == "in-transaction":
                break
            committed.append(int(line))
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()
    assert committed == list(range(25))
    db = Metadata(path)
    try:
        assert db._conn().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        for n in committed:
            assert db.resolve(f"img:{n}").id == record(f"img{n}").id
        with pytest.raises(ImageNotFoundError):
            db.resolve("half:1")
        assert len(db.list_images()) == 25
        db.put_image(record("after"), names=["after:1"])  # fully writable again
    finally:
        db.close()


def test_reference_graph(db: Metadata) -> None:
    rec = record("a")
    db.put_image(rec)
    db.put_container(Container("c1", "web", rec.id, "c1-rw", created=1.0))
    lease = db.create_lease(resources=[LeaseResource("snapshot", "s1")])
    graph = db.reference_graph()
    assert graph.images[rec.id].blobs == rec.blob_digests()
    assert graph.images[rec.id].chain_ids == {layer.chain_id for layer in rec.layers}
    assert graph.container_images == {rec.id}
    assert graph.container_snapshots == {"c1-rw"}
    assert [x.id for x in graph.leases] == [lease.id]


def test_container_volumes_are_written_read_and_deleted_with_the_container(db: Metadata) -> None:
    db.put_container(Container("c1", "web", None, None, 1.0, volumes={"/data": "shared"}))
    db.put_container(Container("c2", "db", None, None, 2.0, volumes={"/a": "shared", "/b": "x"}))
    assert db.get_container("c2") == Container(
        "c2", "db", None, None, 2.0, volumes={"/a": "shared", "/b": "x"}
    )
    assert db.volume_users("shared") == ["c1", "c2"]
    assert db.volume_users("x") == ["c2"] and db.volume_users("nothing") == []
    # Saving a container again replaces its volumes.
    db.put_container(Container("c2", "db", None, None, 2.0, volumes={"/b": "x"}))
    assert db.volume_users("shared") == ["c1"]
    db.delete_container("c1")
    assert db.volume_users("shared") == []
    assert [c.volumes for c in db.list_containers()] == [{"/b": "x"}]


def test_volume_rows(db: Metadata) -> None:
    row = VolumeRow("data", "local", "2024-01-01T00:00:00Z", {"a": "b"}, {"type": "tmpfs"})
    assert db.add_volume(row) is True
    assert db.add_volume(VolumeRow("data", "local", "later")) is False  # kept as it was
    assert db.get_volume("data") == row and db.get_volume("nope") is None
    db.add_volume(VolumeRow("another", "local", "2024-01-02T00:00:00Z"))
    assert [v.name for v in db.list_volumes()] == ["another", "data"]
    db.put_container(Container("c1", "web", None, None, 1.0, volumes={"/d": "data"}))
    with pytest.raises(MetadataError, match="in use"):
        db.delete_volume("data")
    db.delete_container("c1")
    assert db.delete_volume("data") is True and db.delete_volume("data") is False


def test_network_rows_states_and_users(db: Metadata) -> None:
    net = NetworkRow("n1", "backend", False, "2024-01-01T00:00:00Z", {"id": "n1", "x": 1})
    db.put_network(net)
    assert db.add_network(NetworkRow("n1", "other", False, "later")) is False
    db.put_network(NetworkRow("n0", "bridge", True, "2024-01-01T00:00:00Z"))
    assert db.list_networks() == [NetworkRow("n0", "bridge", True, "2024-01-01T00:00:00Z"), net]
    db.put_network_state(NetworkStateRow("c1", {"netns": "/x"}, ("n1", "n0", "n1")))
    db.put_network_state(NetworkStateRow("c2", {"netns": "/y"}, ("n1",)))
    assert db.network_users("n1") == ["c1", "c2"] and db.network_users("n0") == ["c1"]
    assert db.get_network_state("c1") == NetworkStateRow("c1", {"netns": "/x"}, ("n0", "n1"))
    # A disconnect rewrites the state; an import never overwrites one.
    db.put_network_state(NetworkStateRow("c1", {"netns": "/x"}, ("n0",)))
    db.put_network_state(NetworkStateRow("c1", {"netns": "/old"}, ("n1",)), replace=False)
    assert db.network_users("n1") == ["c2"]
    assert [s.container_id for s in db.list_network_states()] == ["c1", "c2"]
    assert db.delete_network_state("c2") is True
    assert db.network_users("n1") == [] and db.get_network_state("c2") is None
    assert db.delete_network("n1") is True and db.delete_network("n1") is False


def test_a_version_1_database_is_migrated_with_its_containers_volumes(tmp_path: Path) -> None:
    """A database written by the code before volumes and networks moved in (schema 1)."""
    path = tmp_path / "old.db"
    raw = sqlite3.connect(path)
    for statement in MIGRATIONS[0]:
        assert isinstance(statement, str)
        raw.execute(statement)
    raw.execute("PRAGMA user_version=1")
    record = {"id": "c" * 64, "name": "web", "volume_names": {"/data": "shared", "/x": "f" * 64}}
    raw.execute(
        "INSERT INTO containers (id, name, image_id, snapshot_key, created, record) "
        "VALUES (?, ?, NULL, NULL, 1.0, ?)",
        ("c" * 64, "web", json.dumps(record)),
    )
    raw.execute(
        "INSERT INTO containers (id, name, image_id, snapshot_key, created, record) "
        "VALUES ('d', 'damaged', NULL, NULL, 2.0, 'not json')"
    )
    raw.commit()
    raw.close()

    db = Metadata(path)
    try:
        assert db.schema_version() == SCHEMA_VERSION
        assert db.volume_users("shared") == ["c" * 64]
        assert db.volume_users("f" * 64) == ["c" * 64]
        assert db.get_container("c" * 64) is not None
        assert db.list_volumes() == [] and db.list_networks() == []
    finally:
        db.close()
