"""Pulling an image from a registry into the content store, snapshots and metadata.

Two steps, so that what can fail before any output fails as a plain HTTP error (as
dockerd answers a missing tag with a 404 rather than a stream)::

    pull = await prepare_pull(service, ref, platform=..., credentials=...)  # error kinds
    await pull.run(emit)       # streams Docker's progress messages; errors as a message

``run`` follows the GC protocol of :mod:`declarun.daemon.images.gc`: one lease for the
whole pull, each blob, ingest ref and snapshot added to it *before* it is looked for or
written, the image record stored before the lease is dropped. Layers download in
parallel (``max_concurrent_downloads``) into resumable ingests; each is unpacked as soon as
it is there -- with overlay snapshots up to :data:`UNPACK_CONCURRENCY` layers side by side,
since a layer's snapshot does not need its parent's files (a copying snapshotter applies
them one after the other, each on its parent's tree) -- into a private directory, checked
against the diff ID the image config lists, and the snapshots are committed in chain order.
Nothing is registered unless every step succeeded, so a failed pull leaves no image, no
half-applied layer and no corrupt blob behind.

A pull's lease is named ``pull-*`` and outlives a daemon killed mid-pull (until it
expires, 24 h after it was made; a pull that failed or was cancelled keeps it for one more
hour): the next daemon keeps it, and the same pull asked again takes it over, so the blobs already committed are not fetched again and a partial layer
download resumes with ``Range`` from the bytes already on disk. If a resumed download
does not hash to its digest (the dead daemon's bytes were bad), it starts over from zero
once.
"""

from __future__ import annotations

import asyncio
import contextlib
import difflib
import json
import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, BinaryIO, TypeVar

from declarun.daemon import failpoints
from declarun.daemon.images import mediatypes
from declarun.daemon.images.auth import Credentials, DockerConfig, RegistryAuthError
from declarun.daemon.images.content import BlobExistsError, Descriptor
from declarun.daemon.images.platform import Platform, PlatformError
from declarun.daemon.images.progress import (
    Emit,
    ProgressThrottle,
    error_message,
    progress_message,
    short_id,
    status_message,
)
from declarun.daemon.images.registry import (
    RegistryClient,
    RegistryNotFoundError,
    Repository,
    ResolvedImage,
)
from declarun.daemon.images.service import PULL_LEASE_PREFIX, ImageService
from declarun.daemon.metadata import (
    ImageLayer,
    ImageRecord,
    Layer,
    LeaseNotFoundError,
    LeaseResource,
)
from declarun.daemon.snapshots import StagedLayer, chain_ids
from declarun.errdefs import ErrorKind, InvalidArgument, NotFound, SystemFailure
from declarun.errors import ContentError, DaemonError
from declarun.reference import ImageReference

__all__ = [
    "UNPACK_CONCURRENCY",
    "PreparedPull",
    "credential_provider",
    "prepare_pull",
    "registry_error",
]

log = logging.getLogger("declarun.daemon.images.pull")

_LEASE_TTL = 24 * 3600.0
# How long a failed or cancelled pull's verified blobs and partial downloads are kept.
_RESUME_TTL = 3600.0

#: Layers of one pull unpacked at the same time (overlay snapshots). Unpacking is mostly
#: file creation in the kernel, which runs in parallel; more than a layer or so per core
#: only adds contention.
UNPACK_CONCURRENCY = min(3, max(2, os.cpu_count() or 2))

_T = TypeVar("_T")


def credential_provider() -> Callable[[str], Credentials | None]:
    """Credentials from the daemon user's docker config, read afresh for each operation."""

    def lookup(domain: str) -> Credentials | None:
        return DockerConfig.load().lookup(domain)

    return lookup


