"""An image's root filesystem on the host: read for planning, written for one step.

``COPY``/``ADD`` and ``WORKDIR`` write into the filesystem of the previous step without a
container; ``COPY --from`` and ``RUN --mount=...,from=`` read another stage's or image's
filesystem. :class:`ImageRoot` gives both, on the snapshotter the daemon uses:

* **overlay**: a writable layer of its own (``snapshots/containers/build-<id>``, so the
  chain below it cannot be collected meanwhile) over the image's chain, mounted; reading
  and writing use the same mount, and :meth:`ImageRoot.changes` reads the upper directory;
* **copy**: reading uses the top snapshot's flattened tree as it is (nothing is copied for
  a step served from the cache); writing makes the private copy first.

Once written, the root's upper directory *becomes* the step's snapshot (renamed into
place, :func:`adopt_writable`) instead of the layer being unpacked a second time.

Everything here blocks (mounts, copies, tree walks): call it from a worker thread. A root
left behind by a daemon that died is swept at the next start like any orphan writable
layer.
"""

from __future__ import annotations

import contextlib
import os
import stat
import threading
import uuid
from collections import OrderedDict
from collections.abc import Hashable
from pathlib import Path

from declarun.daemon.builder.copystep import is_dir_in, read_image_text
from declarun.daemon.containers.rootfs.changes import (
    CHANGE_ADDED,
    CHANGE_DELETED,
    Change,
    changes_copy,
    changes_overlay,
)
from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.snapshots import (
    ContainerMounts,
    SnapshotError,
    SnapshotInfo,
    Snapshotter,
    mount_lowers,
    mount_overlay,
    unmount,
)

__all__ = ["FactMemo", "ImageRoot", "RootFacts", "adopt_writable"]

_OPAQUE_XATTRS = ("trusted.overlay.opaque", "user.overlay.opaque")


def _kept_paths(changes: list[Change]) -> set[str]:
    kept = set()
    for change in changes:
        parts = change.path.strip("/").split("/")
        for depth in range(1, len(parts) + 1):
            kept.add("/".join(parts[:depth]))
    return kept


def _upper_only_changes(upper: Path) -> list[Change] | None:
    """The changes of an upper directory read from it alone (None: an opaque directory
    needs the lower layers to know what it hides).

    Whether an entry is new or modified is only for ``docker diff`` to show; the layer
    needs what is there and what is deleted, which the upper directory says by itself.
    """
    out: list[Change] = []
    for directory, dirs, files in os.walk(upper):
        rel = os.path.relpath(directory, upper)
        prefix = "/" if rel == "." else f"/{rel}/"
        for name in dirs:
            if _opaque(os.path.join(directory, name)):
                return None
            out.append(Change(prefix + name, CHANGE_ADDED))
        for name in files:
            st = os.lstat(os.path.join(directory, name))
            whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
            out.append(Change(prefix + name, CHANGE_DELETED if whiteout else CHANGE_ADDED))
    return sorted(out, key=lambda change: change.path)


def _opaque(path: str) -> bool:
    for key in _OPAQUE_XATTRS:
        with contextlib.suppress(OSError):
            if os.getxattr(path, key, follow_symlinks=False) == b"y":
                return True
    return False


def _prune_upper(upper: Path, kept: set[str]) -> bool:
    """Delete what the writable layer holds beyond ``kept`` (mount points the runtime
    made), so the snapshot is exactly the layer. False when a directory is opaque: the
    layer tar spells that as one whiteout per hidden entry, so only applying it gives the
    same snapshot."""
    for directory, dirs, files in os.walk(upper):
        rel = os.path.relpath(directory, upper)
        prefix = "" if rel == "." else rel + "/"
        for name in list(dirs):
            if prefix + name not in kept:
                remove_tree(Path(directory, name))
                dirs.remove(name)
            elif _opaque(os.path.join(directory, name)):
                return False
        for name in files:
            if prefix + name not in kept:
                os.unlink(os.path.join(directory, name))
    return True


def _clamp_times(upper: Path, limit: int) -> None:
    """Modification times after ``limit`` set to it, as the layer tar has them."""
    limit_ns = limit * 1_000_000_000
    for directory, dirs, files in os.walk(upper):
        for name in [*dirs, *files]:
            path = os.path.join(directory, name)
            st = os.lstat(path)
            if st.st_mtime_ns > limit_ns:
                os.utime(path, ns=(min(st.st_atime_ns, limit_ns), limit_ns), follow_symlinks=False)


def adopt_writable(
    snapshotter: Snapshotter,
    layer_id: str,
    changes: list[Change],
    diff_id: str,
    size: int,
    *,
    mtime_limit: int | None = None,
) -> SnapshotInfo | None:
    """Publish the unmounted writable layer ``layer_id`` (a container's or an
    :class:`ImageRoot`'s) as the snapshot of its diff, whose changes are ``changes`` and
    whose times the tar clamped to ``mtime_limit``; None when the driver cannot (the caller
    applies the layer instead)."""
    if snapshotter.driver != "overlay":
        return None
    upper = snapshotter.root / "containers" / layer_id / "upper"
    if not _prune_upper(upper, _kept_paths(changes)):
        return None
    if mtime_limit is not None:
        _clamp_times(upper, mtime_limit)
    return snapshotter.commit_writable(layer_id, diff_id, size)


