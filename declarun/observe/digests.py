"""Content digests of the host files a stack reads at run time: the host side of observation.

A container is recreated when one of its inputs changed. Env files are hashed when the stack
is loaded (``EnvFile.sha256``); this module hashes the rest, when the world is observed: the
read-only bind mounts that :mod:`declarun.plan.inputs` says are tracked, under the keys it
gives them. (Build contexts are digested by :mod:`declarun.observe.builds`, with the
``.dockerignore`` applied and a cache that makes a repeat fast.)

A file or directory is hashed over its names, types, permission bits, file contents and
symlink targets (not times or owners, which change without meaning anything). Hashing stops
at :data:`MAX_BYTES` / :data:`MAX_ENTRIES`: such an input is recorded as ``unhashed`` and is
then never a reason to recreate.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from declarun.frozen import FrozenDict
from declarun.plan.inputs import MISSING, UNHASHED, bind_key, tracked_binds
from declarun.stack.model import Stack

__all__ = ["MAX_BYTES", "MAX_ENTRIES", "input_digests", "path_digest"]

MAX_BYTES = 64 * 1024 * 1024
MAX_ENTRIES = 10_000
_CHUNK = 1024 * 1024


class _TooLarge(Exception):
    pass


def _entries(root: Path) -> Iterator[tuple[str, os.stat_result, Path]]:
    """Every entry under ``root`` (itself included), in a stable order, without following links."""
    yield "", root.lstat(), root
    if not stat.S_ISDIR(root.lstat().st_mode):
        return
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        base = Path(directory)
        for name in sorted([*dirnames, *filenames]):
            path = base / name
            yield path.relative_to(root).as_posix(), path.lstat(), path


def _feed(digest: hashlib._Hash, root: Path) -> None:
    total = 0
    for count, (relative, info, path) in enumerate(_entries(root), start=1):
        if count > MAX_ENTRIES:
            raise _TooLarge
        mode = stat.S_IMODE(info.st_mode)
        kind = stat.S_IFMT(info.st_mode)
        digest.update(f"{relative}\0{kind:o}\0{mode:o}\0".encode())
        if stat.S_ISREG(info.st_mode):
            total += info.st_size
            if total > MAX_BYTES:
                raise _TooLarge
            with path.open("rb") as handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        elif stat.S_ISLNK(info.st_mode):
            digest.update(os.readlink(path).encode(errors="surrogateescape"))
        digest.update(b"\0")


def path_digest(path: Path) -> str:
    """``sha256:<hex>`` of a file or directory tree, or ``missing`` / ``unhashed``."""
    digest = hashlib.sha256()
    try:
        _feed(digest, path)
    except FileNotFoundError:
        return MISSING
    except (_TooLarge, OSError):
        # Unreadable or too big to hash quickly: not tracked rather than a false change.
        return UNHASHED
    return "sha256:" + digest.hexdigest()


def input_digests(stack: Stack) -> FrozenDict[str, str]:
    """Digest every tracked input of ``stack`` (reads the host's files)."""
    digests: dict[str, str] = {}
    for source in tracked_binds(stack):
        digests[bind_key(source)] = path_digest(Path(source))
    return FrozenDict(sorted(digests.items()))