def registry_error(exc: DaemonError, ref: ImageReference, action: str = "pull") -> ErrorKind:
    """A registry failure worded and classed as dockerd does."""
    if isinstance(exc, RegistryAuthError):
        return NotFound(
            f"{action} access denied for {ref.familiar_name()}, repository does not exist or "
            f"may require 'docker login': {exc}"
        )
    if isinstance(exc, RegistryNotFoundError):
        detail = str(exc).split(": not found: ", 1)[-1]
        return NotFound(f"manifest for {ref.familiar()} not found: {detail}")
    if isinstance(exc, PlatformError):
        return NotFound(str(exc))
    if isinstance(exc, ErrorKind):  # already worded for the client
        return exc
    return SystemFailure(str(exc))


async def prepare_pull(
    service: ImageService,
    ref: ImageReference,
    *,
    platform: Platform | None,
    credentials: Credentials | None,
) -> PreparedPull:
    """Resolve ``ref`` on its registry to one image manifest (raises error kinds)."""
    client = RegistryClient(service.registry_config, credentials=credential_provider())
    repo: Repository | None = None
    try:
        repo = client.repository(ref, credentials=credentials)
        resolved = await repo.resolve(ref.object, platform)
        if resolved.manifest.media_type not in mediatypes.MANIFEST_TYPES:
            raise InvalidArgument(f"unsupported manifest type {resolved.manifest.media_type}")
    except BaseException as exc:
        hint = ""
        if isinstance(exc, RegistryNotFoundError) and repo and ref.tag and not ref.digest:
            hint = await _tag_hint(repo, ref)
        await client.close()
        if isinstance(exc, DaemonError):
            kind = registry_error(exc, ref)  # dockerd's words first, then what it means
            raise type(kind)(f"{kind}{hint}") from None
        raise
    assert repo is not None
    return PreparedPull(service, ref, client, repo, resolved)


_TAG_LOOKUP_TIMEOUT = 10.0


async def _tag_hint(repo: Repository, ref: ImageReference) -> str:
    """``: the tag 'x' is not in repository R (close tags: ...)`` when the registry lists
    the repository's tags; what it cannot list is left unsaid."""
    where = f"repository {ref.familiar_name()}"
    try:
        tags = await asyncio.wait_for(repo.list_tags(), _TAG_LOOKUP_TIMEOUT)
    except (DaemonError, ErrorKind, TimeoutError, OSError, ValueError):
        return f": the tag '{ref.tag}' is not in {where}"
    if not tags:
        return f": {where} has no tags (does it exist?)"
    close = difflib.get_close_matches(ref.tag or "", tags, n=5, cutoff=0.4)
    shown = close or sorted(tags)[-5:]
    label = "close tags" if close else "some of its tags"
    return f": the tag '{ref.tag}' is not in {where} ({label}: {', '.join(shown)})"


@dataclass
class _LayerJob:
    desc: Descriptor
    diff_id: str
    chain_id: str
    present: bool


