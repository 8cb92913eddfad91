"""What both snapshotters share: the on-disk layout, prepare/commit, and bookkeeping.

Layout under ``<data-root>/snapshots`` (mode 0700: snapshots hold setuid files)::

    <chain-id-hex>/fs          the applied layer (overlay) or flattened tree (copy)
    <chain-id-hex>/info.json   parent, diff ID, size, driver
    containers/<id>/           a container's writable layer (see the drivers)
    .tmp-*  .trash-*           work in progress / being deleted; swept at start

A snapshot is committed by renaming its finished ``.tmp-*`` directory to its chain ID,
so a directory named by a chain ID is always complete.
"""

from __future__ import annotations

import errno
import json
import os
import re
import time
import uuid
from pathlib import Path
from typing import Any, BinaryIO

from declarun.daemon.images.fsops import remove_tree, sync_filesystem
from declarun.daemon.images.layerstream import Readable
from declarun.daemon.images.unpack import Mode, apply_into
from declarun.daemon.snapshots.chain import chain_id as compute_chain_id
from declarun.daemon.snapshots.chain import check_digest
from declarun.daemon.snapshots.model import (
    AppliedLayer,
    Driver,
    Prepared,
    SnapshotError,
    SnapshotInfo,
    SnapshotInUse,
    SnapshotNotFound,
    StagedLayer,
)
from declarun.errors import UnpackError

__all__ = ["DirectorySnapshotter", "check_container_id"]

_CONTAINER_ID_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")


def check_container_id(container_id: str) -> str:
    """Return ``container_id`` if it is safe as a directory name, else ValueError."""
    if not _CONTAINER_ID_RE.fullmatch(container_id):
        raise ValueError(f"invalid container id {container_id!r}")
    return container_id


