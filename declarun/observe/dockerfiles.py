"""The base images of the stack's builds, read from their Dockerfiles: the host side of the graph.

A built image needs the images its Dockerfile starts ``FROM``; when one of those is also an
image of the stack, the dependency graph has an edge from the built image to it. Reading the
Dockerfile is I/O, so it happens here, when the world is observed, and the result travels as
data (:attr:`ObservedState.base_images <declarun.plan.observed.ObservedState.base_images>`):
the plan's graph and the one ``declarun graph`` draws are built from the same data.
"""

from __future__ import annotations

import re

from declarun.frozen import FrozenDict
from declarun.stack.model import Build, Stack

__all__ = ["base_images", "dockerfile_base_images"]

_FROM = re.compile(r"^\s*FROM\s+(?:--platform=\S+\s+)?(?P<image>\S+)", re.IGNORECASE)
_ARG = re.compile(r"\$\{?(?P<name>[A-Za-z_][A-Za-z0-9_]*)\}?")


def dockerfile_base_images(build: Build) -> tuple[str, ...]:
    """The images a build starts FROM, with ``${ARG}`` filled from build args where given.

    Reads the Dockerfile if it is there; a missing file yields nothing (the build will report it).
    Stage names (``FROM base AS builder`` then ``FROM builder``) are not images and are skipped.
    """
    try:
        text = (build.context / build.dockerfile).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    stages: set[str] = set()
    bases: list[str] = []
    for line in text.splitlines():
        match = _FROM.match(line)
        if match is None:
            continue
        image = _ARG.sub(lambda m: build.args.get(m.group("name"), m.group(0)), match["image"])
        parts = line.split()
        if len(parts) >= 4 and parts[-2].lower() == "as":
            stages.add(parts[-1].lower())
        if image.lower() not in stages and image.lower() != "scratch":
            bases.append(image)
    return tuple(dict.fromkeys(bases))


def base_images(stack: Stack) -> FrozenDict[str, tuple[str, ...]]:
    """Every built image of ``stack`` (by name) with the references its Dockerfile starts FROM."""
    return FrozenDict(
        sorted(
            (name, dockerfile_base_images(image.build))
            for name, image in stack.images.items()
            if image.build is not None
        )
    )
