"""``RUN --mount=type=cache`` directories: kept under the data root, one per cache ``id``.

Layout: ``cache-mounts/<sha256(id)>/`` holds ``meta.json`` (the id, when it was made and
last used) and ``data/``, the directory the ``RUN`` sees. A new one is created with the
mount's ``mode``, ``uid`` and ``gid``. Sharing modes, as BuildKit's:

* ``shared`` -- every concurrent ``RUN`` gets the same directory;
* ``locked`` -- one ``RUN`` at a time, the others wait;
* ``private`` -- the directory when nobody uses it, else a fresh empty one that is thrown
  away afterwards.

Cache mounts are build cache: ``/system/df`` counts them (type ``exec.cachemount``) and
``/build/prune`` removes the unused ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.images.fsops import remove_tree
from declarun.dockerfile.mounts import CacheMount

__all__ = ["CacheMountInfo", "CacheMounts", "tree_size"]


@dataclass(frozen=True)
class CacheMountInfo:
    """One cache directory as ``/system/df`` and prune see it."""

    key: str
    cache_id: str
    size: int
    created: float
    last_used: float
    in_use: bool


def tree_size(path: Path) -> int:
    """Bytes of the files under ``path`` (hard links counted once; blocking)."""
    seen: set[tuple[int, int]] = set()
    total = 0
    for directory, _dirs, files in os.walk(path):
        for name in files:
            try:
                st = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if (st.st_dev, st.st_ino) in seen:
                continue
            seen.add((st.st_dev, st.st_ino))
            total += st.st_size
    return total


class CacheMounts:
    """The cache directories of one daemon (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._users: dict[str, int] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @staticmethod
    def key(cache_id: str) -> str:
        """The directory name of a cache id."""
        return hashlib.sha256(cache_id.encode()).hexdigest()

    def _prepare(self, mount: CacheMount) -> Path:
        directory = self.root / self.key(mount.id)
        data = directory / "data"
        now = time.time()
        meta = {"id": mount.id, "created": now, "last_used": now}
        if data.is_dir():
            with contextlib.suppress(OSError, ValueError):
                meta = {**json.loads((directory / "meta.json").read_text()), "last_used": now}
        else:
            directory.mkdir(mode=0o700, exist_ok=True)
            data.mkdir(mode=mount.mode)
            os.chown(data, mount.uid, mount.gid)
            os.chmod(data, mount.mode)
        (directory / "meta.json").write_text(json.dumps(meta))
        return data

    @contextlib.asynccontextmanager
    async def acquire(self, mount: CacheMount, fresh: Callable[[], Path]) -> AsyncIterator[Path]:
        """The directory a ``RUN`` mounts for ``mount``, held for the block.

        ``fresh`` makes an empty private directory (for ``private`` sharing when the cache
        is busy).
        """
        key = self.key(mount.id)
        lock = self._locks.setdefault(key, asyncio.Lock())
        if mount.sharing == "private" and self._users.get(key, 0) > 0:
            path = await asyncio.to_thread(fresh)
            await asyncio.to_thread(_init_fresh, path, mount)
            yield path
            return
        async with lock if mount.sharing == "locked" else contextlib.nullcontext():
            self._users[key] = self._users.get(key, 0) + 1
            try:
                yield await asyncio.to_thread(self._prepare, mount)
            finally:
                self._users[key] -= 1

    def in_use(self, key: str) -> bool:
        """Whether a running step holds the cache directory ``key``."""
        return self._users.get(key, 0) > 0

    def list(self) -> list[CacheMountInfo]:
        """Every cache directory with its size (blocking: walks them)."""
        out = []
        for entry in sorted(os.scandir(self.root), key=lambda e: e.name):
            directory = Path(entry.path)
            try:
                meta = json.loads((directory / "meta.json").read_text())
            except (OSError, ValueError):
                continue
            out.append(
                CacheMountInfo(
                    key=entry.name,
                    cache_id=str(meta.get("id", "")),
                    size=tree_size(directory / "data"),
                    created=float(meta.get("created", 0.0)),
                    last_used=float(meta.get("last_used", 0.0)),
                    in_use=self.in_use(entry.name),
                )
            )
        return out

    def remove(self, key: str) -> bool:
        """Delete an unused cache directory (blocking); False when it is in use."""
        if self.in_use(key):
            return False
        remove_tree(self.root / key)
        return True


def _init_fresh(path: Path, mount: CacheMount) -> None:
    os.chown(path, mount.uid, mount.gid)
    os.chmod(path, mount.mode)