class ImageRoot:
    """The root filesystem of the chain ``chain_id`` (None: an empty image)."""

    def __init__(self, snapshotter: Snapshotter, chain_id: str | None, scratch: Path) -> None:
        self._snapshotter = snapshotter
        self.chain_id = chain_id
        # The build's own scratch space: an empty root, and the read-only view's mount
        # point (where a daemon that died mid-build leaves nothing in the snapshots).
        self._empty_dir = scratch / "empty"
        self._views = scratch / "views"
        self.name = f"build-{uuid.uuid4().hex[:24]}"
        self._mounts: ContainerMounts | None = None
        self._view: Path | None = None
        self._view_mount: Path | None = None

    @property
    def direct(self) -> bool:
        """Whether the upper directory can be written directly (the overlay driver)."""
        return self._snapshotter.driver == "overlay"

    def view(self) -> Path:
        """The image's filesystem, read-only: its layer for one layer, a read-only overlay
        of its layers for more (copy driver: its flattened tree). Never written through."""
        if self._view is not None:
            return self._view
        if self.chain_id is None:
            self._empty_dir.mkdir(mode=0o755, exist_ok=True)
            self._view = self._empty_dir
        elif self._snapshotter.driver != "overlay":
            self._view = self._snapshotter.info(self.chain_id).path
        else:
            # The writable layer's directory also keeps the chain from being collected.
            lowers = self.layer().lowerdirs
            if len(lowers) == 1:
                self._view = lowers[0]
            else:
                target = self._views / self.name
                target.mkdir(mode=0o755, parents=True, exist_ok=True)
                self._view_mount = mount_lowers(lowers, target)
                self._view = target
        return self._view

    def layer(self) -> ContainerMounts:
        """The writable layer's directories (made on first use, not mounted)."""
        if self._mounts is None:
            self._mounts = self._snapshotter.mounts_for(self.chain_id, self.name)
        return self._mounts

    def upper(self) -> Path:
        """The upper directory (overlay driver): what is written there is the layer."""
        upper = self.layer().upperdir
        if upper is None:
            raise SnapshotError("only the overlay driver has an upper directory")
        return upper

    def writable(self) -> Path:
        """The filesystem to write one step into, mounted (a private copy for the copy
        driver); not to be used with :meth:`upper` in the same step."""
        mounts = self.layer()
        if mounts.driver == "overlay" and not os.path.ismount(mounts.rootfs):
            mount_overlay(mounts)
        return mounts.rootfs

    def changes(self) -> list[Change]:
        """What was written since :meth:`writable` (``docker diff``'s changes)."""
        mounts = self._mounts
        if mounts is None:
            return []
        if mounts.driver == "overlay":
            assert mounts.upperdir is not None
            found = _upper_only_changes(mounts.upperdir)
            if found is None:
                return changes_overlay(mounts.upperdir, mounts.lowerdirs)
            return found
        base = self._snapshotter.info(self.chain_id).path if self.chain_id else None
        return changes_copy(mounts.rootfs, base)

    def adopt(
        self, changes: list[Change], diff_id: str, size: int, *, mtime_limit: int | None
    ) -> SnapshotInfo | None:
        """Publish what was written as the snapshot of its diff (see :func:`adopt_writable`);
        the root cannot be used afterwards."""
        if self._mounts is None:
            return None
        rootfs = self._snapshotter.root / "containers" / self.name / "rootfs"
        if rootfs.exists():
            unmount(rootfs)
        return adopt_writable(
            self._snapshotter, self.name, changes, diff_id, size, mtime_limit=mtime_limit
        )

    def close(self) -> None:
        """Unmount everything and delete the writable layer, if one was made."""
        if self._view_mount is not None:
            unmount(self._view_mount)
            self._view_mount.rmdir()
            self._view_mount = None
        self._view = None
        if self._mounts is None:
            return
        self._mounts = None
        directory = self._snapshotter.root / "containers" / self.name
        rootfs = directory / "rootfs"
        if rootfs.exists():
            unmount(rootfs)
        self._snapshotter.release(self.name)


class FactMemo:
    """Answers about image filesystems, which never change once made, remembered by the
    chain ID they were computed on (thread-safe; the oldest forgotten past ``limit``)."""

    def __init__(self, limit: int = 100_000) -> None:
        self._limit = limit
        self._values: OrderedDict[Hashable, object] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> object | None:
        """The remembered value, or None."""
        with self._lock:
            value = self._values.get(key)
            if value is not None:
                self._values.move_to_end(key)
            return value

    def put(self, key: Hashable, value: object) -> None:
        """Remember ``value`` (not None)."""
        with self._lock:
            self._values[key] = value
            while len(self._values) > self._limit:
                self._values.popitem(last=False)


class RootFacts:
    """What planning a ``COPY`` asks of an image root, from the memo when it can: the root
    is only made (an overlay mounted) when something was never asked before."""

    def __init__(self, root: ImageRoot, memo: FactMemo) -> None:
        self._root = root
        self._memo = memo

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory of the image (symlinks kept inside)."""
        key = ("is_dir", self._root.chain_id, path)
        found = self._memo.get(key)
        if found is None:
            found = is_dir_in(self._root.view(), path)
            self._memo.put(key, found)
        return bool(found)

    def text(self, path: str) -> str | None:
        """A small text file of the image, or None."""
        key = ("text", self._root.chain_id, path)
        found = self._memo.get(key)
        if found is None:
            found = (read_image_text(self._root.view(), path),)
            self._memo.put(key, found)
        assert isinstance(found, tuple)
        return found[0] if isinstance(found[0], str) else None
