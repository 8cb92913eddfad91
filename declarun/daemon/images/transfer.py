"""Images moving in and out without a pull or push: save, load, registry questions.

* :func:`prepare_save` resolves ``docker save`` names and checks every blob before the
  first byte, so a missing image or blob fails before the archive starts;
* :func:`load_images` registers a ``docker load`` archive, unpacks its layers and
  publishes a ``load`` event per name;
* :func:`distribution_info` asks the registry for an image's descriptor and platforms
  (``docker manifest inspect``, ``docker buildx imagetools``);
* :func:`check_login` checks credentials against a registry (``docker login``).

The first two are blocking (call them from a worker thread), the last two are coroutines.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from declarun.daemon.images.archive_load import LoadResult, load_archive
from declarun.daemon.images.archive_save import iter_save_archive, resolve_save_names
from declarun.daemon.images.archive_tar import Readable
from declarun.daemon.images.auth import Credentials
from declarun.daemon.images.content import BlobNotFoundError
from declarun.daemon.images.platform import Platform, select_manifest
from declarun.daemon.images.pull import credential_provider, registry_error
from declarun.daemon.images.registry import RegistryClient
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata.images import ImageInUseError, ImageNotFoundError
from declarun.errdefs import InvalidArgument, SystemFailure, Unauthorized
from declarun.errors import ContentError, DaemonError, RegistryError
from declarun.reference import ImageReference

__all__ = [
    "Distribution",
    "check_login",
    "distribution_info",
    "load_images",
    "login_domain",
    "prepare_save",
]


@dataclass(frozen=True)
class Distribution:
    """What ``GET /distribution/{name}/json`` answers."""

    descriptor: dict[str, Any]
    platforms: list[dict[str, Any]]


def prepare_save(service: ImageService, names: Sequence[str]) -> Iterator[bytes]:
    """The ``docker save`` archive of ``names`` as byte chunks (blocking).

    ImageNotFoundError/AmbiguousImageError for a name that means no or several images; a
    blob the store lost is the daemon's failure (its image exists), not a missing object.
    """
    if not names:
        raise InvalidArgument("no image names given to save")
    items = resolve_save_names(service.metadata, names)
    try:
        return iter_save_archive(service.store, items)
    except BlobNotFoundError as exc:
        raise SystemFailure(str(exc)) from None


def load_images(service: ImageService, body: Readable, *, platform: Platform | None) -> list[str]:
    """Register the images of a ``docker save`` archive and unpack them (blocking).

    Returns the lines ``docker load`` prints; a malformed archive is the caller's fault.
    """
    try:
        result = load_archive(service.store, service.metadata, body, platform=platform)
    except ContentError as exc:
        service.collect_garbage()  # the blobs the refused archive stored under its lease
        raise InvalidArgument(str(exc)) from None
    for image in result.images:
        try:
            service.ensure_unpacked(image.record)
        except BaseException:
            _forget_unpacked_badly(service, result)
            raise
        names = [ref.familiar() for ref in image.names] or [image.record.id]
        for name in names:
            service.events.publish("image", "load", image.record.id, {"name": name})
    return list(result.messages)


def _forget_unpacked_badly(service: ImageService, result: LoadResult) -> None:
    """Unregister the loaded images whose layers could not all be unpacked (a hostile or
    broken layer), and collect their blobs: an image is never left half-registered. The
    images of the archive that were unpacked stay, as do images stored before."""
    for image in result.images:
        record = image.record
        if all(service.snapshotter.exists(layer.chain_id) for layer in record.layers):
            continue
        references = service.metadata.image_references(record.id)
        for name in (*references.tags, *references.digests):
            with contextlib.suppress(ImageNotFoundError):
                service.metadata.untag(name)
        with contextlib.suppress(ImageNotFoundError, ImageInUseError):
            service.metadata.delete_image(record.id)
    service.collect_garbage()


async def distribution_info(
    service: ImageService, ref: ImageReference, credentials: Credentials | None
) -> Distribution:
    """The registry's descriptor of ``ref`` and the platforms it has images for."""
    async with RegistryClient(service.registry_config, credentials=credential_provider()) as client:
        repo = client.repository(ref, credentials=credentials)
        try:
            manifest = await repo.get_manifest(ref.object)
            platforms: list[dict[str, Any]] = []
            if manifest.is_index:
                for entry in manifest.json().get("manifests", []):
                    plat = entry.get("platform") if isinstance(entry, dict) else None
                    if isinstance(plat, dict):
                        platforms.append(plat)
                if not platforms:
                    select_manifest(manifest.data)  # explains an empty index
            else:
                config = manifest.json().get("config", {})
                data = await repo.fetch_blob_bytes(str(config.get("digest")))
                doc = json.loads(data)
                plat = {"architecture": doc.get("architecture", ""), "os": doc.get("os", "")}
                if doc.get("variant"):
                    plat["variant"] = doc["variant"]
                platforms.append(plat)
        except DaemonError as exc:
            raise registry_error(exc, ref) from None
    return Distribution(manifest.descriptor(), platforms)


def login_domain(server: str) -> str:
    """The registry domain a ``serveraddress`` names (Docker Hub's aliases as ``docker.io``)."""
    domain = server.split("://", 1)[-1].split("/", 1)[0] or "docker.io"
    if domain in ("index.docker.io", "registry-1.docker.io"):
        domain = "docker.io"
    return domain


async def check_login(service: ImageService, server: str, credentials: Credentials) -> None:
    """Check ``credentials`` against the registry ``server``; Unauthorized if refused."""
    domain = login_domain(server)
    async with RegistryClient(service.registry_config) as client:
        repo = client.repository(f"{domain}/library/login-check", credentials=credentials)
        try:
            resp, _ = await repo.request("GET", "/v2/", scopes=[])
            status = resp.status
            resp.release()
        except RegistryError as exc:
            raise Unauthorized(f"login attempt to {server} failed: {exc}") from None
    if status == 401:
        raise Unauthorized(f"login attempt to {server} failed with status: 401 Unauthorized")
