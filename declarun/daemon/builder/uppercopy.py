"""``COPY`` written straight into the step's upper directory, files hard-linked when they can be.

The general path (:func:`declarun.daemon.builder.copystep.write_copy`) writes through the
mounted overlay: every file is created and its content copied, then the upper directory is
adopted as the snapshot. On the overlay driver, and without archives to extract, this path
does the same with far fewer writes:

* destinations are resolved first, in the image's merged view (mounted read-only for the
  plan anyway), symlinks followed inside it as the extractor would (``/bin -> usr/bin``);
* then, with the view unmounted, each entry is made in the *upper* directory at its
  resolved place: directories the image has are created there with the image's metadata
  (what overlayfs' copy-up does), the others with the plan's;
* a file whose source is a file of this daemon's own (the kept build context, a
  download) and whose planned mode, owner and time are the source's is **hard-linked**
  instead of copied: one directory entry, no new inode, no data written. Each source is
  linked once per build (a second destination, in this step or a later one, gets a copy:
  two layers of one image never share an inode), and never when ``SOURCE_DATE_EPOCH``
  will change its time.

Sharing an inode with the context is safe because nothing writes into either in place: a
kept context is patched by unlinking and creating files, a snapshot is a read-only overlay
lower layer (containers copy files up before writing), and removals only unlink.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
import threading
from pathlib import Path

from declarun.dockerfile import PlannedEntry
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.scope import resolve_in_root
from declarun.errdefs import InvalidArgument

__all__ = ["LinkedInodes", "write_copy_upper"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class _UpperWriter:
    def __init__(
        self,
        view: Path,
        upper: Path,
        linkable: tuple[Path, ...],
        linked: LinkedInodes,
        epoch: int | None,
    ) -> None:
        self.view = view
        self.upper = upper
        self.linkable = linkable
        self.epoch_ns = None if epoch is None else epoch * 1_000_000_000
        self.ready: set[str] = set()
        self.linked = linked
        self.written: dict[str, str] = {}  # image path as planned -> real path

    def _in_view(self, path: str) -> str:
        try:
            return resolve_in_root(self.view, path or "/")
        except CopySourceError as exc:
            raise InvalidArgument(f"COPY to /{path}: {exc}") from None

    def resolve(self, entry: PlannedEntry) -> str:
        """The real path (relative, no symlink) ``entry`` lands at, in the image's view.

        As the extractor does: the parents are followed through the image's symlinks; a
        parent directory the plan only makes when missing follows a symlink of its own
        too, while anything else replaces what is at its own name.
        """
        path = entry.path.rstrip("/")
        parent, _, name = path.rpartition("/")
        real_parent = self.written[parent] if parent in self.written else self._in_view(parent)
        real = f"{real_parent}/{name}" if real_parent else name
        if entry.kind == "dir" and entry.create_only:
            followed = self._in_view(real)
            if os.path.isdir(self.view / followed) and not os.path.islink(self.view / followed):
                real = followed
        self.written[path] = real
        return real

    def ensure_parents(self, real: str) -> None:
        parts = real.split("/")[:-1]
        for depth in range(1, len(parts) + 1):
            path = "/".join(parts[:depth])
            if path in self.ready:
                continue
            target = self.upper / path
            if not target.is_dir() or target.is_symlink():
                self._copy_up_dir(path)
            self.ready.add(path)

    def _copy_up_dir(self, path: str) -> None:
        """A directory of the image, in the upper directory with the image's metadata."""
        target = self.upper / path
        try:
            st = os.lstat(self.view / path)
        except FileNotFoundError:
            st = None
        if st is not None and not stat.S_ISDIR(st.st_mode):
            # Resolution never leads below a non-directory: the plan would have said "file".
            raise InvalidArgument(f"COPY: /{path} is not a directory in the image")
        os.mkdir(target, 0o700)
        if st is None:
            os.chmod(target, 0o755)
            return
        os.chown(target, st.st_uid, st.st_gid)
        os.chmod(target, stat.S_IMODE(st.st_mode))

    def _remove(self, target: Path) -> None:
        if target.is_dir() and not target.is_symlink():
            shutil.rmtree(target)
        elif os.path.lexists(target):
            target.unlink()

    def _can_link(self, entry: PlannedEntry, st: os.stat_result) -> bool:
        if entry.source is None or not any(
            entry.source.is_relative_to(base) for base in self.linkable
        ):
            return False
        if self.epoch_ns is not None and st.st_mtime_ns > self.epoch_ns:
            return False
        same = (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns) == (
            entry.mode,
            entry.uid,
            entry.gid,
            entry.mtime_ns,
        )
        return same and self.linked.claim(st.st_dev, st.st_ino)

    def write(self, entry: PlannedEntry) -> None:
        real = self.resolve(entry)
        self.ensure_parents(real)
        target = self.upper / real
        if entry.kind == "dir":
            self._dir(entry, real, target)
            return
        self._remove(target)
        if entry.kind == "file":
            self._file(entry, target)
        elif entry.kind == "inline":
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(entry.data or b"")
            self._meta(target, entry)
        elif entry.kind == "symlink":
            os.symlink(entry.link, target)
            os.chown(target, entry.uid, entry.gid, follow_symlinks=False)
            self._times(target, entry)
        elif entry.kind == "hardlink":
            first = self.written.get(entry.link.rstrip("/"))
            if first is None:
                raise InvalidArgument(f"COPY: hard link {entry.path} to a path not copied")
            os.link(self.upper / first, target, follow_symlinks=False)
        elif entry.kind == "fifo":
            os.mkfifo(target, 0o600)
            self._meta(target, entry)
        self.ready.discard(real)

    def _dir(self, entry: PlannedEntry, real: str, target: Path) -> None:
        exists_in_image = os.path.isdir(self.view / real) and not os.path.islink(self.view / real)
        if entry.create_only and exists_in_image:
            if real not in self.ready:
                if not (target.is_dir() and not target.is_symlink()):
                    self._remove(target)
                    self._copy_up_dir(real)
                self.ready.add(real)
            return
        if not (target.is_dir() and not target.is_symlink()):
            self._remove(target)
            os.mkdir(target, 0o700)
        self._meta(target, entry)
        self.ready.add(real)

    def _file(self, entry: PlannedEntry, target: Path) -> None:
        assert entry.source is not None
        st = os.lstat(entry.source)
        if not stat.S_ISREG(st.st_mode):
            raise InvalidArgument(f"COPY: {entry.source.name} is no longer a regular file")
        if self._can_link(entry, st):
            try:
                os.link(entry.source, target, follow_symlinks=False)
                return
            except OSError as exc:
                if exc.errno != errno.EXDEV:
                    raise
        fd = os.open(entry.source, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as source:
            out = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
            with os.fdopen(out, "wb") as handle:
                shutil.copyfileobj(source, handle, 1 << 20)
        self._meta(target, entry)

    def _meta(self, target: Path, entry: PlannedEntry) -> None:
        # chown first: it clears setuid and setgid bits.
        os.chown(target, entry.uid, entry.gid, follow_symlinks=False)
        os.chmod(target, entry.mode)
        self._times(target, entry)

    def _times(self, target: Path, entry: PlannedEntry) -> None:
        if entry.mtime_ns is None:
            return
        moment = entry.mtime_ns
        if self.epoch_ns is not None:
            moment = min(moment, self.epoch_ns)
        os.utime(target, ns=(moment, moment), follow_symlinks=False)


class LinkedInodes:
    """The source inodes one build has hard-linked into a layer (thread-safe)."""

    def __init__(self) -> None:
        self._seen: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

    def claim(self, device: int, inode: int) -> bool:
        """True the first time an inode is asked for: it may be linked."""
        with self._lock:
            if (device, inode) in self._seen:
                return False
            self._seen.add((device, inode))
            return True


def write_copy_upper(
    entries: list[PlannedEntry],
    view: Path,
    upper: Path,
    *,
    linkable: tuple[Path, ...],
    linked: LinkedInodes,
    epoch: int | None,
) -> None:
    """Write ``entries`` into ``upper`` (see the module docstring). Blocking.

    ``view`` is the image's filesystem, read-only (never a mount of ``upper``): paths are
    resolved there. Files under one of ``linkable`` may be hard-linked.
    """
    try:
        _write_all(entries, _UpperWriter(view, upper, linkable, linked, epoch))
    except OSError as exc:
        raise InvalidArgument(f"COPY failed: {exc.strerror or exc}") from None


def _write_all(entries: list[PlannedEntry], writer: _UpperWriter) -> None:
    for entry in entries:
        writer.write(entry)
    # Directory times last: creating their children changed them.
    for entry in entries:
        if entry.kind == "dir" and not entry.create_only and entry.mtime_ns is not None:
            real = writer.written.get(entry.path.rstrip("/"))
            if real is not None:
                writer._times(writer.upper / real, entry)