class PreparedPull:
    """A resolved pull, ready to run; owns its registry client until ``run`` ends."""

    def __init__(
        self,
        service: ImageService,
        ref: ImageReference,
        client: RegistryClient,
        repo: Repository,
        resolved: ResolvedImage,
    ) -> None:
        self.service = service
        self.ref = ref
        self.client = client
        self.repo = repo
        self.resolved = resolved
        top = resolved.index or resolved.manifest
        self.top_digest = top.digest
        self.record: ImageRecord | None = None

    async def close(self) -> None:
        """Close the registry client (``run`` does it; call it if ``run`` is never called)."""
        await self.client.close()

    async def run(self, emit: Emit) -> bool:
        """Pull, sending progress messages to ``emit``; False (and an error message) on
        failure. Cancelling it stops the pull and leaves nothing registered."""
        svc = self.service
        lease = svc.claim_resumable(self.resolved.manifest.digest)
        if lease is not None:
            try:
                await asyncio.to_thread(svc.metadata.renew_lease, lease.id, _LEASE_TTL)
            except LeaseNotFoundError:  # expired meanwhile: what it held may be gone
                lease = None
        if lease is None:
            lease = await asyncio.to_thread(
                svc.metadata.create_lease,
                _LEASE_TTL,
                lease_id=f"{PULL_LEASE_PREFIX}{uuid.uuid4().hex}",
            )
        done = False
        try:
            tag_id = self.ref.digest or self.ref.tag or "latest"
            emit(status_message(f"Pulling from {self.ref.path}", tag_id))
            updated = await self._pull(lease.id, emit)
            done = True
            emit(status_message(f"Digest: {self.top_digest}"))
            verb = "Downloaded newer image" if updated else "Image is up to date"
            emit(status_message(f"Status: {verb} for {self.ref.familiar()}"))
            name = self.ref.familiar()
            svc.events.publish("image", "pull", name, {"name": self.ref.familiar_name()})
            return True
        except DaemonError as exc:
            emit(error_message(str(registry_error(exc, self.ref))))
            return False
        finally:
            if done:
                await asyncio.shield(asyncio.to_thread(svc.metadata.delete_lease, lease.id))
            else:
                # Failed or cancelled: what it verified stays for a retry, for a while.
                await asyncio.shield(asyncio.to_thread(svc.keep_resumable, lease, _RESUME_TTL))
            await asyncio.shield(self.client.close())

    async def _lease(self, lease_id: str, *resources: LeaseResource) -> None:
        await asyncio.to_thread(_add_to_lease, self.service, lease_id, resources)

    async def _pull(self, lease_id: str, emit: Emit) -> bool:
        svc, manifest, index = self.service, self.resolved.manifest, self.resolved.index
        blobs = [m for m in (manifest, index) if m is not None]
        await self._lease(lease_id, *(LeaseResource("content", m.digest) for m in blobs))
        for m in blobs:
            await asyncio.to_thread(svc.store.put, m.data, expected=m.digest)
        doc = manifest.json()
        config_desc = Descriptor.from_json(doc.get("config"))
        raw_layers = doc.get("layers")
        if not isinstance(raw_layers, list):
            raise ContentError(f"manifest {manifest.digest} has no layers list")
        layers = [Descriptor.from_json(layer) for layer in raw_layers]
        for layer in layers:
            if layer.media_type not in mediatypes.LAYER_TYPES:
                raise ContentError(f"unsupported layer media type {layer.media_type}")
        await self._lease(lease_id, LeaseResource("content", config_desc.digest))
        config_data = await self._config(config_desc)
        config = json.loads(config_data)
        diff_ids = _diff_ids(config, len(layers))
        chains = chain_ids(diff_ids)
        previous = await asyncio.to_thread(self._current_image_id)
        await self._lease(
            lease_id,
            *(LeaseResource("content", d.digest) for d in layers),
            *(LeaseResource("ingest", _ingest_ref(d.digest)) for d in layers),
            *(LeaseResource("snapshot", c) for c in chains),
        )
        jobs = [
            _LayerJob(d, diff, chain, await asyncio.to_thread(self._present, d, chain))
            for d, diff, chain in zip(layers, diff_ids, chains, strict=True)
        ]
        # Up to date: the tag already names this image and every layer is here.
        quiet = previous == config_desc.digest and all(j.present for j in jobs)
        sizes = await self._fetch_and_unpack(jobs, emit, quiet=quiet)
        record = ImageRecord(
            id=config_desc.digest,
            manifest=Descriptor(manifest.media_type, manifest.digest, manifest.size),
            config=Descriptor(config_desc.media_type, config_desc.digest, config_desc.size),
            layers=tuple(
                ImageLayer(
                    Descriptor(j.desc.media_type, j.desc.digest, j.desc.size), j.diff_id, j.chain_id
                )
                for j in jobs
            ),
            platform=_config_platform(config),
            created=config.get("created") if isinstance(config.get("created"), str) else None,
            size=sum(sizes),
            index=(
                Descriptor(index.media_type, index.digest, index.size)
                if index is not None
                else None
            ),
        )
        self.record = record
        names = [str(self.ref), f"{self.ref.repository}@{self.top_digest}"]
        if self.ref.digest is not None:
            names = names[1:]
        await asyncio.shield(asyncio.to_thread(svc.metadata.put_image, record, names=names))
        return previous != record.id

    def _current_image_id(self) -> str | None:
        with contextlib.suppress(DaemonError):
            return self.service.metadata.resolve(str(self.ref)).id
        return None

    def _present(self, desc: Descriptor, chain: str) -> bool:
        svc = self.service
        return svc.store.exists(desc.digest) and svc.snapshotter.exists(chain)

    async def _config(self, desc: Descriptor) -> bytes:
        store = self.service.store
        if await asyncio.to_thread(store.exists, desc.digest):
            return await asyncio.to_thread(store.read, desc.digest)
        data = await self.repo.fetch_blob_bytes(desc.digest)
        if len(data) != desc.size:
            raise ContentError(f"config {desc.digest}: expected {desc.size} bytes, got {len(data)}")
        await asyncio.to_thread(store.put, data, expected=desc.digest)
        return data

    async def _fetch_and_unpack(
        self, jobs: list[_LayerJob], emit: Emit, *, quiet: bool = False
    ) -> list[int]:
        loop = asyncio.get_running_loop()
        for job in [] if quiet else jobs:
            status = "Already exists" if job.present else "Pulling fs layer"
            emit(status_message(status, short_id(job.desc.digest), detail=True))
        limit = asyncio.Semaphore(self.service.max_concurrent_downloads)
        downloads: dict[str, asyncio.Task[None]] = {}
        for job in jobs:
            if not job.present and job.desc.digest not in downloads:
                downloads[job.desc.digest] = asyncio.create_task(
                    self._download(job.desc, limit, emit)
                )
        snapshotter = self.service.snapshotter
        independent = snapshotter.independent_layers
        slots = asyncio.Semaphore(UNPACK_CONCURRENCY if independent else 1)
        parents = [None, *(j.chain_id for j in jobs[:-1])]
        committed = [asyncio.Event() for _ in jobs]
        stages = [
            asyncio.create_task(
                self._stage(
                    job,
                    parent,
                    downloads.get(job.desc.digest),
                    # A copying snapshotter starts from the parent's committed tree.
                    None if independent or index == 0 else committed[index - 1],
                    slots,
                    emit,
                    loop,
                )
            )
            for index, (job, parent) in enumerate(zip(jobs, parents, strict=True))
        ]
        claimed: set[int] = set()
        try:
            sizes: list[int] = []
            for index, (job, parent) in enumerate(zip(jobs, parents, strict=True)):
                staged = await stages[index]
                claimed.add(index)
                size = await self._commit(job, parent, staged, emit)
                committed[index].set()
                sizes.append(size)
            return sizes
        finally:
            for task in (*stages, *downloads.values()):
                task.cancel()
            await _settle(self._discard_unclaimed(stages, claimed))
            await _settle(asyncio.gather(*downloads.values(), return_exceptions=True))

    async def _discard_unclaimed(
        self, stages: list[asyncio.Task[StagedLayer | None]], claimed: set[int]
    ) -> None:
        """Wait for every staging to end; throw away what was staged but not committed."""
        await asyncio.gather(*stages, return_exceptions=True)
        for index, task in enumerate(stages):
            if index in claimed or task.cancelled() or task.exception() is not None:
                continue
            staged = task.result()
            if staged is not None:
                await asyncio.to_thread(self.service.snapshotter.abort, staged.prepared)

    async def _download(self, desc: Descriptor, limit: asyncio.Semaphore, emit: Emit) -> None:
        store, lid = self.service.store, short_id(desc.digest)
        async with limit:
            try:
                writer = await _open_closing_if_cancelled(
                    lambda: store.writer(
                        _ingest_ref(desc.digest), expected=desc.digest, size=desc.size
                    )
                )
            except BlobExistsError:
                emit(status_message("Download complete", lid, detail=True))
                return
            throttle = ProgressThrottle(desc.size)

            def progress(current: int) -> None:
                failpoints.hit("pull-download")
                if throttle.due(current):
                    emit(progress_message("Downloading", lid, current, desc.size))

            try:
                offset = writer.offset
                try:
                    await self.repo.fetch_blob(
                        desc.digest,
                        writer,
                        size=desc.size,
                        offset=offset,
                        hasher=writer.hasher() if offset else None,
                        progress=progress,
                    )
                except ContentError:
                    if not offset:
                        raise
                    # The bytes an earlier attempt left did not lead to the digest: they
                    # cannot be told from the new ones, so all go; one more try from zero.
                    writer.truncate()
                    await self.repo.fetch_blob(desc.digest, writer, size=desc.size,
                                               progress=progress)  # fmt: skip
                emit(status_message("Verifying Checksum", lid, detail=True))
                failpoints.hit("pull-blob-before-commit")
                await _to_completion(writer.commit)
            except ContentError:
                # Bytes that do not hash to the digest must not be resumed from later.
                writer.close()
                await asyncio.to_thread(store.abort, writer.ref)
                raise
            finally:
                writer.close()
        emit(status_message("Download complete", lid, detail=True))

    async def _stage(
        self,
        job: _LayerJob,
        parent: str | None,
        download: asyncio.Task[None] | None,
        parent_committed: asyncio.Event | None,
        slots: asyncio.Semaphore,
        emit: Emit,
        loop: asyncio.AbstractEventLoop,
    ) -> StagedLayer | None:
        """Unpack a layer into a staged snapshot once it is downloaded (and, for a copying
        snapshotter, its parent committed); None if its snapshot already exists."""
        svc, lid = self.service, short_id(job.desc.digest)
        if download is not None:
            await asyncio.shield(download)  # cancelled with the pull, not with this task
        if parent_committed is not None:
            await parent_committed.wait()
        async with slots:
            if await asyncio.to_thread(svc.snapshotter.exists, job.chain_id):
                return None
            throttle = ProgressThrottle(job.desc.size)

            def report(current: int) -> None:
                if throttle.due(current):
                    msg = progress_message("Extracting", lid, current, job.desc.size)
                    loop.call_soon_threadsafe(emit, msg)

            def discard(staged: StagedLayer) -> None:
                svc.snapshotter.abort(staged.prepared)

            return await _finish_in_thread(
                lambda: self._apply(job, parent, report), discard=discard
            )

    async def _commit(
        self, job: _LayerJob, parent: str | None, staged: StagedLayer | None, emit: Emit
    ) -> int:
        """Publish a staged layer (its parent is committed by now) and record it."""
        svc = self.service
        if staged is None:
            info = await asyncio.to_thread(svc.snapshotter.info, job.chain_id)
            size = info.size
        else:
            await asyncio.shield(asyncio.to_thread(svc.snapshotter.commit_staged, staged))
            size = staged.size
        layer = Layer(job.chain_id, job.diff_id, parent, size, time.time())
        await asyncio.to_thread(svc.metadata.put_layer, layer)
        if not job.present:
            emit(status_message("Pull complete", short_id(job.desc.digest), detail=True))
        return size

    def _apply(
        self, job: _LayerJob, parent: str | None, report: Callable[[int], None]
    ) -> StagedLayer:
        svc = self.service
        with svc.store.open(job.desc.digest) as blob:
            return svc.snapshotter.stage_layer(
                parent, _CountingReader(blob, report), diff_id=job.diff_id
            )


