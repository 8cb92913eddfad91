"""The image service: the daemon's stores opened together, and what the image API does.

Built once at daemon start (:func:`attach_image_service`, idempotent, so any API area's
start-up hook may call it first), it opens under the data root

* ``metadata.db`` -- :class:`~declarun.daemon.metadata.Metadata`, the one authority;
* ``content/`` -- :class:`~declarun.daemon.images.content.LocalStore` (an OCI layout whose
  ``index.json`` is rewritten after every metadata change);
* ``snapshots/`` -- the snapshotter (overlay, or copy where overlayfs does not work; the
  choice is kept in ``snapshots/driver`` so a data root never mixes the two),

attaches them to the :class:`~declarun.daemon.context.DaemonContext`, and sweeps what a
previous daemon left: since this daemon holds the data-root lock, every lease is stale, so
all are dropped and a garbage collection removes partial ingests and unreferenced blobs
and snapshots.

Pull, push and import live in their own modules (``pull``, ``push``, ``importer``); this
module keeps name resolution, tagging, deletion and pruning.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from declarun.daemon.api.errors import BadRequest, Conflict, NotFound
from declarun.daemon.context import DaemonContext
from declarun.daemon.images import gc
from declarun.daemon.images.content import LocalStore
from declarun.daemon.images.registry import RegistryConfig
from declarun.daemon.metadata import (
    AmbiguousImageError,
    Image,
    ImageNotFoundError,
    ImageRecord,
    Layer,
    Metadata,
)
from declarun.daemon.snapshots import SnapshotInUse, SnapshotNotFound, Snapshotter, open_snapshotter
from declarun.errors import ImageReferenceError
from declarun.reference import ImageReference, parse_reference

__all__ = [
    "DeleteRecord",
    "ImageService",
    "attach_image_service",
    "familiar",
]

log = logging.getLogger("declarund.images")

_ATTACH_LOCK = threading.Lock()
# Docker's storage driver names for what /info and inspect report.
_DRIVER_NAMES = {"overlay": "overlay2", "copy": "vfs"}


def familiar(name: str) -> str:
    """A stored canonical name (``docker.io/library/busybox:latest``) as Docker shows it."""
    try:
        return parse_reference(name, default_tag=None).familiar()
    except ImageReferenceError:
        return name


@dataclass(frozen=True)
class DeleteRecord:
    """One entry of ``DELETE /images/{name}``'s answer: a name untagged or an ID deleted."""

    kind: Literal["Untagged", "Deleted"]
    value: str

    def to_json(self) -> dict[str, str]:
        """``{"Untagged": "busybox:latest"}`` or ``{"Deleted": "sha256:..."}``."""
        return {self.kind: self.value}


class _SnapshotSweeper:
    """The snapshotter as garbage collection sees it (``list``/``remove``).

    GC removes in key order, but a parent cannot go before its children: a removal
    refused for that reason is retried by :meth:`finish` once the children are gone.
    """

    def __init__(self, snapshotter: Snapshotter) -> None:
        self._snapshotter = snapshotter
        self._deferred: list[str] = []

    def list(self) -> list[str]:
        return [s.chain_id for s in self._snapshotter.snapshots()]

    def remove(self, key: str) -> None:
        try:
            self._snapshotter.remove(key)
        except SnapshotInUse:
            self._deferred.append(key)
        except SnapshotNotFound:
            pass

    def finish(self) -> None:
        while self._deferred:
            pending, self._deferred = self._deferred, []
            progress = False
            for key in pending:
                try:
                    self._snapshotter.remove(key)
                    progress = True
                except SnapshotInUse:
                    self._deferred.append(key)  # a container still builds on it
                except SnapshotNotFound:
                    progress = True
            if not progress:
                return


