"""The copying snapshotter, for where overlayfs is unavailable.

Each snapshot is the full flattened tree of its chain: the parent's tree copied (with
reflinks where the filesystem has them), then the layer applied in ``flat`` mode, where
whiteouts simply delete. A container gets a private full copy as its root filesystem.
It costs disk space and time, but needs nothing from the kernel.
"""

from __future__ import annotations

import os

from declarun.daemon.images.fsops import clone_tree, remove_tree
from declarun.daemon.images.unpack import Mode
from declarun.daemon.snapshots.base import DirectorySnapshotter
from declarun.daemon.snapshots.model import ContainerMounts, Driver, Prepared

__all__ = ["CopySnapshotter"]


class CopySnapshotter(DirectorySnapshotter):
    """Full flattened trees per chain ID; containers get full copies."""

    _driver: Driver = "copy"
    _mode: Mode = "flat"

    def _seed(self, prepared: Prepared) -> None:
        if prepared.parent is not None:
            clone_tree(self.info(prepared.parent).path, prepared.fs)

    def mounts_for(self, chain_id: str | None, container_id: str) -> ContainerMounts:
        """Make (or reuse, on restart) a private copy of the chain as the container root."""
        directory = self.container_dir(container_id)
        rootfs = directory / "rootfs"
        if not (directory / "info.json").is_file():
            remove_tree(directory)  # a copy interrupted before it was recorded
            work = directory.with_name(f".tmp-{directory.name}")
            remove_tree(work)
            work.mkdir(mode=0o700)
            (work / "rootfs").mkdir()
            os.chmod(work / "rootfs", 0o755)
            if chain_id is not None:
                clone_tree(self.info(chain_id).path, work / "rootfs")
            self._write_container_meta(work, chain_id)
            os.rename(work, directory)
        return ContainerMounts(driver="copy", container_id=container_id, rootfs=rootfs)

    def release(self, container_id: str) -> None:
        """Delete a container's private copy."""
        remove_tree(self.container_dir(container_id))
