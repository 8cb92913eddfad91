"""What each built image of a stack would be built from now, and what it was built from.

For every image with a ``build:``, at each observation:

* the Dockerfile is read (its sha256) and planned with the frontend for the image's
  platform (else the engine's): the base images it pulls;
* the context is digested as the docker CLI would send it (``.dockerignore`` applied), with
  the digest cache of :mod:`declarun.observe.buildcache`, so a repeat reads only files whose
  ``(size, mtime, inode, device)`` changed; its per-file digests are kept under its root
  digest;
* each base image's identity is the lock's pinned digest when a lock pins it, else the id
  of the local image it names (a base not present is left out: the build pulls it);
* the image the tag names now is inspected, and the record of its build read;
* when the context's root digest differs from the recorded one and the recorded file list
  is still kept, the files added, removed and modified are listed.

The result is an :class:`~declarun.plan.observed.ObservedBuild` per image, part of the
observed state: the plan compares them without reading anything (``plan.builds``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from declarun.engine.port import Engine
from declarun.errdefs import NotFound
from declarun.frozen import FrozenDict
from declarun.observe.buildcache import (
    digest_cache_path,
    read_context_map,
    read_record,
    write_context_map,
)
from declarun.plan.buildinputs import MAX_LISTED_FILES, FileChanges, build_inputs
from declarun.plan.lock import Lock
from declarun.plan.observed import ObservedBuild
from declarun.stack.builds import dockerfile_in_context, plan_dockerfile, read_dockerfile
from declarun.stack.model import Image, Stack
from declarun.stack.naming import image_reference

if TYPE_CHECKING:
    from declarun.dockerfile import ContextChanges

__all__ = ["file_changes", "observe_build", "observe_builds"]


def file_changes(changes: ContextChanges, dockerfile: str | None) -> FileChanges:
    """``changes`` as the observed state keeps them: the Dockerfile left out (it has its own
    reason), at most :data:`MAX_LISTED_FILES` paths of each kind, the count exact."""

    def kept(paths: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(p for p in paths if p != dockerfile)

    added, removed, modified = kept(changes.added), kept(changes.removed), kept(changes.modified)
    return FileChanges(
        added=added[:MAX_LISTED_FILES],
        removed=removed[:MAX_LISTED_FILES],
        modified=modified[:MAX_LISTED_FILES],
        count=len(added) + len(removed) + len(modified),
    )


class _ImageIds:
    """Local image ids by reference, each asked of the engine once per observation."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.known: dict[str, str | None] = {}

    def __call__(self, ref: str) -> str | None:
        if ref not in self.known:
            try:
                self.known[ref] = self.engine.inspect_image(ref).id
            except NotFound:
                self.known[ref] = None
        return self.known[ref]


def observe_build(
    stack: Stack,
    image: Image,
    *,
    platform: str,
    lock: Lock | None = None,
    image_id: Callable[[str], str | None] = lambda ref: None,
) -> ObservedBuild:
    """One built image as observed now; ``image_id(ref)`` gives the local image id a
    reference names (None when absent): :func:`observe_builds` asks the engine."""
    build = image.build
    tag = image_reference(stack, image)
    assert build is not None and tag is not None
    # Imported here: a stack without builds needs no Dockerfile frontend.
    from declarun.dockerfile import FrontendError, hash_context

    wanted_platform = image.platform or platform
    in_context = dockerfile_in_context(build)
    try:
        data, dockerfile = read_dockerfile(build)
        bases = plan_dockerfile(build, dockerfile, wanted_platform).external_images
        context = hash_context(
            build.context, dockerfile=in_context, cache=digest_cache_path(build.context)
        )
    except FrontendError as exc:
        return ObservedBuild(problem=str(exc))
    write_context_map(context)
    identities: dict[str, str] = {}
    for ref in bases:
        pinned = None if lock is None else lock.pinned(ref, wanted_platform)
        found = pinned.rpartition("@")[2] if pinned is not None else image_id(ref)
        if found is not None:
            identities[ref] = found
    inputs = build_inputs(
        build,
        platform=image.platform,
        context=context.digest,
        dockerfile="sha256:" + hashlib.sha256(data).hexdigest(),
        bases=identities,
    )
    present = image_id(tag)
    recorded = None if present is None else read_record(tag, present)
    changes = None
    if recorded is not None and recorded.context != inputs.context:
        before = read_context_map(recorded.context)
        if before is not None:
            changes = file_changes(before.changes(context), in_context)
    return ObservedBuild(inputs=inputs, recorded=recorded, changes=changes)


def observe_builds(
    engine: Engine, stack: Stack, *, platform: str, lock: Lock | None = None
) -> FrozenDict[str, ObservedBuild]:
    """Every built image of ``stack`` (by name) as observed now (see the module docstring).

    ``platform`` is the engine's; ``lock`` pins base images. Raises the engine's error kinds.
    """
    image_id = _ImageIds(engine)
    found: Mapping[str, ObservedBuild] = {
        name: observe_build(stack, image, platform=platform, lock=lock, image_id=image_id)
        for name, image in stack.images.items()
        if image.build is not None
    }
    return FrozenDict(sorted(found.items()))