class ImageService:
    """The image stores of one daemon and the operations on them (blocking methods:
    call them from a worker thread, e.g. ``asyncio.to_thread``)."""

    def __init__(
        self,
        ctx: DaemonContext,
        metadata: Metadata,
        store: LocalStore,
        snapshotter: Snapshotter,
    ) -> None:
        self.ctx = ctx
        self.metadata = metadata
        self.store = store
        self.snapshotter = snapshotter
        # One GC at a time: a sweep must see a consistent snapshot list.
        self._gc_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    @classmethod
    def open(cls, ctx: DaemonContext) -> ImageService:
        """Open the stores under the data root, wire the OCI index, sweep leftovers."""
        root = ctx.data_root
        # The daemon's start-up makes the data root; an app served on its own (tests) may not.
        root.mkdir(parents=True, exist_ok=True, mode=0o711)
        metadata = Metadata(root / "metadata.db")
        store = LocalStore(root / "content")
        snapshotter = open_snapshotter(root, _remembered_driver(root))
        _remember_driver(root, snapshotter.driver)
        metadata.subscribe(lambda: store.write_index(metadata.oci_index()))
        service = cls(ctx, metadata, store, snapshotter)
        service.sweep_at_start()
        store.write_index(metadata.oci_index())
        return service

    def sweep_at_start(self) -> None:
        """Drop every lease (their pulls died with the previous daemon) and collect."""
        for lease in self.metadata.leases(include_expired=True):
            self.metadata.delete_lease(lease.id)
        result = self.collect_garbage()
        if result.blobs or result.ingests or result.snapshots:
            log.info(
                "swept %d blobs, %d ingests, %d snapshots left by an earlier run",
                len(result.blobs),
                len(result.ingests),
                len(result.snapshots),
            )

    def close(self) -> None:
        """Close the metadata database."""
        self.metadata.close()

    @property
    def registry_config(self) -> RegistryConfig:
        """How to reach registries (the daemon's insecure registries and mirrors)."""
        config = self.ctx.config
        return RegistryConfig(
            insecure_registries=config.insecure_registries, mirrors=config.registry_mirrors
        )

    @property
    def max_concurrent_downloads(self) -> int:
        """Layers downloaded at once by one pull."""
        return max(1, self.ctx.config.max_concurrent_downloads)

    @property
    def driver_name(self) -> str:
        """The storage driver name Docker clients expect (``overlay2`` or ``vfs``)."""
        return _DRIVER_NAMES.get(self.snapshotter.driver, self.snapshotter.driver)

    # -- lookups -----------------------------------------------------------------------

    def image_count(self) -> int:
        """Images stored (for ``/info``)."""
        return len(self.metadata.list_images())

    def resolve(self, name: str) -> Image:
        """The image ``name`` means (full ref, familiar name, ID, ID prefix); 404/400."""
        try:
            return self.metadata.resolve(name)
        except ImageNotFoundError:
            raise NotFound(f"No such image: {name}") from None
        except AmbiguousImageError as exc:
            raise BadRequest(str(exc)) from None

    # -- unpacking ---------------------------------------------------------------------

    def ensure_unpacked(self, record: ImageRecord) -> None:
        """Apply every layer of ``record`` that has no snapshot yet (loads, imports), and
        record the image's size as the unpacked size, as for a pulled image."""
        total = 0
        parent: str | None = None
        for layer in record.layers:
            if not self.snapshotter.exists(layer.chain_id):
                with self.store.open(layer.blob.digest) as blob:
                    applied = self.snapshotter.apply_layer(parent, blob, diff_id=layer.diff_id)
                size = applied.snapshot.size
            else:
                size = self.snapshotter.info(layer.chain_id).size
            self.metadata.put_layer(Layer(layer.chain_id, layer.diff_id, parent, size, time.time()))
            parent = layer.chain_id
            total += size
        stored = self.metadata.get_image(record.id).record
        if stored.layers and total != stored.size:
            self.metadata.put_image(dataclasses.replace(stored, size=total))

    # -- names -------------------------------------------------------------------------

    def tag(self, source: str, repo: str, tag: str) -> ImageReference:
        """``docker tag``: point ``repo:tag`` at the image ``source`` names."""
        image = self.resolve(source)
        if not repo:
            raise BadRequest("repository name must have at least one component")
        try:
            ref = parse_reference(repo, default_tag=None)
            if ref.digest is not None:
                raise BadRequest("refusing to create a tag with a digest reference")
            if tag:
                ref = ref.with_tag(tag)
            elif ref.tag is None:
                ref = ref.with_tag("latest")
        except ImageReferenceError as exc:
            raise BadRequest(str(exc)) from None
        self.metadata.tag(str(ref), image.id)
        self.ctx.events.publish("image", "tag", image.id, {"name": ref.familiar()})
        return ref

    # -- deletion ----------------------------------------------------------------------

    def delete(self, name: str, *, force: bool = False, prune: bool = True) -> list[DeleteRecord]:
        """``docker rmi``: Docker's rules for untagging and deleting, with its messages."""
        image = self.resolve(name)
        by_id = _is_id_reference(name, image.id)
        records: list[DeleteRecord] = []
        refs = self.metadata.image_references(image.id)
        names = list(refs.tags) + list(refs.digests)
        if not by_id:
            canonical = _canonical(name)
            self._untag(canonical, image.id, records)
            names.remove(canonical)
            repository = canonical.split("@", 1)[0].rsplit(":", 1)[0]
            if "@" not in canonical and not any(
                _repository(n) == repository for n in names if n in refs.tags
            ):
                # The last tag of a repository takes its digest references with it.
                for other in [n for n in names if n in refs.digests]:
                    if _repository(other) == repository:
                        self._untag(other, image.id, records)
                        names.remove(other)
            if names:
                return records
        else:
            repositories = {_repository(n) for n in names}
            if len(repositories) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is "
                    "referenced in multiple repositories"
                )
        if refs.containers:
            if not force:
                raise Conflict(
                    f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is "
                    f"being used by stopped container {refs.containers[0][:12]}"
                )
            # Forced while a container uses it: Docker only untags, the image stays.
            for other in names:
                self._untag(other, image.id, records)
            return records
        for other in names:
            self._untag(other, image.id, records)
        self.metadata.delete_image(image.id)
        records.append(DeleteRecord("Deleted", image.id))
        self.ctx.events.publish("image", "delete", image.id, {"name": image.id})
        if prune:
            self.collect_garbage()
        return records

    def _untag(self, canonical: str, image_id: str, records: list[DeleteRecord]) -> None:
        with contextlib.suppress(ImageNotFoundError):
            self.metadata.untag(canonical)
        records.append(DeleteRecord("Untagged", familiar(canonical)))
        self.ctx.events.publish("image", "untag", image_id, {"name": familiar(canonical)})

    def collect_garbage(self) -> gc.GCResult:
        """Remove blobs, ingests and snapshots nothing references (leases respected)."""
        with self._gc_lock:
            sweeper = _SnapshotSweeper(self.snapshotter)
            result = gc.collect(self.metadata, self.store, sweeper)
            sweeper.finish()
            return result

    def in_use_by_containers(self) -> frozenset[str]:
        """Image IDs that containers were created from."""
        return frozenset(
            c.image_id for c in self.metadata.list_containers() if c.image_id is not None
        )

    def remove_images(self, images: Iterable[Image]) -> tuple[list[DeleteRecord], int]:
        """Delete these images (names first) and collect; returns records and bytes freed."""
        records: list[DeleteRecord] = []
        for image in images:
            for name in image.tags + image.digests:
                self._untag(name, image.id, records)
            with contextlib.suppress(ImageNotFoundError):
                self.metadata.delete_image(image.id)
                records.append(DeleteRecord("Deleted", image.id))
                self.ctx.events.publish("image", "delete", image.id, {"name": image.id})
        freed = self.collect_garbage().freed_bytes if records else 0
        return records, freed


