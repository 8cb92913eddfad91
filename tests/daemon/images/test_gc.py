"""Garbage collection: the pure mark over a reference graph, and the sweep on real files."""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import Descriptor, LocalStore
from declarun.daemon.images.gc import collect, mark
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import (
    Container,
    ImageLayer,
    ImageRecord,
    ImageRefs,
    Layer,
    Lease,
    LeaseResource,
    Metadata,
    ReferenceGraph,
)


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- mark: pure ------------------------------------------------------------------------


def graph(**overrides: object) -> ReferenceGraph:
    base: dict[str, object] = {
        "images": {
            "img1": ImageRefs(frozenset({"m1", "c1", "l1"}), frozenset({"ch2"})),
            "img2": ImageRefs(frozenset({"m2", "c2", "l1"}), frozenset({"ch9"})),
        },
        "layer_parents": {"ch2": "ch1", "ch1": None, "ch9": None, "orphan": "ch1"},
        "container_images": frozenset(),
        "container_snapshots": frozenset(),
        "leases": (),
    }
    base.update(overrides)
    return ReferenceGraph(**base)  # type: ignore[arg-type]


def test_mark_keeps_images_and_parent_chains() -> None:
    marked = mark(graph())
    assert marked.blobs == {"m1", "c1", "l1", "m2", "c2"}
    assert marked.snapshots == {"ch1", "ch2", "ch9"}  # ch1 as the parent of ch2
    assert "orphan" not in marked.snapshots
    assert marked.ingests == frozenset()


def test_mark_leases_and_containers() -> None:
    lease = Lease(
        "l",
        0.0,
        None,
        (
            LeaseResource("content", "pulling"),
            LeaseResource("ingest", "layer-ref"),
            LeaseResource("snapshot", "orphan"),
        ),
    )
    marked = mark(graph(leases=(lease,), container_snapshots=frozenset({"rw1"})))
    assert {"pulling"} <= marked.blobs
    assert marked.ingests == {"layer-ref"}
    assert {"orphan", "ch1", "rw1"} <= marked.snapshots


def test_mark_empty() -> None:
    marked = mark(graph(images={}, layer_parents={}))
    assert (marked.blobs, marked.snapshots, marked.ingests) == (
        frozenset(),
        frozenset(),
        frozenset(),
    )


# -- collect: real store, real database, a directory snapshotter -------------------------


