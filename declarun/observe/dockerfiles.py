"""The base images of the stack's builds, read from their Dockerfiles: the host side of the graph.

A built image needs the images its Dockerfile pulls: the ``FROM`` and ``--from`` images of
the stages its target needs, as the Dockerfile frontend resolves them
(:func:`declarun.stack.builds.base_references`: ``ARG``s filled from the build args, stage
names and ``scratch`` left out, stages the target does not need skipped). When one of those
is also an image of the stack, the dependency graph has an edge from the built image to it.
Reading the Dockerfile is I/O, so it happens here, when the world is observed, and the
result travels as data (:attr:`ObservedState.base_images
<declarun.plan.observed.ObservedState.base_images>`): the plan's graph and the one
``declarun graph`` draws are built from the same data.
"""

from __future__ import annotations

from declarun.dockerfile import FrontendError
from declarun.frozen import FrozenDict
from declarun.stack.builds import base_references
from declarun.stack.model import Build, Stack

__all__ = ["base_images", "dockerfile_base_images"]


def dockerfile_base_images(build: Build, platform: str | None = None) -> tuple[str, ...]:
    """The images ``build`` pulls, building for ``platform`` (None: this machine's).

    A Dockerfile that is missing or does not parse yields nothing: loading the stack
    reports it, and a build would fail on it.
    """
    try:
        return base_references(build, platform)
    except FrontendError:
        return ()


def base_images(stack: Stack, platform: str | None = None) -> FrozenDict[str, tuple[str, ...]]:
    """Every built image of ``stack`` (by name) with the images its Dockerfile pulls; each
    is built for its own ``platform:``, else for ``platform`` (the engine's)."""
    return FrozenDict(
        sorted(
            (name, dockerfile_base_images(image.build, image.platform or platform))
            for name, image in stack.images.items()
            if image.build is not None
        )
    )
