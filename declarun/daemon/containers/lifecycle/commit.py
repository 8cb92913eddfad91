"""``docker commit``: a container's writable layer becomes the top layer of a new image.

The layer is the container's changes (:mod:`~declarun.daemon.containers.rootfs.fsaccess`) as an uncompressed tar: added and
modified entries taken from the container's merged root, ``.wh.<name>`` entries for
deletions (an overlay opaque directory shows up as the deletions of what it hides). It is
stored in the content store, applied on the image's top snapshot, and registered with the
image's other layers, under a lease so garbage collection cannot take it half-way
(:mod:`declarun.daemon.images.newimage`, which the image builder uses too).

The new config is the image's with ``config`` replaced by the container's (Cmd, Env,
Entrypoint, WorkingDir, User, Labels, ExposedPorts, Volumes, Healthcheck, StopSignal) and
then the ``changes`` (Dockerfile instructions) applied; history gets one entry with the
comment and author.

:func:`commit_container` is the whole operation as ``POST /commit`` asks it: pause the
container (unless told not to), read its changes, commit them with its root mounted,
unpause it, and publish the ``commit`` event.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from declarun.daemon import failpoints
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.rootfs.changes import Change
from declarun.daemon.containers.rootfs.fsaccess import write_layer_tar
from declarun.daemon.images.importer import apply_changes
from declarun.daemon.images.inspect import image_config
from declarun.daemon.images.newimage import register_image, store_layer
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import ImageNotFoundError, ImageRecord
from declarun.errdefs import Conflict
from declarun.errors import DeclarunError
from declarun.reference import ImageReference

__all__ = ["CommitRequest", "commit_container", "commit_layer", "run_commit"]

log = logging.getLogger("declarun.daemon.containers.commit")

_LEASE_TTL = 24 * 3600.0
_CONFIG_KEYS = (
    ("User", "User"), ("ExposedPorts", "ExposedPorts"), ("Env", "Env"), ("Cmd", "Cmd"),
    ("Healthcheck", "Healthcheck"), ("WorkingDir", "WorkingDir"), ("Entrypoint", "Entrypoint"),
    ("Volumes", "Volumes"), ("Labels", "Labels"), ("StopSignal", "StopSignal"),
    ("OnBuild", "OnBuild"),
)  # fmt: skip


@dataclass(frozen=True)
class CommitRequest:
    """What ``POST /commit`` asked for."""

    name: ImageReference | None
    comment: str = ""
    author: str = ""
    changes: tuple[str, ...] = ()
    config_override: dict[str, Any] | None = None


def _container_image_config(record: Any) -> dict[str, Any]:
    inspect = record.config.to_inspect()
    config: dict[str, Any] = {}
    for source, target in _CONFIG_KEYS:
        value = inspect.get(source)
        if value not in (None, "", [], {}):
            config[target] = value
    return config


def commit_layer(
    svc: ImageService,
    record: Any,
    merged_root: Path,
    changes: list[Change],
    request: CommitRequest,
) -> ImageRecord:
    """Build, store and register the new image (blocking: run it in a thread)."""
    meta = svc.metadata
    try:
        parent = meta.get_image(record.image_id)
    except ImageNotFoundError:
        raise Conflict(f"the image of container {record.id} is gone") from None
    lease = meta.create_lease(_LEASE_TTL)
    try:
        stored = store_layer(
            svc,
            lease.id,
            record.chain_id,
            lambda out: write_layer_tar(merged_root, changes, out),
            ref_prefix="commit",
        )
        failpoints.hit("commit-midway")
        base: dict[str, Any] = image_config(svc, parent)
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        config = dict(base)
        container_config = _container_image_config(record)
        # The committed container's own config, as dockerd records it (API < 1.45 shows it
        # as the image's ContainerConfig).
        config["container_config"] = dict(container_config)
        if request.config_override:
            container_config.update(request.config_override)
        config["config"] = apply_changes(container_config, request.changes)
        config["created"] = now
        config["container"] = record.id
        if request.author:
            config["author"] = request.author
        rootfs = dict(base.get("rootfs") or {"type": "layers", "diff_ids": []})
        rootfs["diff_ids"] = [*rootfs.get("diff_ids", []), stored.layer.diff_id]
        config["rootfs"] = rootfs
        history = list(base.get("history") or [])
        entry: dict[str, Any] = {"created": now, "created_by": " ".join(
            [*(record.config.entrypoint or ()), *(record.config.cmd or ())])}  # fmt: skip
        if request.comment:
            entry["comment"] = request.comment
        if request.author:
            entry["author"] = request.author
        history.append(entry)
        config["history"] = history
        config.setdefault("architecture", parent.record.platform.architecture)
        config.setdefault("os", "linux")
        names = [str(request.name)] if request.name is not None else []
        return register_image(
            svc,
            lease.id,
            config,
            (*parent.record.layers, stored.layer),
            parent.record.platform,
            size=parent.record.size + stored.size,
            names=names,
        )
    finally:
        meta.delete_lease(lease.id)


async def run_commit(svc: ImageService, record: Any, merged_root: Path, changes: list[Change],
                     request: CommitRequest) -> ImageRecord:  # fmt: skip
    """:func:`commit_layer` in a worker thread, not cancelled by a client going away."""
    return await asyncio.shield(
        asyncio.to_thread(commit_layer, svc, record, merged_root, changes, request)
    )


async def commit_container(
    containers: ContainerService,
    images: ImageService,
    ref: str,
    request: CommitRequest,
    *,
    pause: bool = True,
) -> ImageRecord:
    """``docker commit``: the container ``ref`` as a new image (see the module docstring)."""
    record = containers.get(ref)
    paused_here = False
    if pause and record.state.running and not record.state.paused:
        await containers.pause(record.id)
        paused_here = True
    try:
        found = await containers.changes(record.id)
        async with containers.mounted_rootfs(record.id) as root:
            image = await run_commit(images, record, root, found, request)
    finally:
        if paused_here:
            try:
                await containers.unpause(record.id)
            except DeclarunError as exc:  # stopped or removed meanwhile: nothing to thaw
                log.warning("unpausing %s after commit: %s", record.id[:12], exc)
    attrs = {"comment": request.comment, "imageID": image.id}
    if request.name is not None:
        attrs["imageRef"] = request.name.familiar()
    containers.publish(record, "commit", attrs)
    return image