def _canonical(name: str) -> str:
    ref = parse_reference(name)
    return f"{ref.repository}@{ref.digest}" if ref.digest else f"{ref.repository}:{ref.tag}"


def _repository(canonical: str) -> str:
    if "@" in canonical:
        return canonical.split("@", 1)[0]
    return canonical.rsplit(":", 1)[0]


def _is_id_reference(name: str, image_id: str) -> bool:
    """Whether ``name`` named the image by ID (or ID prefix), as dockerd's isImageIDPrefix."""
    return image_id.startswith(name) or image_id[len("sha256:") :].startswith(name)


def _remembered_driver(root: Path) -> Literal["auto", "overlay", "copy"]:
    try:
        text = (root / "snapshots" / "driver").read_text().strip()
    except OSError:
        return "auto"
    return "overlay" if text == "overlay" else "copy" if text == "copy" else "auto"


def _remember_driver(root: Path, driver: str) -> None:
    path = root / "snapshots" / "driver"
    if not path.exists():
        path.write_text(driver + "\n")


def attach_image_service(ctx: DaemonContext) -> ImageService:
    """The context's image service, opening and attaching it on first call (blocking)."""
    with _ATTACH_LOCK:
        existing = ctx.image_store
        if isinstance(existing, ImageService):
            return existing
        service = ImageService.open(ctx)
        ctx.image_store = service
        ctx.metadata = service.metadata
        ctx.content_store = service.store
        ctx.snapshotter = service.snapshotter
        ctx.storage_driver = service.driver_name
        ctx.image_count = service.image_count
        return service