def _add_to_lease(
    service: ImageService, lease_id: str, resources: tuple[LeaseResource, ...]
) -> None:
    service.metadata.add_lease_resources(lease_id, resources)


class _CountingReader:
    """A blob file that reports how many bytes were read (Extracting progress)."""

    def __init__(self, source: BinaryIO, report: Callable[[int], None]) -> None:
        self._source = source
        self._report = report
        self._count = 0

    def read(self, size: int = -1, /) -> bytes:
        data = self._source.read(size)
        self._count += len(data)
        self._report(self._count)
        return data


def _ingest_ref(digest: str) -> str:
    return f"pull-{digest}"


def _diff_ids(config: Any, layer_count: int) -> list[str]:
    rootfs = config.get("rootfs") if isinstance(config, dict) else None
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ContentError("image config has no rootfs.diff_ids list")
    if len(diff_ids) != layer_count:
        raise ContentError(f"image config lists {len(diff_ids)} diff IDs for {layer_count} layers")
    try:
        chain_ids(diff_ids)
    except ValueError as exc:
        raise ContentError(f"image config: {exc}") from None
    return list(diff_ids)


def _config_platform(config: Any) -> Platform:
    os_name = config.get("os") if isinstance(config.get("os"), str) else "linux"
    arch = config.get("architecture") if isinstance(config.get("architecture"), str) else ""
    variant = config.get("variant") if isinstance(config.get("variant"), str) else None
    return Platform(os_name, arch or "amd64", variant or None)


