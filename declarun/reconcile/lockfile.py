"""The lock file on disk (``web.lock`` beside ``web.yaml``), and resolving a stack's references to digests through the engine.

The lock as a value, its text and its staleness are pure (``declarun.plan.lock``); this module
does the I/O around them: reading and atomically writing the file next to the stack, and asking
the registry (through the engine) what each reference names now.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from pathlib import Path

from declarun.engine.port import Engine
from declarun.errdefs import ErrorKind
from declarun.errors import ImageReferenceError
from declarun.frozen import FrozenDict
from declarun.plan.lock import (
    Lock,
    LockedImage,
    LockError,
    lock_from_text,
    lock_path,
    lock_to_text,
    lockable_references,
)
from declarun.reference import parse_reference
from declarun.stack.model import Stack

__all__ = ["check_overwrite", "load_stack_lock", "read_lock", "resolve_lock", "write_lock"]


def read_lock(path: Path) -> Lock:
    """Read a lock file; a missing or unreadable file is a :class:`LockError`."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LockError(f"{path}: no lock file (run 'declarun lock' to create it)") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LockError(f"{path}: cannot read the lock file: {exc}") from None
    return lock_from_text(text, str(path))


def write_lock(lock: Lock, path: Path) -> None:
    """Write a lock file atomically (a reader never sees half a file)."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(lock_to_text(lock), encoding="utf-8")
    os.replace(temporary, path)


def load_stack_lock(stack: Stack, *, locked: bool) -> Lock | None:
    """The stack's lock when it has one; with ``locked`` a missing lock is a LockError.
    Without ``locked`` a lock of another stack is not used (with it, it is stale)."""
    path = lock_path(stack)
    if not path.exists() and not locked:
        return None
    lock = read_lock(path)
    if lock.stack != stack.name and not locked:
        return None
    return lock


def check_overwrite(path: Path, stack: Stack) -> None:
    """Refuse (LockError) to replace a lock file that belongs to another stack, or that is
    not a lock at all: a lock is never overwritten silently."""
    if not path.exists():
        return
    try:
        existing = read_lock(path)
    except LockError as exc:
        raise LockError(f"{exc}; declarun will not overwrite it (give --force to)") from None
    if existing.stack != stack.name:
        raise LockError(
            f"{path} is the lock of stack '{existing.stack}', not '{stack.name}': declarun "
            "will not overwrite it (remove it, or give --force)"
        )


def _digest_in(ref: str) -> str | None:
    try:
        return parse_reference(ref).digest
    except ImageReferenceError:
        return None


def resolve_lock(
    engine: Engine,
    stack: Stack,
    engine_platform: str,
    bases: Mapping[str, Sequence[str]] | None = None,
) -> Lock:
    """Resolve every lockable reference to a digest through the engine (registry I/O): the
    images the stack pulls and, given ``bases`` (:attr:`ObservedState.base_images`), the base
    images its builds pull.

    Uses ``GET /distribution/{name}/json`` (``Engine.registry_digest``): the digest of what the
    tag names now (an index pins every platform's manifest, so one digest serves each
    platform the reference is used on). A reference that already carries a digest is
    recorded as it is, without asking.
    """
    entries: dict[str, LockedImage] = {}
    for ref, platforms in lockable_references(stack, engine_platform, bases).items():
        try:
            repository = parse_reference(ref).familiar_name()
        except ImageReferenceError as exc:
            raise LockError(f"image {ref}: {exc}") from None
        digest = _digest_in(ref)
        if digest is None:
            try:
                digest = engine.registry_digest(ref)
            except ErrorKind as exc:
                raise LockError(f"cannot resolve {ref}: {exc}") from None
        entries[ref] = LockedImage(
            ref, repository, FrozenDict({platform: digest for platform in platforms})
        )
    return Lock(stack=stack.name, images=FrozenDict(entries))