class DirSnapshots:
    """Snapshots as directories named by chain-ID hex (the shape of the real snapshotter)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def create(self, chain_id: str) -> None:
        (self.root / chain_id.replace(":", "-")).mkdir()

    def list(self) -> list[str]:
        return sorted(p.name.replace("-", ":", 1) for p in self.root.iterdir())

    def remove(self, key: str) -> None:
        shutil.rmtree(self.root / key.replace(":", "-"))


@pytest.fixture
def env(tmp_path: Path) -> Iterator[tuple[Metadata, LocalStore, DirSnapshots]]:
    db = Metadata(tmp_path / "metadata.db")
    yield db, LocalStore(tmp_path / "content"), DirSnapshots(tmp_path / "snapshots")
    db.close()


def image(store: LocalStore, snaps: DirSnapshots, db: Metadata, seed: str) -> ImageRecord:
    """Blobs, snapshots and a record for a two-layer image (layer 0 shared by all seeds)."""
    layers = []
    parent: str | None = None
    for n, content in enumerate([b"shared base layer", f"{seed} top layer".encode()]):
        blob = store.put(content)
        diff_id = digest_of(b"diff " + content)
        chain_id = diff_id if parent is None else digest_of(f"{parent} {diff_id}".encode())
        if db.get_layer(chain_id) is None:
            snaps.create(chain_id)
            db.put_layer(Layer(chain_id, diff_id, parent, 10 * (n + 1), 0.0))
        layers.append(
            ImageLayer(
                Descriptor(mediatypes.OCI_LAYER_GZIP, blob.digest, blob.size), diff_id, chain_id
            )
        )
        parent = chain_id
    config = store.put(f'{{"seed": "{seed}"}}'.encode())
    manifest = store.put(f'{{"manifest": "{seed}"}}'.encode())
    return ImageRecord(
        id=config.digest,
        manifest=Descriptor(mediatypes.OCI_MANIFEST, manifest.digest, manifest.size),
        config=Descriptor(mediatypes.OCI_CONFIG, config.digest, config.size),
        layers=tuple(layers),
        platform=Platform("linux", "amd64"),
    )


def blobs(store: LocalStore) -> set[str]:
    return {b.digest for b in store.list()}


def test_collect_keeps_referenced_removes_rest(
    env: tuple[Metadata, LocalStore, DirSnapshots],
) -> None:
    db, store, snaps = env
    kept = image(store, snaps, db, "kept")
    db.put_image(kept, names=["kept:1"])
    dangling = image(store, snaps, db, "dangling")
    db.put_image(dangling)  # no name: Docker keeps it until rmi/prune
    gone = image(store, snaps, db, "gone")
    db.put_image(gone, names=["gone:1"])
    stray = store.put(b"referenced by nothing")
    db.delete_image(gone.id)

    result = collect(db, store, snaps)

    assert stray.digest in result.blobs
    assert gone.manifest.digest in result.blobs and gone.config.digest in result.blobs
    assert blobs(store) == kept.blob_digests() | dangling.blob_digests()
    shared = kept.layers[0].chain_id
    assert shared == gone.layers[0].chain_id  # the base layer is shared: still in use
    assert set(snaps.list()) == {
        shared,
        kept.layers[1].chain_id,
        dangling.layers[1].chain_id,
    }
    assert result.snapshots == (gone.layers[1].chain_id,)
    assert db.get_layer(gone.layers[1].chain_id) is None
    assert result.freed_bytes > 0
    # Nothing left to collect: a second run removes nothing.
    again = collect(db, store, snaps)
    assert (again.blobs, again.snapshots, again.ingests) == ((), (), ())


def test_lease_protects_pull_in_progress_until_it_expires(
    env: tuple[Metadata, LocalStore, DirSnapshots],
) -> None:
    db, store, snaps = env
    config = store.put(b'{"config": true}')
    lease = db.create_lease(
        60,
        now=1000.0,
        resources=[
            LeaseResource("content", config.digest),
            LeaseResource("ingest", "layer-a"),
        ],
    )
    # Half a layer downloaded, writer gone (say the connection dropped): resumable.
    with store.writer("layer-a") as writer:
        writer.write(b"partial layer")
    with store.writer("unleased") as writer:
        writer.write(b"abandoned")
    active = store.writer("active-unleased")  # a writer is busy with it right now
    active.write(b"busy")

    result = collect(db, store, snaps, now=1010.0)
    assert result.blobs == () and result.ingests == ("unleased",)
    assert store.exists(config.digest)
    assert {i.ref for i in store.ingests()} == {"layer-a", "active-unleased"}
    active.close()

    # The pull crashed: nobody deletes the lease, it expires, its leftovers go.
    result = collect(db, store, snaps, now=1061.0)
    assert result.expired_leases == (lease.id,)
    assert result.blobs == (config.digest,)
    assert set(result.ingests) == {"layer-a", "active-unleased"}
    assert blobs(store) == set() and store.ingests() == []


def test_pull_protocol_lease_then_image(env: tuple[Metadata, LocalStore, DirSnapshots]) -> None:
    db, store, snaps = env
    with db.lease(ttl=600) as lease:
        rec = image(store, snaps, db, "pulled")
        db.add_lease_resources(
            lease.id,
            [LeaseResource("content", d) for d in rec.blob_digests()]
            + [LeaseResource("snapshot", layer.chain_id) for layer in rec.layers],
        )
        assert collect(db, store, snaps).blobs == ()  # mid-pull: all protected
        db.put_image(rec, names=["pulled:1"])
    assert collect(db, store, snaps).blobs == ()  # lease gone, the image holds them
    assert blobs(store) == rec.blob_digests()
    db.delete_image(rec.id)
    result = collect(db, store, snaps)
    assert set(result.blobs) == rec.blob_digests()
    assert snaps.list() == []


def test_containers_keep_their_image_and_snapshot(
    env: tuple[Metadata, LocalStore, DirSnapshots],
) -> None:
    db, store, snaps = env
    rec = image(store, snaps, db, "base")
    db.put_image(rec)
    snaps.create("sha256:" + "c" * 64)  # the container's writable snapshot
    db.put_container(Container("c1", "web", rec.id, "sha256:" + "c" * 64, created=1.0))
    result = collect(db, store, snaps)
    assert result.blobs == () and result.snapshots == ()
    assert "sha256:" + "c" * 64 in snaps.list()


def test_callable_remover_and_dry_run(env: tuple[Metadata, LocalStore, DirSnapshots]) -> None:
    db, store, snaps = env
    rec = image(store, snaps, db, "x")  # blobs and layer records, but no image record
    dry = collect(db, store, snaps.remove, dry_run=True)
    assert set(dry.blobs) == rec.blob_digests()
    assert set(dry.snapshots) == {layer.chain_id for layer in rec.layers}
    assert blobs(store) == rec.blob_digests()  # dry run removed nothing
    assert len(db.list_layers()) == 2

    removed: list[str] = []

    def remover(key: str) -> None:
        removed.append(key)
        snaps.remove(key)

    result = collect(db, store, remover)
    assert sorted(removed) == sorted(result.snapshots) == sorted(dry.snapshots)
    assert blobs(store) == set() and db.list_layers() == [] and snaps.list() == []


def test_sweep_holds_the_write_lock(env: tuple[Metadata, LocalStore, DirSnapshots]) -> None:
    """While GC lists and removes, no lease can be written: it waits for the sweep."""
    db, store, snaps = env
    attempts: list[str] = []

    class Probe(DirSnapshots):
        def list(self) -> list[str]:
            other = sqlite3.connect(db.path, timeout=0, isolation_level=None)
            try:
                other.execute("BEGIN IMMEDIATE")
                attempts.append("got the write lock")
            except sqlite3.OperationalError as err:
                attempts.append(str(err))
            finally:
                other.close()
            return super().list()

    collect(db, store, Probe(snaps.root))
    assert attempts == ["database is locked"]
    db.create_lease()  # and afterwards writes go through again
