"""The lock file (``stack.lock`` for ``stack.yaml``, ``web.lock`` for ``web.yaml``): every image
reference of a stack pinned to a digest, per platform.

The file is JSON with sorted keys and two-space indentation, ending in a newline, so it is
stable under regeneration and diffs well in review::

    {
      "images": {
        "127.0.0.1:5000/declarun/busybox:1.36": {
          "platforms": {"linux/amd64": "sha256:…"},
          "repository": "127.0.0.1:5000/declarun/busybox"
        }
      },
      "lockVersion": 1,
      "stack": "webapp"
    }

Keys of ``images`` are references exactly as the stack (or a Dockerfile's ``FROM``) writes
them; an apply with a lock pulls and runs ``<repository>@<digest>`` instead, and builds on
the pinned base images (see ``declarun.reconcile.builds``). This module is pure: the lock as a value,
its text, and the staleness check. Reading and writing the file, and resolving references
through the engine, are ``declarun.reconcile.lockfile``'s.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.errors import DeclarunError
from declarun.frozen import FrozenDict
from declarun.reference import parse_reference
from declarun.stack.model import Image, Stack
from declarun.stack.naming import image_for_reference

__all__ = [
    "LOCK_FILE_NAME",
    "LOCK_VERSION",
    "Lock",
    "LockError",
    "LockedImage",
    "image_platform",
    "is_stale",
    "lock_from_text",
    "lock_path",
    "lock_to_text",
    "lockable_images",
    "lockable_references",
    "pinned_reference",
    "stale_reasons",
]

LOCK_FILE_NAME = "stack.lock"
LOCK_VERSION = 1


class LockError(DeclarunError):
    """A lock file is missing, unreadable, malformed or does not fit the stack."""


@dataclass(frozen=True, slots=True)
class LockedImage:
    """One reference, its repository, and the digest it resolved to on each platform."""

    ref: str
    repository: str
    platforms: FrozenDict[str, str]

    def pinned(self, platform: str) -> str | None:
        """``repository@digest`` for ``platform``, or None when the lock has no such entry."""
        digest = self.platforms.get(platform)
        return None if digest is None else f"{self.repository}@{digest}"


@dataclass(frozen=True, slots=True)
class Lock:
    """A whole lock file."""

    stack: str
    images: FrozenDict[str, LockedImage]
    version: int = LOCK_VERSION

    def pinned(self, ref: str, platform: str) -> str | None:
        """The pinned reference to use for ``ref`` on ``platform``, if locked."""
        entry = self.images.get(ref)
        return None if entry is None else entry.pinned(platform)


def lock_path(stack: Stack) -> Path:
    """Where a stack's lock lives: next to the stack file, named after it (``stack.lock`` for
    ``stack.yaml``, ``web.lock`` for ``web.yaml``), so two stacks in one directory never
    share one."""
    return stack.source_file.with_suffix(".lock")


def image_platform(image: Image, engine_platform: str) -> str:
    """The platform an image is used on: its own ``platform:``, else the engine's."""
    return image.platform or engine_platform


def lockable_images(stack: Stack) -> dict[str, Image]:
    """The images the stack pulls by reference (not built), by reference."""
    return {
        image.ref: image
        for image in stack.images.values()
        if image.ref is not None and image.build is None
    }


def lockable_references(
    stack: Stack, engine_platform: str, bases: Mapping[str, Sequence[str]] | None = None
) -> dict[str, tuple[str, ...]]:
    """Every reference a lock covers, with the platforms it is used on (sorted).

    The images the stack pulls (on their ``platform:``, else the engine's), and the base
    images its builds pull (``bases``: built image name -> the references its Dockerfile
    pulls, :attr:`ObservedState.base_images`), on the built image's platform — except a base
    that is another image the stack builds, which no registry has.
    """
    found: dict[str, set[str]] = {}
    for ref, image in lockable_images(stack).items():
        found.setdefault(ref, set()).add(image_platform(image, engine_platform))
    for name, references in (bases or {}).items():
        built = stack.images.get(name)
        if built is None or built.build is None:
            continue
        for ref in references:
            base = image_for_reference(stack, ref)
            if base is not None and stack.images[base].build is not None:
                continue
            found.setdefault(ref, set()).add(image_platform(built, engine_platform))
    return {ref: tuple(sorted(platforms)) for ref, platforms in sorted(found.items())}


