"""The image service as the container service sees it (:class:`ImageSource`).

The composition root (:mod:`declarun.daemon.wiring`) builds the container service over
:class:`ServiceImages`, so containers reach images through the four questions they ask and
nothing else.
"""

from __future__ import annotations

from typing import Any

from declarun.daemon.images.inspect import image_config
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import Image, ImageNotFoundError

__all__ = ["ServiceImages"]


class ServiceImages:
    """The image service as container creation sees it (:class:`ImageSource`)."""

    def __init__(self, images: ImageService) -> None:
        self.images = images

    def resolve(self, name: str) -> Image:
        """The image ``name`` refers to (ImageNotFoundError ``No such image: name``)."""
        return self.images.resolve(name)

    def config_document(self, image: Image) -> dict[str, Any]:
        """The image's config JSON."""
        return image_config(self.images, image)

    def ensure_snapshot(self, image: Image) -> None:
        """Apply missing layers (an image loaded but never unpacked)."""
        layers = image.record.layers
        if layers and not self.images.snapshotter.exists(layers[-1].chain_id):
            self.images.ensure_unpacked(image.record)

    def size_of(self, image_id: str) -> int:
        """Bytes of the image ``image_id`` (0 when it was deleted meanwhile)."""
        try:
            return self.images.metadata.get_image(image_id).record.size
        except ImageNotFoundError:
            return 0
