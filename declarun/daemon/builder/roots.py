"""An image's root filesystem on the host: read for planning, written for one step.

``COPY``/``ADD`` and ``WORKDIR`` write into the filesystem of the previous step without a
container; ``COPY --from`` and ``RUN --mount=...,from=`` read another stage's or image's
filesystem. :class:`ImageRoot` gives both, on the snapshotter the daemon uses:

* **overlay**: a writable layer of its own (``snapshots/containers/build-<id>``, so the
  chain below it cannot be collected meanwhile) over the image's chain, mounted; reading
  and writing use the same mount, and :meth:`ImageRoot.changes` reads the upper directory;
* **copy**: reading uses the top snapshot's flattened tree as it is (nothing is copied for
  a step served from the cache); writing makes the private copy first.

Everything here blocks (mounts, copies, tree walks): call it from a worker thread. A root
left behind by a daemon that died is swept at the next start like any orphan writable
layer.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

from declarun.daemon.containers.fsaccess import Change, changes_copy, changes_overlay
from declarun.daemon.snapshots import ContainerMounts, Snapshotter, mount_overlay, unmount

__all__ = ["ImageRoot"]


class ImageRoot:
    """The root filesystem of the chain ``chain_id`` (None: an empty image)."""

    def __init__(self, snapshotter: Snapshotter, chain_id: str | None, empty_dir: Path) -> None:
        self._snapshotter = snapshotter
        self.chain_id = chain_id
        self._empty_dir = empty_dir
        self.name = f"build-{uuid.uuid4().hex[:24]}"
        self._mounts: ContainerMounts | None = None

    def view(self) -> Path:
        """The filesystem to read (not to be written through unless :meth:`writable`)."""
        if self._snapshotter.driver == "overlay":
            return self.writable()
        if self._mounts is not None:
            return self._mounts.rootfs
        if self.chain_id is None:
            self._empty_dir.mkdir(mode=0o755, exist_ok=True)
            return self._empty_dir
        return self._snapshotter.info(self.chain_id).path

    def writable(self) -> Path:
        """The filesystem to write one step into."""
        if self._mounts is None:
            mounts = self._snapshotter.mounts_for(self.chain_id, self.name)
            self._mounts = mounts
            if mounts.driver == "overlay" and not os.path.ismount(mounts.rootfs):
                mount_overlay(mounts)
        return self._mounts.rootfs

    def changes(self) -> list[Change]:
        """What was written since :meth:`writable` (``docker diff``'s changes)."""
        mounts = self._mounts
        if mounts is None:
            return []
        if mounts.driver == "overlay":
            assert mounts.upperdir is not None
            return changes_overlay(mounts.upperdir, mounts.lowerdirs)
        base = self._snapshotter.info(self.chain_id).path if self.chain_id else None
        return changes_copy(mounts.rootfs, base)

    def close(self) -> None:
        """Unmount and delete the writable layer, if one was made."""
        if self._mounts is None:
            return
        self._mounts = None
        directory = self._snapshotter.root / "containers" / self.name
        rootfs = directory / "rootfs"
        if rootfs.exists():
            unmount(rootfs)
        self._snapshotter.release(self.name)
