"""The image service: the daemon's image stores used together, and what the image API does.

Built once by the composition root (:mod:`declarun.daemon.wiring`) over the stores it
opened under the data root:

* ``metadata.db`` -- :class:`~declarun.daemon.metadata.Metadata`, the one authority;
* ``content/`` -- :class:`~declarun.daemon.images.content.LocalStore` (an OCI layout whose
  ``index.json`` is rewritten after every metadata change, see :meth:`ImageService.start`);
* ``snapshots/`` -- the snapshotter (overlay, or copy where overlayfs does not work; see
  :func:`~declarun.daemon.snapshots.open_data_root_snapshotter`).

:meth:`ImageService.start` sweeps what a previous daemon left: since this daemon holds the
data-root lock, every lease is stale. The leases of interrupted pulls (``pull-*``) are
kept until they expire, so that the blobs, snapshots and partial downloads they protect
let the same pull, asked again, resume where it stopped (:meth:`ImageService.claim_resumable`);
every other lease is dropped. A garbage collection then removes what nothing holds:
ingests no pull will resume, unreferenced blobs and snapshots. Images whose snapshots an
interrupted unpack left missing are unpacked again.

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

from declarun.daemon import failpoints
from declarun.daemon.events import EventBus
from declarun.daemon.images import gc
from declarun.daemon.images.content import LocalStore
from declarun.daemon.images.registry import RegistryConfig
from declarun.daemon.metadata import (
    Image,
    ImageNotFoundError,
    ImageRecord,
    Layer,
    Lease,
    LeaseNotFoundError,
    Metadata,
)
from declarun.daemon.snapshots import SnapshotInUse, SnapshotNotFound, Snapshotter
from declarun.errdefs import Conflict, InvalidArgument
from declarun.errors import DeclarunError, ImageReferenceError
from declarun.reference import ImageReference, parse_reference

__all__ = ["PULL_LEASE_PREFIX", "DeleteRecord", "ImageService", "familiar"]

log = logging.getLogger("declarund.images")

#: The ID prefix of a pull's lease: such a lease outlives a daemon killed mid-pull.
PULL_LEASE_PREFIX = "pull-"
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
        metadata: Metadata,
        store: LocalStore,
        snapshotter: Snapshotter,
        events: EventBus,
        *,
        registry_config: RegistryConfig,
        max_concurrent_downloads: int,
        scratch_dir: Path,
    ) -> None:
        self.metadata = metadata
        self.store = store
        self.snapshotter = snapshotter
        self.events = events
        #: How to reach registries (the daemon's insecure registries and mirrors).
        self.registry_config = registry_config
        #: Layers downloaded at once by one pull.
        self.max_concurrent_downloads = max(1, max_concurrent_downloads)
        #: Where large temporary files go (on the data root's file system, not a tmpfs).
        self.scratch_dir = scratch_dir
        # One GC at a time: a sweep must see a consistent snapshot list.
        self._gc_lock = threading.Lock()
        # Leases of pulls a dead daemon left, by ID: a pull of the same manifest takes one
        # over (claim_resumable) and resumes from what it protects.
        self._resumable: dict[str, Lease] = {}
        self._resumable_lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Keep the OCI index in step with the metadata, and sweep what an earlier run left
        (blocking: call it from a worker thread)."""
        self.metadata.subscribe(lambda: self.store.write_index(self.metadata.oci_index()))
        self.sweep_at_start()
        self.store.write_index(self.metadata.oci_index())

    def sweep_at_start(self) -> None:
        """Keep the live leases of interrupted pulls, drop every other lease (its operation
        died with the previous daemon), collect, and unpack what an unpack left missing."""
        now = time.time()
        for lease in self.metadata.leases(include_expired=True):
            if lease.id.startswith(PULL_LEASE_PREFIX) and lease.active(now):
                self._resumable[lease.id] = lease
            else:
                self.metadata.delete_lease(lease.id)
        result = self.collect_garbage()
        if result.blobs or result.ingests or result.snapshots:
            log.info(
                "swept %d blobs, %d ingests, %d snapshots left by an earlier run",
                len(result.blobs),
                len(result.ingests),
                len(result.snapshots),
            )
        if self._resumable:
            log.info("kept %d interrupted pulls to resume", len(self._resumable))
        for image in self.metadata.list_images():
            layers = image.record.layers
            if layers and not self.snapshotter.exists(layers[-1].chain_id):
                log.info("unpacking image %s again (its unpack was interrupted)", image.id[:19])
                try:
                    self.ensure_unpacked(image.record)
                except DeclarunError as exc:  # a blob is gone: `daemon check` reports it
                    log.error("unpacking image %s: %s", image.id[:19], exc)

    def claim_resumable(self, manifest_digest: str) -> Lease | None:
        """The lease an interrupted pull of ``manifest_digest`` left (once; None if none).

        The caller takes it over: it protects the blobs, snapshots and partial downloads
        that pull had, and the caller deletes it when done, like a lease of its own.
        """
        with self._resumable_lock:
            for lease_id, lease in list(self._resumable.items()):
                if any(r.kind == "content" and r.key == manifest_digest for r in lease.resources):
                    del self._resumable[lease_id]
                    return lease
        return None

    def keep_resumable(self, lease: Lease, ttl: float) -> None:
        """Keep the lease of a pull that failed or was cancelled ``ttl`` more seconds, for
        a retry of the same pull to take over (blocking)."""
        try:
            self.metadata.renew_lease(lease.id, ttl)
            kept = self.metadata.get_lease(lease.id)
        except LeaseNotFoundError:
            return
        with self._resumable_lock:
            self._resumable[kept.id] = kept

    def resumable_leases(self) -> frozenset[str]:
        """IDs of the leases of interrupted pulls not resumed yet (kept until they expire)."""
        with self._resumable_lock:
            return frozenset(self._resumable)

    @property
    def driver_name(self) -> str:
        """The storage driver name Docker clients expect (``overlay2`` or ``vfs``)."""
        return _DRIVER_NAMES.get(self.snapshotter.driver, self.snapshotter.driver)

    # -- lookups -----------------------------------------------------------------------

    def image_count(self) -> int:
        """Images stored (for ``/info``)."""
        return len(self.metadata.list_images())

    def resolve(self, name: str) -> Image:
        """The image ``name`` means (full ref, familiar name, ID, ID prefix).

        ImageNotFoundError (``No such image: name``) or AmbiguousImageError otherwise.
        """
        try:
            return self.metadata.resolve(name)
        except ImageNotFoundError:
            raise ImageNotFoundError(f"No such image: {name}") from None

    # -- unpacking ---------------------------------------------------------------------

    def ensure_unpacked(self, record: ImageRecord) -> None:
        """Apply every layer of ``record`` that has no snapshot yet (loads, imports), and
        record the image's size as the unpacked size, as for a pulled image."""
        failpoints.hit("image-before-unpack")
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
            raise InvalidArgument("repository name must have at least one component")
        try:
            ref = parse_reference(repo, default_tag=None)
            if ref.digest is not None:
                raise InvalidArgument("refusing to create a tag with a digest reference")
            if tag:
                ref = ref.with_tag(tag)
            elif ref.tag is None:
                ref = ref.with_tag("latest")
        except ImageReferenceError as exc:
            raise InvalidArgument(str(exc)) from None
        self.metadata.tag(str(ref), image.id)
        self.events.publish("image", "tag", image.id, {"name": ref.familiar()})
        return ref

    # -- deletion ----------------------------------------------------------------------

    def delete(self, name: str, *, force: bool = False, prune: bool = True) -> list[DeleteRecord]:
        """``docker rmi``: Docker's rules for untagging and deleting, with its messages.

        An image other images were built on (the builder's parent links) is only untagged,
        and by ID it cannot be deleted at all, as dockerd answers. With ``prune``, the
        deleted image's parents go too while they have no name, no container and no other
        child (a build's intermediate images), and garbage is collected.
        """
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
            if names or self._has_children(image.id):
                return records
        else:
            repositories = {_repository(n) for n in names}
            if len(repositories) > 1 and not force:
                raise Conflict(
                    f"conflict: unable to delete {image.id[7:19]} (must be forced) - image is "
                    "referenced in multiple repositories"
                )
            if self._has_children(image.id):
                raise Conflict(
                    f"conflict: unable to delete {image.id[7:19]} (cannot be forced) - image "
                    "has dependent child images"
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
        parent = self.metadata.image_parent(image.id)
        self.metadata.delete_image(image.id)
        records.append(DeleteRecord("Deleted", image.id))
        self.events.publish("image", "delete", image.id, {"name": image.id})
        if prune:
            self._delete_dangling_parents(parent, records)
            self.collect_garbage()
        return records

    def _has_children(self, image_id: str) -> bool:
        return image_id in self.metadata.image_parents().values()

    def leased_images(self) -> frozenset[str]:
        """Image IDs an operation in progress holds (a build's base and step images)."""
        return frozenset(
            r.key for lease in self.metadata.leases() for r in lease.resources if r.kind == "image"
        )

    def _delete_dangling_parents(self, parent: str | None, records: list[DeleteRecord]) -> None:
        """Delete ``parent`` and its own parents while each is an unnamed, unused leaf."""
        while parent is not None:
            try:
                image = self.metadata.get_image(parent)
            except ImageNotFoundError:
                return
            if image.tags or image.digests or self._has_children(parent):
                return
            if parent in self.in_use_by_containers() or parent in self.leased_images():
                return
            above = self.metadata.image_parent(parent)
            self.metadata.delete_image(parent)
            records.append(DeleteRecord("Deleted", parent))
            self.events.publish("image", "delete", parent, {"name": parent})
            parent = above

    def _untag(self, canonical: str, image_id: str, records: list[DeleteRecord]) -> None:
        with contextlib.suppress(ImageNotFoundError):
            self.metadata.untag(canonical)
        records.append(DeleteRecord("Untagged", familiar(canonical)))
        self.events.publish("image", "untag", image_id, {"name": familiar(canonical)})

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
        """Delete these images (names first), then their unnamed, unused parents, and
        collect; returns records and bytes freed."""
        records: list[DeleteRecord] = []
        for image in images:
            for name in image.tags + image.digests:
                self._untag(name, image.id, records)
            parent = self.metadata.image_parent(image.id)
            with contextlib.suppress(ImageNotFoundError):
                self.metadata.delete_image(image.id)
                records.append(DeleteRecord("Deleted", image.id))
                self.events.publish("image", "delete", image.id, {"name": image.id})
                self._delete_dangling_parents(parent, records)
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