class DirectorySnapshotter:
    """Snapshots as directories keyed by chain ID; drivers say how layers are applied."""

    _driver: Driver = "copy"
    _mode: Mode = "flat"

    def __init__(self, data_root: Path) -> None:
        self._root = Path(data_root) / "snapshots"
        self._root.mkdir(parents=True, exist_ok=True)
        os.chmod(self._root, 0o700)
        (self._root / "containers").mkdir(mode=0o700, exist_ok=True)

    @property
    def driver(self) -> Driver:
        """``overlay`` or ``copy``."""
        return self._driver

    @property
    def root(self) -> Path:
        """``<data-root>/snapshots``."""
        return self._root

    # ---- committed snapshots -----------------------------------------------------

    def _dir(self, chain_id: str) -> Path:
        return self._root / check_digest(chain_id, "chain ID").removeprefix("sha256:")

    def container_dir(self, container_id: str) -> Path:
        """Where a container's writable layer lives."""
        return self._root / "containers" / check_container_id(container_id)

    def exists(self, chain_id: str) -> bool:
        """Whether a committed snapshot has this chain ID."""
        return (self._dir(chain_id) / "info.json").is_file()

    def info(self, chain_id: str) -> SnapshotInfo:
        """The committed snapshot with this chain ID, or :class:`SnapshotNotFound`."""
        directory = self._dir(chain_id)
        try:
            raw: dict[str, Any] = json.loads((directory / "info.json").read_text())
        except FileNotFoundError:
            raise SnapshotNotFound(f"no snapshot {chain_id}") from None
        except ValueError as exc:
            raise SnapshotError(f"snapshot {chain_id} has damaged metadata: {exc}") from exc
        return SnapshotInfo(
            chain_id=chain_id,
            parent=raw.get("parent"),
            diff_id=str(raw["diff_id"]),
            size=int(raw["size"]),
            driver=self._driver,
            path=directory / "fs",
            created=float(raw.get("created", 0.0)),
        )

    def snapshots(self) -> list[SnapshotInfo]:
        """Every committed snapshot, in no particular order."""
        out = []
        for entry in os.scandir(self._root):
            if len(entry.name) == 64 and entry.is_dir(follow_symlinks=False):
                chain = "sha256:" + entry.name
                try:
                    out.append(self.info(chain))
                except (SnapshotNotFound, ValueError):
                    continue
        return out

    def lineage(self, chain_id: str) -> list[SnapshotInfo]:
        """The snapshot and its ancestors, top-most first."""
        chain: list[SnapshotInfo] = []
        current: str | None = chain_id
        while current is not None:
            info = self.info(current)
            chain.append(info)
            current = info.parent
        return chain

    # ---- building ----------------------------------------------------------------

    def prepare(self, parent: str | None) -> Prepared:
        """Start a snapshot on top of ``parent``: an empty or (copy) seeded ``fs``."""
        if parent is not None and not self.exists(parent):
            raise SnapshotNotFound(f"no parent snapshot {parent}")
        return self._prepare(parent)

    def _prepare(self, parent: str | None) -> Prepared:
        path = self._root / f".tmp-{uuid.uuid4().hex}"
        path.mkdir(mode=0o700)
        fs = path / "fs"
        fs.mkdir()
        # A layer without a "./" entry keeps this mode for its root.
        os.chmod(fs, 0o755)
        prepared = Prepared(parent=parent, path=path, fs=fs)
        try:
            self._seed(prepared)
        except BaseException:
            self.abort(prepared)
            raise
        return prepared

    def _seed(self, prepared: Prepared) -> None:
        """Fill ``prepared.fs`` before the layer is applied (copy: the parent's tree)."""

    def commit(self, prepared: Prepared, diff_id: str, size: int) -> SnapshotInfo:
        """Publish a prepared snapshot under ``chain(parent, diff_id)``.

        If another apply of the same chain finished first, this one is discarded and the
        existing snapshot returned (they are identical by construction).
        """
        chain = compute_chain_id(prepared.parent, diff_id)
        meta = {
            "chain_id": chain,
            "parent": prepared.parent,
            "diff_id": diff_id,
            "size": size,
            "driver": self._driver,
            "created": time.time(),
        }
        (prepared.path / "info.json").write_text(json.dumps(meta, indent=1) + "\n")
        sync_filesystem(prepared.path)
        try:
            os.rename(prepared.path, self._dir(chain))
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                self.abort(prepared)
                raise SnapshotError(f"cannot commit snapshot {chain}: {exc.strerror}") from exc
            self.abort(prepared)
        return self.info(chain)

    def abort(self, prepared: Prepared) -> None:
        """Throw a prepared snapshot away."""
        remove_tree(prepared.path)

    def apply_layer(
        self, parent: str | None, layer: BinaryIO | Readable, *, diff_id: str | None = None
    ) -> AppliedLayer:
        """Apply a layer blob on ``parent`` once; reuse the snapshot if it already exists.

        With ``diff_id`` (from the image config) an existing snapshot is reused without
        reading ``layer``, and the unpacked content must hash to it or the apply is
        refused with :class:`UnpackError`. Without it, the computed diff ID is used.
        """
        if diff_id is not None:
            chain = compute_chain_id(parent, diff_id)
            if self.exists(chain):
                return AppliedLayer(self.info(chain), reused=True)
        staged = self._stage(self.prepare(parent), layer, diff_id)
        snapshot = self.commit_staged(staged)
        return AppliedLayer(snapshot, reused=False, warnings=staged.warnings)

    @property
    def independent_layers(self) -> bool:
        """Whether a layer can be staged before its parent is committed (overlay: yes)."""
        return self._mode == "overlay"

    def stage_layer(
        self, parent: str | None, layer: BinaryIO | Readable, *, diff_id: str
    ) -> StagedLayer:
        """Apply a layer for ``parent`` into a private ``.tmp-*`` directory, checked against
        ``diff_id`` (:class:`UnpackError` otherwise); nothing is published.

        With :attr:`independent_layers` the parent need not be committed yet, so the
        layers of an image can be applied side by side; otherwise the parent's tree is the
        starting point and must exist. Publish with :meth:`commit_staged` once the parent
        is committed, or throw it away with :meth:`abort` on ``staged.prepared``.
        """
        prepared = self._prepare(parent) if self.independent_layers else self.prepare(parent)
        return self._stage(prepared, layer, diff_id)

    def _stage(
        self, prepared: Prepared, layer: BinaryIO | Readable, diff_id: str | None
    ) -> StagedLayer:
        try:
            result = apply_into(layer, prepared.fs, mode=self._mode)
            if diff_id is not None and result.diff_id != diff_id:
                raise UnpackError(
                    f"layer content does not match the image: diff ID {result.diff_id}, "
                    f"expected {diff_id}"
                )
        except BaseException:
            self.abort(prepared)
            raise
        return StagedLayer(prepared, result.diff_id, result.size, result.warnings)

    def commit_staged(self, staged: StagedLayer) -> SnapshotInfo:
        """Publish a staged layer (see :meth:`commit`); a snapshot's parent is always
        committed before it, so a parent that is not there refuses it (and discards it)."""
        parent = staged.prepared.parent
        if parent is not None and not self.exists(parent):
            self.abort(staged.prepared)
            raise SnapshotNotFound(f"no parent snapshot {parent}")
        try:
            return self.commit(staged.prepared, staged.diff_id, staged.size)
        except BaseException:
            self.abort(staged.prepared)
            raise

    # ---- removal -----------------------------------------------------------------

    def _containers_on(self, chain_id: str) -> list[str]:
        """Containers whose writable layer sits directly on ``chain_id``."""
        users = []
        for entry in os.scandir(self._root / "containers"):
            try:
                meta = json.loads(Path(entry.path, "info.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("chain_id") == chain_id:
                users.append(entry.name)
        return users

    def remove(self, chain_id: str) -> None:
        """Delete a snapshot; refused while a child snapshot or a container uses it."""
        self.info(chain_id)
        children = [s.chain_id for s in self.snapshots() if s.parent == chain_id]
        if children:
            raise SnapshotInUse(f"snapshot {chain_id} is the parent of {children[0]}")
        users = self._containers_on(chain_id)
        if users:
            raise SnapshotInUse(f"snapshot {chain_id} is used by container {users[0]}")
        remove_tree(self._dir(chain_id))

    def sweep(self) -> None:
        """Remove leftovers of applies or removals interrupted by a crash.

        Only call when no apply is running (at daemon start, under the data-root lock).
        """
        for entry in os.scandir(self._root):
            if entry.name.startswith((".tmp-", ".trash-")):
                remove_tree(Path(entry.path))

    def commit_writable(self, container_id: str, diff_id: str, size: int) -> SnapshotInfo | None:
        """A flattened copy holds more than the layer: the caller applies it instead."""
        return None

    def _write_container_meta(self, directory: Path, chain_id: str | None) -> None:
        meta = {"chain_id": chain_id, "driver": self._driver}
        (directory / "info.json").write_text(json.dumps(meta) + "\n")
