"""Each step's result as an image, the way dockerd's classic builder keeps them.

Every step that is not served from the cache produces an image: the previous image's
layers (plus the step's layer, if its diff was not empty), the config the frontend computed
for the step, and the history with one more entry. It is registered untagged, linked to
its parent (``image_parents``: ``docker inspect`` shows ``Parent``, and ``docker images``
hides untagged images that have children, as dockerd does) and remembered in the build
cache under the step's key. A stage's last image is what ``FROM <stage>`` and
``COPY --from`` use; the target's is tagged.

The config document is dockerd's: ``config`` with ``Image`` set to the parent's ID,
``container_config`` (the step's run config), ``created``, ``docker_version``, the history,
``os``/``architecture``/``variant`` of the parent, ``rootfs``. ``container`` names the
``RUN`` container, except in a reproducible build (``SOURCE_DATE_EPOCH``), where nothing
random may enter the image ID.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass
from typing import Any

from declarun import __version__
from declarun.daemon.images.inspect import image_config
from declarun.daemon.images.newimage import StoredLayer, register_image
from declarun.daemon.images.platform import Platform as ImagePlatform
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import BuildCacheEntry, Image, ImageLayer, LeaseResource
from declarun.dockerfile import Step, image_document

__all__ = ["StepImage", "commit_step", "record_cache", "scratch_image", "step_image"]


@dataclass(frozen=True)
class StepImage:
    """The image a stage has reached (``image`` None: ``scratch`` before any step)."""

    image: Image | None
    document: dict[str, Any]
    platform: ImagePlatform

    @property
    def id(self) -> str:
        """The image ID (``""`` for scratch)."""
        return self.image.id if self.image is not None else ""

    @property
    def layers(self) -> tuple[ImageLayer, ...]:
        """The image's layers, base first."""
        return self.image.record.layers if self.image is not None else ()

    @property
    def chain_id(self) -> str | None:
        """The chain ID of the top layer (None: no layer)."""
        layers = self.layers
        return layers[-1].chain_id if layers else None

    @property
    def size(self) -> int:
        """Docker's ``Size`` of the image."""
        return self.image.record.size if self.image is not None else 0


def scratch_image(platform: ImagePlatform) -> StepImage:
    """The empty starting point of ``FROM scratch``."""
    document: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    }
    if platform.variant:
        document["variant"] = platform.variant
    return StepImage(None, document, platform)


def step_image(svc: ImageService, image: Image, lease_id: str | None = None) -> StepImage:
    """An existing image as a starting point (blocking: reads its config); with
    ``lease_id`` the image is held by that lease."""
    if lease_id is not None:
        svc.metadata.add_lease_resources(lease_id, [LeaseResource("image", image.id)])
    return StepImage(image, image_config(svc, image), image.record.platform)


def commit_step(
    svc: ImageService,
    lease_id: str,
    parent: StepImage,
    step: Step,
    *,
    layer: StoredLayer | None,
    created: str,
    source_hash: str | None = None,
    container_id: str = "",
    history: dict[str, Any] | None = None,
) -> StepImage:
    """Register the image ``step`` produced on ``parent`` (blocking; see the module doc).

    ``history`` replaces the step's own history entry (an image restored from a
    ``cachefrom`` source keeps that source's entry).
    """
    entry = step.history(empty_layer=layer is None, source_hash=source_hash, created=created)
    config = dataclasses.replace(step.config, image=parent.id)
    container_config = dataclasses.replace(
        step.container_config(source_hash=source_hash), image=parent.id
    )
    parent_doc = parent.document
    extra: dict[str, Any] = {"docker_version": __version__}
    if container_id:
        extra = {"container": container_id, **extra}
    variant = parent_doc.get("variant")
    document = image_document(
        config=config,
        history=[entry],
        diff_ids=[] if layer is None else [layer.layer.diff_id],
        created=created,
        architecture=str(parent_doc.get("architecture") or parent.platform.architecture),
        os=str(parent_doc.get("os") or parent.platform.os),
        variant=variant if isinstance(variant, str) else "",
        author=step.author,
        container_config=container_config,
        extra=extra,
    )
    before = parent_doc.get("history")
    earlier = [h for h in before if isinstance(h, dict)] if isinstance(before, list) else []
    document["history"] = [*earlier, history if history is not None else entry.to_docker()]
    rootfs = parent_doc.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    document["rootfs"]["diff_ids"] = [
        *(diff_ids if isinstance(diff_ids, list) else ()),
        *document["rootfs"]["diff_ids"],
    ]
    layers = parent.layers if layer is None else (*parent.layers, layer.layer)
    size = parent.size + (layer.size if layer is not None else 0)
    record = register_image(svc, lease_id, document, layers, parent.platform, size=size)
    # Until the build ends, its lease keeps the image from ``image prune`` and GC.
    svc.metadata.add_lease_resources(lease_id, [LeaseResource("image", record.id)])
    if parent.id:
        svc.metadata.set_image_parent(record.id, parent.id)
    return StepImage(svc.metadata.get_image(record.id), document, parent.platform)


def record_cache(
    svc: ImageService, key: str, parent_key: str, result: StepImage, step: Step, layer_size: int
) -> None:
    """Remember ``result`` as the image of the step keyed ``key`` (blocking)."""
    now = time.time()
    svc.metadata.put_build_cache(
        BuildCacheEntry(
            key=key,
            image_id=result.id,
            parent=parent_key,
            description=step.instruction.original,
            size=layer_size,
            created=now,
            last_used=now,
        )
    )