async def _wait_through_cancellation(task: asyncio.Future[Any]) -> bool:
    """Wait for ``task`` to end whatever happens to the caller; True when the caller was
    cancelled meanwhile (the caller re-raises once it has dealt with the result)."""
    cancelled = False
    while True:
        try:
            await asyncio.shield(task)
            return cancelled
        except asyncio.CancelledError:
            if task.done():
                return cancelled
            cancelled = True


async def _to_completion(func: Callable[[], object]) -> None:
    """Run ``func`` in a worker thread to its end, even when the caller is cancelled
    meanwhile (then re-raise the cancellation): a blob's commit must not find its writer
    closed under it by the clean-up of a pull another layer made fail."""
    task = asyncio.ensure_future(asyncio.to_thread(func))
    cancelled = await _wait_through_cancellation(task)
    if cancelled:
        if not task.cancelled() and task.exception() is not None:
            log.warning("a commit finished after its pull was cancelled: %s", task.exception())
        raise asyncio.CancelledError


async def _finish_in_thread(func: Callable[[], _T], *, discard: Callable[[_T], None]) -> _T:
    """Run ``func`` in a worker thread to its end, even when the caller is cancelled
    meanwhile; then hand what it made to ``discard`` (in a thread, also to its end) and
    re-raise the cancellation, so a cancelled pull leaves no staged layer behind."""
    task = asyncio.ensure_future(asyncio.to_thread(func))
    cancelled = await _wait_through_cancellation(task)
    if cancelled:
        if not task.cancelled() and task.exception() is None:
            await _settle(asyncio.to_thread(discard, task.result()))
        raise asyncio.CancelledError
    return task.result()


async def _settle(awaitable: Any) -> None:
    """Await ``awaitable`` to its end even if cancelled meanwhile (then re-raise that); a
    failure of its own is logged: the caller is cleaning up and only waits."""
    task = asyncio.ensure_future(awaitable)
    cancelled = False
    while not task.done():
        try:
            await asyncio.shield(task)
        except asyncio.CancelledError:
            cancelled = cancelled or not task.done() or task.cancelled()
        except Exception:
            break
    if not task.cancelled() and task.exception() is not None:
        log.warning("clean-up after a pull failed: %s", task.exception())
    if cancelled:
        raise asyncio.CancelledError


async def _open_closing_if_cancelled(open_writer: Callable[[], Any]) -> Any:
    """Open an ingest writer in a worker thread. When the pull is cancelled meanwhile (another
    layer failed it), the thread still opens it and holds the ingest's lock: close it then,
    or the next pull of the same blob waits for that lock for ever."""
    task = asyncio.ensure_future(asyncio.to_thread(open_writer))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:

        def close(done: asyncio.Future[Any]) -> None:
            if not done.cancelled() and done.exception() is None:
                done.result().close()

        task.add_done_callback(close)
        raise
