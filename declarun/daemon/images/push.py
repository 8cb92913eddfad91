"""``docker push``: an image's blobs and manifest from the content store to a registry.

For each tag of the repository asked for (one, or all with an empty tag) the layers go
up in parallel (skipped when the registry has them, mounted from another repository of
the same registry that this image was pulled from or pushed to, uploaded otherwise),
then the config, then the manifest -- the very bytes stored, so the registry serves the
digest the local image has. Messages are dockerd's: ``The push refers to repository
[...]``, per layer ``Preparing``/``Pushing``/``Pushed``/``Layer already exists``/
``Mounted from ...``, and ``TAG: digest: sha256:... size: N`` with an ``aux`` record.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import Callable
from typing import BinaryIO

from declarun.daemon.images.auth import Credentials
from declarun.daemon.images.progress import (
    Emit,
    ProgressThrottle,
    aux_message,
    error_message,
    progress_message,
    short_id,
    status_message,
)
from declarun.daemon.images.pull import credential_provider
from declarun.daemon.images.registry import RegistryClient, Repository
from declarun.daemon.images.registry_push import PushResult, push_blob, put_manifest
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import Image
from declarun.errdefs import NotFound
from declarun.errors import DaemonError
from declarun.reference import ImageReference, parse_reference

__all__ = ["push_targets", "run_push"]

_MAX_PARALLEL_UPLOADS = 5


def push_targets(
    service: ImageService, repo: ImageReference, tag: str
) -> list[tuple[ImageReference, Image]]:
    """The ``(reference, image)`` pairs to push: one tag, or every tag of ``repo``."""
    if tag:
        ref = repo.with_tag(tag)
        try:
            return [(ref, service.metadata.resolve(str(ref)))]
        except DaemonError:
            raise NotFound(f"tag does not exist: {ref.familiar()}") from None
    found = []
    for image in service.metadata.list_images():
        for name in image.tags:
            ref = parse_reference(name)
            if ref.repository == repo.repository:
                found.append((ref, image))
    if not found:
        raise NotFound(f"An image does not exist locally with the tag: {repo.familiar_name()}")
    return sorted(found, key=lambda pair: str(pair[0]))


class _ProgressFile(io.FileIO):
    """A blob file reporting the bytes read from it (the Pushing progress)."""

    def __init__(self, path: str, report: Callable[[int], None]) -> None:
        super().__init__(path, "r")
        self._report = report
        self._count = 0

    def read(self, size: int | None = -1, /) -> bytes:
        data = super().read(size)
        self._count += len(data or b"")
        self._report(self._count)
        return data or b""

    def seek(self, offset: int, whence: int = 0, /) -> int:
        position = super().seek(offset, whence)
        self._count = position
        return position


def _mount_sources(image: Image, target: ImageReference) -> list[str]:
    """Repositories on the target's registry known to hold this image's blobs."""
    sources = []
    for name in image.tags + image.digests:
        ref = parse_reference(name)
        if ref.domain == target.domain and ref.path != target.path and ref.path not in sources:
            sources.append(ref.path)
    return sources


async def _push_layer(
    service: ImageService,
    repo: Repository,
    digest: str,
    size: int,
    sources: list[str],
    limit: asyncio.Semaphore,
    emit: Emit,
) -> PushResult:
    lid = short_id(digest)
    loop = asyncio.get_running_loop()
    throttle = ProgressThrottle(size)
    path = str(service.store.blob_path(digest))

    def report(current: int) -> None:
        if throttle.due(current):
            loop.call_soon_threadsafe(emit, progress_message("Pushing", lid, current, size))

    def opener() -> BinaryIO:
        return _ProgressFile(path, report)

    async with limit:
        result = await push_blob(repo, digest, size, opener, mount_from=sources)
    if result.outcome == "exists":
        emit(status_message("Layer already exists", lid, detail=True))
    elif result.outcome == "mounted":
        emit(status_message(f"Mounted from {result.mounted_from}", lid, detail=True))
    else:
        emit(status_message("Pushed", lid, detail=True))
    return result


async def _push_one(
    service: ImageService,
    client: RegistryClient,
    ref: ImageReference,
    image: Image,
    credentials: Credentials | None,
    emit: Emit,
) -> None:
    repo = client.repository(ref, credentials=credentials)
    record = image.record
    layers = list(dict.fromkeys((layer.blob.digest, layer.blob.size) for layer in record.layers))
    for digest, _ in reversed(layers):
        emit(status_message("Preparing", short_id(digest), detail=True))
    sources = _mount_sources(image, ref)
    limit = asyncio.Semaphore(_MAX_PARALLEL_UPLOADS)
    tasks = [
        asyncio.create_task(_push_layer(service, repo, d, s, sources, limit, emit))
        for d, s in reversed(layers)
    ]
    try:
        await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    config = record.config
    config_path = str(service.store.blob_path(config.digest))
    await push_blob(repo, config.digest, config.size, lambda: io.FileIO(config_path, "r"))
    manifest = record.manifest
    data = await asyncio.to_thread(service.store.read, manifest.digest)
    digest = await put_manifest(repo, ref.tag or "latest", data, manifest.media_type)
    tag = ref.tag or "latest"
    emit(status_message(f"{tag}: digest: {digest} size: {len(data)}"))
    emit(aux_message({"Tag": tag, "Digest": digest, "Size": len(data)}))
    await asyncio.to_thread(service.metadata.tag, f"{ref.repository}@{digest}", image.id)
    service.events.publish("image", "push", ref.familiar(), {"name": ref.familiar_name()})


async def run_push(
    service: ImageService,
    repo: ImageReference,
    targets: list[tuple[ImageReference, Image]],
    credentials: Credentials | None,
    emit: Emit,
) -> bool:
    """Push every target, streaming messages; False (after an error message) on failure."""
    client = RegistryClient(service.registry_config, credentials=credential_provider())
    try:
        emit(status_message(f"The push refers to repository [{repo.repository}]"))
        for ref, image in targets:
            await _push_one(service, client, ref, image, credentials, emit)
        return True
    except DaemonError as exc:
        emit(error_message(str(exc)))
        return False
    finally:
        await asyncio.shield(client.close())
