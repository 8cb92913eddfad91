"""Names of the things a stack declares, in one place so every stage agrees on them."""

from __future__ import annotations

from declarun.errors import ImageReferenceError
from declarun.reference import parse_reference
from declarun.stack.model import Container, Image, Stack

__all__ = [
    "built_image_tag",
    "image_for_reference",
    "image_reference",
    "reference_key",
    "replica_names",
]


def replica_names(container: Container) -> list[str]:
    """The names of a container's replicas: ``web`` alone, or ``web-1`` .. ``web-N``."""
    if container.replicas == 1:
        return [container.name]
    return [f"{container.name}-{index}" for index in range(1, container.replicas + 1)]


def built_image_tag(stack: str, image: str) -> str:
    """The tag given to a built image that declares no ``ref``: ``<stack>-<image>:latest``."""
    return f"{stack}-{image.lower()}:latest"


def image_reference(stack: Stack, image: Image) -> str | None:
    """The reference an image is known by: its ``ref``, else (built) its stack-owned tag."""
    if image.ref is not None:
        return image.ref
    if image.build is not None:
        return built_image_tag(stack.name, image.name)
    return None


def reference_key(text: str) -> str | None:
    """``text`` as Docker normalises a reference (``busybox`` -> ``docker.io/library/
    busybox:latest``), so two spellings of one image compare equal; None when it is not one."""
    try:
        return str(parse_reference(text))
    except ImageReferenceError:
        return None


def image_for_reference(stack: Stack, reference: str) -> str | None:
    """The stack image (by name) a Dockerfile's ``FROM reference`` names, or None.

    References are compared as Docker normalises them: ``FROM shop-base`` names the image
    tagged ``shop-base:latest``. A stack image's *name* is not a reference: ``FROM base``
    means ``docker.io/library/base:latest`` to the builder, whatever ``images: {base: ...}``
    says.
    """
    wanted = reference_key(reference)
    if wanted is None:
        return None
    for name, image in stack.images.items():
        known = image_reference(stack, image)
        if known is not None and reference_key(known) == wanted:
            return name
    return None
