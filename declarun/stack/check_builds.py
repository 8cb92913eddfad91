"""Checks of the stack's builds: what the schema cannot see, some of it on the host.

* a build's context is a directory that exists, and its ``.dockerignore`` parses;
* its Dockerfile exists, parses, and has the target stage asked for — a problem is located
  at the stack field that names the file, and its message carries the Dockerfile's own
  line: ``stack.yaml:6:19: images.app.build.dockerfile: app/Dockerfile:3: unknown
  instruction: RUNN (did you mean RUN?)``;
* a built image is tagged (with its ``ref``, else ``<stack>-<image>:latest``): the tag must
  be a valid reference without a digest, and no two images of the stack may be known by
  the same reference;
* builds must not start ``FROM`` each other in a loop.

The frontend (``declarun.dockerfile``) is imported only when the stack has a build.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from declarun.errors import ImageReferenceError, Problem
from declarun.reference import parse_reference
from declarun.stack.cycles import CycleFinder
from declarun.stack.model import Build, Image, Stack
from declarun.stack.naming import image_for_reference, image_reference, reference_key

__all__ = ["check_builds"]


def _field(name: str, build: Build, key: str) -> str:
    return f"images.{name}.build" if build.short_form else f"images.{name}.build.{key}"


def _check_tag(stack: Stack, name: str, image: Image) -> Iterator[Problem]:
    tag = image_reference(stack, image)
    if tag is None:
        return
    where = f"images.{name}.ref" if image.ref is not None else f"images.{name}"
    try:
        parsed = parse_reference(tag)
    except ImageReferenceError as exc:
        if image.ref is not None:
            yield Problem(image.location, where, str(exc))
        else:
            yield Problem(
                image.location,
                where,
                f"its name gives the built image the tag {tag!r}, which is not a valid "
                "image reference",
                "give the image a ref to be tagged with",
            )
        return
    if parsed.digest is not None:
        yield Problem(
            image.location,
            where,
            f"a built image is tagged with its ref, which cannot name a digest ({tag})",
        )


def _check_files(
    stack_dir: Path | None, name: str, image: Image, build: Build
) -> Iterator[Problem]:
    """Context, .dockerignore, Dockerfile and target of one build."""
    from declarun.dockerfile import BuildTargetError, FrontendError, context_matcher
    from declarun.stack.builds import (
        dockerfile_in_context,
        plan_dockerfile,
        read_dockerfile,
        shown_path,
    )

    context_field = _field(name, build, "context")
    shown_context = shown_path(build.context, stack_dir)
    if not build.context.is_dir():
        message = (
            f"the build context {shown_context} is not a directory"
            if build.context.exists()
            else f"the build context {shown_context} does not exist"
        )
        yield Problem(build.context_location, context_field, message)
        return
    try:
        context_matcher(build.context, dockerfile_in_context(build))
    except FrontendError as exc:
        yield Problem(
            build.context_location, context_field, f"{shown_context}/.dockerignore: {exc}"
        )
    dockerfile_field = _field(name, build, "dockerfile")
    shown = shown_path(build.dockerfile_path, stack_dir)
    try:
        _, dockerfile = read_dockerfile(build, shown=shown)
    except FrontendError as exc:
        yield Problem(build.dockerfile_location, dockerfile_field, str(exc))
        return
    try:
        plan_dockerfile(build, dockerfile, image.platform)
    except BuildTargetError as exc:
        yield Problem(build.target_location, _field(name, build, "target"), str(exc))
    except FrontendError as exc:
        yield Problem(build.dockerfile_location, dockerfile_field, str(exc))


def _check_unique_references(stack: Stack) -> Iterator[Problem]:
    """Two images known by one reference would overwrite each other's tag."""
    owners: dict[str, str] = {}
    for name, image in stack.images.items():
        known = image_reference(stack, image)
        key = None if known is None else reference_key(known)
        if key is None:
            continue
        other = owners.setdefault(key, name)
        if other != name and (image.build is not None or stack.images[other].build is not None):
            yield Problem(
                image.location,
                f"images.{name}",
                f"images '{other}' and '{name}' are both known as {known}: a built image "
                "needs a reference of its own",
            )


def _check_cycles(stack: Stack, parsed: set[str]) -> Iterator[Problem]:
    from declarun.dockerfile import FrontendError
    from declarun.stack.builds import base_references

    graph = CycleFinder()
    for name in parsed:
        image = stack.images[name]
        assert image.build is not None
        try:
            bases = base_references(image.build, image.platform)
        except FrontendError:
            continue  # reported by the file checks
        for base in bases:
            needed = image_for_reference(stack, base)
            if needed is not None:
                graph.add_edge(name, needed)
    reported: set[frozenset[str]] = set()
    for cycle in graph.simple_cycles():
        members = frozenset(cycle)
        if members in reported:
            continue
        reported.add(members)
        start = min(cycle)
        turn = cycle.index(start)
        loop = " -> ".join([*cycle[turn:], *cycle[:turn], start])
        image = stack.images[start]
        yield Problem(
            image.location,
            f"images.{start}.build",
            f"the builds start FROM each other in a loop: {loop}",
        )


def check_builds(stack: Stack) -> list[Problem]:
    """Every problem of the stack's builds (see the module docstring)."""
    problems: list[Problem] = []
    stack_dir = stack.source_file.parent if stack.source_file.name else None
    usable: set[str] = set()
    for name, image in stack.images.items():
        if image.build is None:
            continue
        problems.extend(_check_tag(stack, name, image))
        found = list(_check_files(stack_dir, name, image, image.build))
        problems.extend(found)
        if not found:
            usable.add(name)
    if any(image.build is not None for image in stack.images.values()):
        problems.extend(_check_unique_references(stack))
    if usable:
        problems.extend(_check_cycles(stack, usable))
    return problems