def pinned_reference(ref: str, digest: str) -> str:
    """``repository@digest`` in Docker's familiar form (what ``RepoDigests`` lists)."""
    return f"{parse_reference(ref).familiar_name()}@{digest}"


def lock_to_text(lock: Lock) -> str:
    """The lock file's text: sorted keys, stable on every run."""
    document = {
        "lockVersion": lock.version,
        "stack": lock.stack,
        "images": {
            ref: {"repository": entry.repository, "platforms": dict(entry.platforms)}
            for ref, entry in lock.images.items()
        },
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def _require(condition: bool, source: str, message: str) -> None:
    if not condition:
        raise LockError(f"{source}: {message}")


def lock_from_text(text: str, source: str = LOCK_FILE_NAME) -> Lock:
    """Parse a lock file's text; raises :class:`LockError` saying what is wrong."""
    try:
        document: Any = json.loads(text)
    except ValueError as exc:
        raise LockError(f"{source}: not valid JSON: {exc}") from None
    _require(isinstance(document, dict), source, "expected a JSON object")
    version = document.get("lockVersion")
    _require(version == LOCK_VERSION, source, f"unsupported lockVersion {version!r}")
    stack = document.get("stack")
    _require(isinstance(stack, str) and bool(stack), source, "'stack' must be a name")
    images = document.get("images", {})
    _require(isinstance(images, dict), source, "'images' must be an object")
    entries: dict[str, LockedImage] = {}
    for ref, entry in sorted(images.items()):
        _require(isinstance(entry, dict), source, f"images[{ref!r}] must be an object")
        repository, platforms = entry.get("repository"), entry.get("platforms")
        _require(isinstance(repository, str), source, f"images[{ref!r}].repository missing")
        _require(
            isinstance(platforms, dict)
            and all(isinstance(k, str) and isinstance(v, str) for k, v in platforms.items()),
            source,
            f"images[{ref!r}].platforms must map platforms to digests",
        )
        entries[ref] = LockedImage(ref, repository, FrozenDict(sorted(platforms.items())))
    return Lock(stack=stack, images=FrozenDict(entries), version=version)


def stale_reasons(
    lock: Lock,
    stack: Stack,
    engine_platform: str,
    bases: Mapping[str, Sequence[str]] | None = None,
) -> list[str]:
    """Why ``lock`` does not fit ``stack`` (empty when it does), one sentence each.

    ``bases`` are the base images of the stack's builds (see :func:`lockable_references`).
    """
    reasons: list[str] = []
    if lock.stack != stack.name:
        reasons.append(f"the lock is for stack '{lock.stack}', not '{stack.name}'")
    wanted = lockable_references(stack, engine_platform, bases)
    for ref, platforms in wanted.items():
        entry = lock.images.get(ref)
        if entry is None:
            reasons.append(f"image {ref} is not locked")
            continue
        for platform in platforms:
            if platform not in entry.platforms:
                reasons.append(f"image {ref} is not locked for platform {platform}")
    for ref in sorted(set(lock.images) - set(wanted)):
        reasons.append(f"the lock pins {ref}, which the stack no longer uses")
    return reasons


def is_stale(
    lock: Lock,
    stack: Stack,
    engine_platform: str,
    bases: Mapping[str, Sequence[str]] | None = None,
) -> bool:
    """True when the lock misses an image (or platform) the stack uses, or pins one it does not."""
    return bool(stale_reasons(lock, stack, engine_platform, bases))
