"""Paths resolved inside a root directory, symlinks included, never leaving it.

:func:`resolve_in_root` follows symlinks the way moby's ``FollowSymlinkInScope`` does for a
build context or a stage's filesystem: the root acts as ``/``, so an absolute link target
starts again at the root and ``..`` stops at it. A link pointing outside the context
therefore resolves to a path *inside* it (usually one that does not exist), and nothing
outside the root is ever read.
"""

from __future__ import annotations

import os
import posixpath
import stat
from pathlib import Path

from declarun.dockerfile.errors import CopySourceError

__all__ = ["MAX_LINKS", "resolve_in_root"]

MAX_LINKS = 255


def resolve_in_root(root: Path, path: str) -> str:
    """``path`` (relative to ``root``; ``/`` means the root) with symlinks resolved in scope.

    Returns the resolved path relative to ``root`` (``""`` for the root itself). Raises
    :class:`CopySourceError` after more than 255 links (a loop).
    """
    remaining = posixpath.normpath("/" + path)
    resolved: list[str] = []
    links = 0
    while remaining:
        head, _, remaining = remaining.partition("/")
        if head in ("", "."):
            continue
        if head == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = [*resolved, head]
        full = os.path.join(root, *candidate)
        try:
            mode = os.lstat(full).st_mode
        except OSError:
            resolved = candidate  # a missing component is accepted as it is
            continue
        if not stat.S_ISLNK(mode):
            resolved = candidate
            continue
        links += 1
        if links > MAX_LINKS:
            raise CopySourceError(f"too many links in {path}")
        target = os.readlink(full)
        if target.startswith("/"):
            resolved = []
        remaining = target + ("/" + remaining if remaining else "")
    return "/".join(resolved)
