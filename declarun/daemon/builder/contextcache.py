"""Extracted build contexts kept between builds, so a rebuild writes only what changed.

The classic API sends the whole context with every build. Unpacking thousands of files
costs more than the rest of a cached rebuild, so the builder keeps the last few extracted
contexts (``<data-root>/builder/contexts/<id>/``) with their :class:`ContextIndex` in
memory. A new build indexes its tar (which checks it), checks out the kept context that
shares the most entries with it -- moving it into the build's directory, so no other build
sees it meanwhile -- and :func:`~declarun.daemon.builder.context.sync_context` writes the
differences. When the build ends the context is checked back in; the oldest beyond
``keep`` are deleted in the background. A context whose update failed is never kept.

Nothing writes into a checked-out context but the sync (``COPY`` reads it, ``RUN`` binds
it read-only or copies it), except the removal of the Dockerfile and ``.dockerignore``
dockerd makes, which the caller reports with :meth:`Checkout.forget`. The directory is
wiped at start-up: an index lives only as long as the daemon.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from declarun.daemon.builder.context import ContextIndex
from declarun.daemon.images.fsops import remove_tree

__all__ = ["Checkout", "ContextCache"]


@dataclass
class _Kept:
    path: Path
    entries: dict[str, tuple[object, ...]]


@dataclass
class Checkout:
    """A kept context taken by one build: what it held (``entries``) before the update."""

    entries: dict[str, tuple[object, ...]] = field(default_factory=dict)

    def forget(self, index: ContextIndex, paths: list[str]) -> None:
        """Paths the build deleted from its context (they are missing from it now)."""
        for path in paths:
            index.entries.pop(path.strip("/"), None)


class ContextCache:
    """The kept contexts of one daemon (see the module docstring); use from the event loop,
    the file operations of each method from a worker thread as documented."""

    def __init__(self, root: Path, keep: int = 3) -> None:
        self.root = root
        self.keep = keep
        self._kept: list[_Kept] = []

    def open(self) -> None:
        """Create the directory, deleting what an earlier daemon kept (blocking)."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for entry in os.scandir(self.root):
            remove_tree(Path(entry.path))

    def take(self, index: ContextIndex) -> tuple[Path | None, Checkout]:
        """The kept context most like ``index`` (removed from the cache), or None."""
        if not self._kept or not index.self_contained:
            return None, Checkout()
        wanted = index.entries

        def shared(kept: _Kept) -> int:
            return sum(1 for path, key in kept.entries.items() if wanted.get(path) == key)

        best = max(self._kept, key=shared)
        self._kept.remove(best)
        return best.path, Checkout(dict(best.entries))

    def give_back(self, tree: Path, index: ContextIndex) -> list[Path]:
        """Keep ``tree`` (now holding ``index``); returns the trees to delete (blocking rename)."""
        path = self.root / uuid.uuid4().hex
        os.rename(tree, path)
        self._kept.insert(0, _Kept(path, dict(index.entries)))
        evicted = self._kept[self.keep :]
        del self._kept[self.keep :]
        return [kept.path for kept in evicted]

    def take_all(self) -> list[Path]:
        """Forget every kept context; returns their trees, to delete (``build prune -a``)."""
        trees = [kept.path for kept in self._kept]
        self._kept.clear()
        return trees
