"""The builder's directories under the data root, and each build's private ones.

::

    <data-root>/builder/             mode 0700
      builds/<build-id>/context/     the extracted build context (a kept one, updated)
      builds/<build-id>/tmp/         spooled body, downloads, secrets, heredoc files
      cache-mounts/<sha256(id)>/     RUN --mount=type=cache directories (kept across builds)
      contexts/<id>/                 extracted contexts kept for the next build (contextcache)

A build's directory is removed when the build ends, whatever the outcome; ``sweep`` removes
what a daemon that died mid-build left (at start-up, under the data-root lock).
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.snapshots import unmount

__all__ = ["BuildDirs", "BuilderRoot"]

_MODE = 0o700


@dataclass(frozen=True)
class BuildDirs:
    """One build's directories: ``context`` (the extracted context) and ``tmp``."""

    build_id: str
    root: Path

    @property
    def context(self) -> Path:
        """Where the context is extracted."""
        return self.root / "context"

    @property
    def tmp(self) -> Path:
        """Scratch space (same file system as the snapshots)."""
        return self.root / "tmp"

    @property
    def downloads(self) -> Path:
        """Where ``ADD`` puts what it downloads."""
        return self.tmp / "downloads"

    def download_dir(self) -> Path:
        """A new, empty directory for one download."""
        self.downloads.mkdir(mode=_MODE, exist_ok=True)
        path = self.downloads / uuid.uuid4().hex[:12]
        path.mkdir(mode=_MODE)
        return path

    def scratch(self, tag: str) -> Path:
        """A new, empty, private directory under ``tmp``."""
        path = self.tmp / f"{tag}-{uuid.uuid4().hex[:12]}"
        path.mkdir(mode=_MODE)
        return path

    def remove(self) -> None:
        """Delete everything of this build (blocking)."""
        remove_tree(self.root)


def _unmount_under(path: Path) -> None:
    """Unmount every mount point at or below ``path``, deepest first."""
    prefix = str(path)
    points: list[str] = []
    with open("/proc/self/mountinfo") as mountinfo:
        for line in mountinfo:
            point = line.split()[4].encode().decode("unicode_escape")
            if point == prefix or point.startswith(prefix + "/"):
                points.append(point)
    for point in sorted(points, key=len, reverse=True):
        unmount(Path(point))


class BuilderRoot:
    """``<data-root>/builder`` (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.builds = root / "builds"
        self.cache_mounts = root / "cache-mounts"

    def open(self) -> None:
        """Create the directories and sweep builds an earlier daemon left (blocking)."""
        for path in (self.root, self.builds, self.cache_mounts):
            path.mkdir(mode=_MODE, parents=True, exist_ok=True)
            os.chmod(path, _MODE)
        for entry in os.scandir(self.builds):
            # A daemon that died mid-build may have left read-only views mounted there.
            _unmount_under(Path(entry.path))
            remove_tree(Path(entry.path))

    def new_build(self) -> BuildDirs:
        """Directories for a new build (blocking)."""
        build_id = uuid.uuid4().hex
        dirs = BuildDirs(build_id, self.builds / build_id)
        dirs.root.mkdir(mode=_MODE)
        dirs.tmp.mkdir(mode=_MODE)
        return dirs
