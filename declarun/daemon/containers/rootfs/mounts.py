"""A container's root filesystem: its writable layer from the snapshotter, mounted on demand.

The writable layer (overlay upper/work directories, or a private copy) is made at create
time by :meth:`Snapshotter.mounts_for`; the overlay is mounted when the container starts
(or while ``docker cp``/``export`` needs it) and unmounted when it stops, so a stopped
container holds no mount. A reference count lets a start and a copy share one mount.
Mount and unmount are blocking system calls; callers run them in a worker thread.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

from declarun.daemon.snapshots import ContainerMounts, Snapshotter, mount_overlay, unmount

__all__ = ["RootfsManager"]


class RootfsManager:
    """Mounts and releases containers' root filesystems (thread-safe)."""

    def __init__(self, snapshotter: Snapshotter) -> None:
        self.snapshotter = snapshotter
        self._lock = threading.Lock()
        self._users: dict[str, int] = {}

    def prepare(self, chain_id: str | None, container_id: str) -> ContainerMounts:
        """Create (or find again) the writable layer of ``container_id`` over ``chain_id``."""
        return self.snapshotter.mounts_for(chain_id, container_id)

    def mount(self, chain_id: str | None, container_id: str) -> Path:
        """Mount the root filesystem (if not mounted yet) and take a reference to it."""
        with self._lock:
            mounts = self.snapshotter.mounts_for(chain_id, container_id)
            if mounts.driver == "overlay" and not os.path.ismount(mounts.rootfs):
                mount_overlay(mounts)
            self._users[container_id] = self._users.get(container_id, 0) + 1
            return mounts.rootfs

    def adopt(self, container_id: str) -> None:
        """Count a mount a previous daemon made for a container that is still running."""
        with self._lock:
            self._users[container_id] = max(self._users.get(container_id, 0), 1)

    def in_use(self, container_id: str) -> bool:
        """Whether this daemon holds the container's root mounted (a start, a copy)."""
        with self._lock:
            return self._users.get(container_id, 0) > 0

    def release_mount(self, container_id: str) -> None:
        """Drop a reference; unmount when it was the last."""
        with self._lock:
            count = self._users.get(container_id, 0) - 1
            if count > 0:
                self._users[container_id] = count
                return
            self._users.pop(container_id, None)
            self._unmount(container_id)

    def force_unmount(self, container_id: str) -> None:
        """Unmount whatever references remain (the container is being removed or swept)."""
        with self._lock:
            self._users.pop(container_id, None)
            self._unmount(container_id)

    def _unmount(self, container_id: str) -> None:
        rootfs = self.snapshotter.root / "containers" / container_id / "rootfs"
        if rootfs.exists():
            unmount(rootfs)

    def remove(self, container_id: str) -> None:
        """Unmount and delete the writable layer."""
        self.force_unmount(container_id)
        self.snapshotter.release(container_id)

    def known_layers(self) -> list[str]:
        """Container ids that have a writable layer on disk (to sweep orphans)."""
        base = self.snapshotter.root / "containers"
        try:
            return [entry.name for entry in os.scandir(base) if not entry.name.startswith(".")]
        except FileNotFoundError:
            return []
