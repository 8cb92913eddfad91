"""Applying one image layer (a tar, possibly gzip or zstd compressed) onto a directory.

Safety is the point of this module. ``tarfile`` only parses headers and streams member
data; it never touches the file system. Every entry is created through a directory
descriptor obtained by :class:`~declarun.daemon.images.tarsafe.InRoot`, which cannot
leave the root, and with ``O_NOFOLLOW``/``O_EXCL`` for the final component, so:

* ``../`` names that climb above the root refuse the whole layer; absolute names are read
  from the root of the layer (as GNU tar and Docker do);
* a symlink planted earlier (by this layer or, in ``flat`` mode, by a lower one) is either
  replaced (when it is the entry's own name) or followed *inside* the root (when it is a
  directory on the way), never written through to the host;
* a hardlink's target is looked up inside the root, so ``/etc/shadow`` means the
  snapshot's own file, and a missing target refuses the layer;
* an existing file is never opened for writing: it is unlinked and a new one is created,
  so a hardlink to some inode can never be used to change that inode.

Whiteouts have two representations, picked by ``mode``:

* ``overlay``: the directory is a layer of its own, later used as an overlayfs lower
  directory; ``.wh.NAME`` becomes an overlay whiteout (a 0/0 character device) and
  ``.wh..wh..opq`` the ``trusted.overlay.opaque=y`` xattr on its directory;
* ``flat``: the directory already holds the flattened parent; ``.wh.NAME`` deletes NAME
  and ``.wh..wh..opq`` deletes everything in the directory that this layer did not add.

Any hostile or malformed entry refuses the whole layer with :class:`UnpackError`;
:func:`apply_layer` works in a temporary sibling directory and renames it into place only
on success, so a refused layer leaves nothing behind.
"""

from __future__ import annotations

import errno
import logging
import os
import shutil
import stat
import tarfile
import zlib
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import BinaryIO, Literal, Self

import zstandard

from declarun.daemon import failpoints
from declarun.daemon.images.fsops import clone_tree, remove_tree, sync_filesystem, temp_sibling
from declarun.daemon.images.layerstream import Readable, ReadAhead, read_ahead
from declarun.daemon.images.tarsafe import InRoot, ResolvedDir, clean_name
from declarun.errors import UnpackError

__all__ = [
    "OPAQUE_WHITEOUT",
    "OVERLAY_OPAQUE_XATTR",
    "WHITEOUT_PREFIX",
    "ApplyResult",
    "Mode",
    "apply_into",
    "apply_layer",
]

log = logging.getLogger(__name__)

Mode = Literal["overlay", "flat"]

WHITEOUT_PREFIX = ".wh."
OPAQUE_WHITEOUT = ".wh..wh..opq"
# Other ".wh..wh." names are aufs bookkeeping (hardlink dirs); Docker skips them too.
_WHITEOUT_META_PREFIX = ".wh..wh."
OVERLAY_OPAQUE_XATTR = "trusted.overlay.opaque"
# A layer must not forge overlayfs metadata (redirects, origins, metacopy, opaque).
_RESERVED_XATTRS = ("trusted.overlay.", "user.overlay.")
_PAX_XATTR = "SCHILY.xattr."

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_CHUNK = 1 << 20
# Files at least this large are checked against the free space before they are written.
_ROOM_CHECK_FROM = 1 << 20
_MAX_WARNINGS = 50
_DIR_CACHE = 16


@dataclass(frozen=True)
class ApplyResult:
    """What applying a layer produced.

    ``diff_id`` is ``sha256:<hex>`` of the uncompressed tar (compare it with the image
    config's ``rootfs.diff_ids``); ``size`` its length in bytes; ``warnings`` things that
    could not be kept (for example xattrs the filesystem refused), each with a count.
    """

    diff_id: str
    size: int
    compression: str
    entries: int
    warnings: tuple[str, ...]


# Not in typeshed, but part of tarfile since Python 3.2.
_HEADER_DAMAGE: tuple[type[Exception], ...] = (
    tarfile.TruncatedHeaderError,  # type: ignore[attr-defined]
    tarfile.InvalidHeaderError,  # type: ignore[attr-defined]
)


class _CorruptHeader(Exception):
    """A tar header in the middle of the stream is damaged (tarfile would stop silently)."""


class _StrictTarInfo(tarfile.TarInfo):
    """TarInfo that turns a damaged or truncated header into an error, not an early end."""

    @classmethod
    def fromtarfile(cls, tf: tarfile.TarFile) -> Self:
        try:
            return super().fromtarfile(tf)
        except _HEADER_DAMAGE as exc:
            raise _CorruptHeader(str(exc)) from None


@dataclass(frozen=True)
class _Times:
    atime_ns: int
    mtime_ns: int


def _parse_time(value: str | None, fallback: float) -> int:
    """Nanoseconds from a PAX time (decimal seconds) or the ustar whole seconds."""
    if value is not None:
        try:
            return int(Decimal(value) * 1_000_000_000)
        except InvalidOperation:
            pass
    return int(fallback) * 1_000_000_000


def _times(member: tarfile.TarInfo) -> _Times:
    mtime = _parse_time(member.pax_headers.get("mtime"), member.mtime)
    atime_raw = member.pax_headers.get("atime")
    atime = _parse_time(atime_raw, member.mtime) if atime_raw is not None else mtime
    return _Times(atime, mtime)


class _Applier:
    """Applies the entries of one tar stream under an open root directory."""

    def __init__(self, root_fd: int, mode: Mode) -> None:
        self.root_fd = root_fd
        self.mode = mode
        self.resolver = InRoot(root_fd)
        # Recently resolved directories, by archive path. Tar entries come grouped by
        # directory, so most lookups hit, and a miss resumes from its nearest ancestor.
        self._dirs: OrderedDict[tuple[str, ...], ResolvedDir] = OrderedDict()
        self._stale = False
        # flat mode only: real paths this layer created, which an opaque whiteout keeps
        self._unpacked: set[str] = set()
        self._dir_times: list[tuple[tuple[str, ...], _Times]] = []
        self._warnings: dict[str, int] = {}

    # ---- bookkeeping -------------------------------------------------------------

    def warn(self, message: str) -> None:
        """Record a non-fatal problem once, counting repeats."""
        if message not in self._warnings:
            if len(self._warnings) >= _MAX_WARNINGS:
                message = "further warnings not recorded"
            else:
                log.warning("unpack: %s", message)
        self._warnings[message] = self._warnings.get(message, 0) + 1

    def warnings(self) -> tuple[str, ...]:
        """Recorded warnings, with a repeat count where there was more than one."""
        return tuple(m if n == 1 else f"{m} (x{n})" for m, n in self._warnings.items())

    def _note_created(self, real: tuple[str, ...]) -> None:
        """Remember that this layer has ``real`` (and so, implicitly, its parents)."""
        if self.mode == "flat":
            # An entry's parents are directories of this layer even without entries of
            # their own: an opaque marker later in the stream must not delete them.
            for depth in range(len(real), 0, -1):
                key = "/".join(real[:depth])
                if key in self._unpacked:
                    break
                self._unpacked.add(key)

    def close(self) -> None:
        """Release the cached directory descriptors."""
        while self._dirs:
            os.close(self._dirs.popitem()[1].fd)

    def _dir(self, parts: tuple[str, ...], *, create: bool = True) -> ResolvedDir:
        """The directory ``parts`` (resolved in the root); valid until the next call."""
        if self._stale:
            # A removal may change what any cached path resolves to.
            self.close()
            self._stale = False
        hit = self._dirs.get(parts)
        if hit is not None:
            self._dirs.move_to_end(parts)
            return hit
        start: ResolvedDir | None = None
        depth = len(parts) - 1
        while depth > 0 and start is None:
            start = self._dirs.get(parts[:depth])
            depth -= 1
        rest = parts[depth + 1 :] if start is not None else parts
        resolved = self.resolver.open_dir(rest, create=create, start=start)
        self._dirs[parts] = resolved
        if len(self._dirs) > _DIR_CACHE:
            os.close(self._dirs.popitem(last=False)[1].fd)
        return resolved

    # ---- entries -----------------------------------------------------------------

    def apply(self, tar: tarfile.TarFile, member: tarfile.TarInfo) -> None:
        """Apply one member; raises :class:`UnpackError` if it is hostile or malformed."""
        parts = clean_name(member.name)
        if not parts:
            if not member.isdir():
                raise UnpackError(f"layer entry {member.name!r}: the root must be a directory")
            self._root_dir(member)
            return
        parent, name = parts[:-1], parts[-1]
        if name.startswith(WHITEOUT_PREFIX):
            self._whiteout(parent, name, member)
            return
        pdir = self._dir(parent)
        if member.isdir():
            self._make_dir(pdir, name, member)
        elif member.isreg():
            self._make_file(tar, pdir, name, member)
        elif member.issym():
            self._make_symlink(pdir, name, member)
        elif member.islnk():
            self._make_hardlink(pdir, name, member)
        elif member.ischr() or member.isblk() or member.isfifo():
            if not self._make_node(pdir, name, member):
                return
        else:
            raise UnpackError(
                f"layer entry {member.name!r}: unsupported entry type {member.type!r}"
            )
        self._note_created((*pdir.parts, name))

    def _remove_existing(self, pdir: ResolvedDir, name: str, *, keep_dir: bool) -> bool:
        """Remove whatever is at ``name`` (never following it); True if a dir was kept."""
        try:
            st = os.stat(name, dir_fd=pdir.fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if keep_dir and stat.S_ISDIR(st.st_mode):
            return True
        self._stale = True
        if stat.S_ISDIR(st.st_mode):
            _rmtree_at(pdir.fd, name)
        else:
            os.unlink(name, dir_fd=pdir.fd)
        return False

    def _root_dir(self, member: tarfile.TarInfo) -> None:
        fd = os.open(".", _DIR_FLAGS, dir_fd=self.root_fd)
        try:
            self._meta_fd(fd, member)
        finally:
            os.close(fd)
        self._dir_times.append(((), _times(member)))

    def _make_dir(self, pdir: ResolvedDir, name: str, member: tarfile.TarInfo) -> None:
        if not self._remove_existing(pdir, name, keep_dir=True):
            os.mkdir(name, 0o700, dir_fd=pdir.fd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=pdir.fd)
        try:
            self._meta_fd(fd, member)
        finally:
            os.close(fd)
        # Directory times are set last: creating children changes them.
        self._dir_times.append(((*pdir.parts, name), _times(member)))

    def _make_file(
        self, tar: tarfile.TarFile, pdir: ResolvedDir, name: str, member: tarfile.TarInfo
    ) -> None:
        try:
            fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=pdir.fd)
        except FileExistsError:
            # Tried first, as most names are new: whatever is there (never opened) goes.
            self._remove_existing(pdir, name, keep_dir=False)
            fd = os.open(name, _NEW_FILE_FLAGS, 0o600, dir_fd=pdir.fd)
        try:
            if member.size >= _ROOM_CHECK_FROM:
                _check_room(fd, member)
            source = tar.extractfile(member)
            if source is not None:
                _copy_to_fd(source, fd)
            self._meta_fd(fd, member)
            t = _times(member)
            self._utime(member, fd, None, t)
        finally:
            os.close(fd)

    def _make_symlink(self, pdir: ResolvedDir, name: str, member: tarfile.TarInfo) -> None:
        target = member.linkname
        if not target or "\x00" in target:
            raise UnpackError(f"layer entry {member.name!r}: invalid symlink target")
        self._remove_existing(pdir, name, keep_dir=False)
        os.symlink(target, name, dir_fd=pdir.fd)
        os.chown(name, member.uid, member.gid, dir_fd=pdir.fd, follow_symlinks=False)
        if any(k.startswith(_PAX_XATTR) for k in member.pax_headers):
            self.warn("xattrs on symlinks are not kept")
        self._utime(member, name, pdir.fd, _times(member))

    def _make_hardlink(self, pdir: ResolvedDir, name: str, member: tarfile.TarInfo) -> None:
        target = clean_name(member.linkname)
        if not target:
            raise UnpackError(f"layer entry {member.name!r}: hardlink to the layer root")
        self._remove_existing(pdir, name, keep_dir=False)
        # The target is looked up inside the root like any other path: an absolute host
        # path such as /etc/shadow names the snapshot's own /etc/shadow, if it has one.
        source = self.resolver.open_dir(target[:-1], create=False)
        try:
            st = os.stat(target[-1], dir_fd=source.fd, follow_symlinks=False)
            if stat.S_ISDIR(st.st_mode):
                raise UnpackError(f"layer entry {member.name!r}: hardlink to a directory")
            os.link(
                target[-1], name, src_dir_fd=source.fd, dst_dir_fd=pdir.fd, follow_symlinks=False
            )
        finally:
            os.close(source.fd)

    def _make_node(self, pdir: ResolvedDir, name: str, member: tarfile.TarInfo) -> bool:
        """Create a device or fifo; False if the kernel would not let us (rootless)."""
        self._remove_existing(pdir, name, keep_dir=False)
        if member.isfifo():
            os.mkfifo(name, 0o600, dir_fd=pdir.fd)
        else:
            kind = stat.S_IFCHR if member.ischr() else stat.S_IFBLK
            device = os.makedev(member.devmajor, member.devminor)
            try:
                os.mknod(name, kind | 0o600, device, dir_fd=pdir.fd)
            except PermissionError:
                self.warn("device nodes skipped: not permitted to create them")
                return False
        os.chown(name, member.uid, member.gid, dir_fd=pdir.fd, follow_symlinks=False)
        # The node was just made by us, so following its (non-symlink) name is safe.
        os.chmod(name, member.mode & 0o7777, dir_fd=pdir.fd)
        xattrs = self._xattrs(member)
        if xattrs:
            # A device must not be opened (that could act on it); O_PATH plus the
            # /proc magic link reaches the inode without opening it.
            opath = os.open(name, os.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=pdir.fd)
            try:
                for key, value in xattrs:
                    self._setxattr(f"/proc/self/fd/{opath}", key, value)
            finally:
                os.close(opath)
        self._utime(member, name, pdir.fd, _times(member))
        return True

    # ---- whiteouts ---------------------------------------------------------------

    def _whiteout(self, parent: tuple[str, ...], name: str, member: tarfile.TarInfo) -> None:
        if name == OPAQUE_WHITEOUT:
            self._opaque(parent)
            return
        if name.startswith(_WHITEOUT_META_PREFIX):
            return
        victim = name[len(WHITEOUT_PREFIX) :]
        if victim in ("", ".", ".."):
            raise UnpackError(f"layer entry {member.name!r}: invalid whiteout")
        if self.mode == "overlay":
            pdir = self._dir(parent)
            self._remove_existing(pdir, victim, keep_dir=False)
            os.mknod(victim, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pdir.fd)
            os.chown(victim, member.uid, member.gid, dir_fd=pdir.fd, follow_symlinks=False)
            return
        try:
            pdir = self._dir(parent, create=False)
        except (FileNotFoundError, UnpackError):
            return  # nothing below a missing (or non-directory) parent to delete
        self._remove_existing(pdir, victim, keep_dir=False)

    def _opaque(self, parent: tuple[str, ...]) -> None:
        if self.mode == "overlay":
            directory = self._dir(parent)
            self._note_created(directory.parts)
            try:
                os.setxattr(directory.fd, OVERLAY_OPAQUE_XATTR, b"y")
            except OSError as exc:
                raise UnpackError(
                    f"cannot mark {'/'.join(parent) or '.'} opaque: {exc.strerror} "
                    "(overlay snapshots need trusted xattrs)"
                ) from exc
            return
        try:
            directory = self._dir(parent, create=False)
        except (FileNotFoundError, UnpackError):
            return
        self._stale = True
        self._purge_lower(directory)

    def _purge_lower(self, top: ResolvedDir) -> None:
        """Delete everything under ``top`` that this layer did not create (flat mode)."""
        work: list[tuple[int, tuple[str, ...]]] = [(os.dup(top.fd), top.parts)]
        while work:
            fd, parts = work.pop()
            try:
                for child in os.listdir(fd):
                    path = (*parts, child)
                    st = os.stat(child, dir_fd=fd, follow_symlinks=False)
                    if "/".join(path) not in self._unpacked:
                        if stat.S_ISDIR(st.st_mode):
                            _rmtree_at(fd, child)
                        else:
                            os.unlink(child, dir_fd=fd)
                    elif stat.S_ISDIR(st.st_mode):
                        work.append((os.open(child, _DIR_FLAGS, dir_fd=fd), path))
            finally:
                os.close(fd)

    # ---- metadata ----------------------------------------------------------------

    def _xattrs(self, member: tarfile.TarInfo) -> list[tuple[str, bytes]]:
        out = []
        for key, value in member.pax_headers.items():
            if not key.startswith(_PAX_XATTR):
                continue
            xname = key[len(_PAX_XATTR) :]
            if xname.startswith(_RESERVED_XATTRS):
                self.warn(f"xattr {xname} ignored: reserved for overlayfs")
                continue
            # tarfile decoded the value as UTF-8 or, failing that, with surrogateescape.
            out.append((xname, value.encode("utf-8", "surrogateescape")))
        return out

    def _setxattr(self, target: int | str, key: str, value: bytes) -> None:
        try:
            os.setxattr(target, key, value)
        except OSError as exc:
            # security.* without an LSM, trusted.* when unprivileged, user.* on some fs
            self.warn(f"xattr {key} not kept: {exc.strerror or exc}")

    def _meta_fd(self, fd: int, member: tarfile.TarInfo) -> None:
        # chown first: it clears setuid/setgid bits and file capabilities.
        os.fchown(fd, member.uid, member.gid)
        os.fchmod(fd, member.mode & 0o7777)
        for key, value in self._xattrs(member):
            self._setxattr(fd, key, value)

    def _utime(
        self, member: tarfile.TarInfo, target: int | str, dir_fd: int | None, t: _Times
    ) -> None:
        try:
            if isinstance(target, int):
                os.utime(target, ns=(t.atime_ns, t.mtime_ns))
            else:
                os.utime(target, ns=(t.atime_ns, t.mtime_ns), dir_fd=dir_fd, follow_symlinks=False)
        except (OverflowError, OSError) as exc:
            self.warn(f"timestamp of {member.name!r} not kept: {exc}")

    def finish(self) -> None:
        """Set directory times, now that nothing will be created inside them."""
        self.close()
        latest = dict(self._dir_times)  # a directory listed twice gets its last times
        # Sorted paths let one stack of open directories serve the whole walk.
        stack: list[tuple[tuple[str, ...], int]] = [((), os.dup(self.root_fd))]
        try:
            for parts in sorted(latest):
                while stack[-1][0] != parts[: len(stack[-1][0])]:
                    os.close(stack.pop()[1])
                fd = self._descend(stack, parts)
                if fd is None:
                    continue  # replaced or deleted by a later entry
                t = latest[parts]
                try:
                    os.utime(fd, ns=(t.atime_ns, t.mtime_ns))
                except (OverflowError, OSError) as exc:
                    self.warn(f"timestamp of directory {'/'.join(parts) or '.'!r} not kept: {exc}")
        finally:
            for _, fd in stack:
                os.close(fd)

    @staticmethod
    def _descend(stack: list[tuple[tuple[str, ...], int]], parts: tuple[str, ...]) -> int | None:
        """Open ``parts`` below the stack top without following anything; push each level."""
        while len(stack[-1][0]) < len(parts):
            here, fd = stack[-1]
            name = parts[len(here)]
            try:
                child = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError:
                return None
            stack.append(((*here, name), child))
        return stack[-1][1]


def _rmtree_at(dir_fd: int, name: str) -> None:
    """Remove directory ``name`` below ``dir_fd`` recursively, never following symlinks."""
    shutil.rmtree(name, dir_fd=dir_fd)


def _check_room(fd: int, member: tarfile.TarInfo) -> None:
    """Refuse an entry larger than the free space left where it would be written.

    The limit for a layer's inflated size: a layer that says it holds more than the disk
    can take (a sparse file of a terabyte, a gzip bomb of zeros) is refused before a byte
    of that entry is written, rather than filling the data root's filesystem.
    """
    vfs = os.fstatvfs(fd)
    free = vfs.f_bavail * vfs.f_frsize
    if member.size > free:
        raise UnpackError(
            f"layer entry {member.name!r} is {member.size} bytes, more than the "
            f"{free} bytes free on the data root's filesystem"
        )


def _copy_to_fd(source: Readable, fd: int) -> None:
    """Copy ``source`` to ``fd``; runs of zeros become holes (as dockerd writes sparse files)."""
    hole = 0
    while True:
        chunk = source.read(_CHUNK)
        if not chunk:
            break
        if not chunk.strip(b"\0"):
            hole += len(chunk)
            continue
        if hole:
            os.lseek(fd, hole, os.SEEK_CUR)
            hole = 0
        view = memoryview(chunk)
        while view:
            written = os.write(fd, view)
            view = view[written:]
    if hole:
        os.ftruncate(fd, os.lseek(fd, hole, os.SEEK_CUR))


def _open_tar(reader: ReadAhead) -> tarfile.TarFile | None:
    """Open the stream for sequential header reading; None for an empty (0-byte) layer."""
    try:
        return tarfile.open(  # type: ignore[call-overload, no-any-return]
            fileobj=reader,
            mode="r|",
            tarinfo=_StrictTarInfo,
            encoding="utf-8",
            errors="surrogateescape",
        )
    except tarfile.ReadError as exc:
        if reader.size == 0:
            return None
        raise UnpackError(f"layer is not a tar archive: {exc}") from exc


def _apply_members(tar: tarfile.TarFile, applier: _Applier) -> int:
    """Apply every member in order; returns how many there were."""
    entries = 0
    while (member := tar.next()) is not None:
        # tarfile keeps every member it has seen; a layer can hold millions.
        tar.members.clear()  # type: ignore[attr-defined]
        entries += 1
        try:
            applier.apply(tar, member)
            failpoints.hit("unpack-midway")
        except OSError as exc:
            raise UnpackError(f"layer entry {member.name!r}: {exc.strerror or exc}") from exc
        except (ValueError, OverflowError) as exc:
            # out-of-range ids or device numbers (tar's base-256 fields can hold anything)
            raise UnpackError(f"layer entry {member.name!r}: {exc}") from exc
    return entries


@contextmanager
def _open_root(root: Path) -> Iterator[int]:
    fd = os.open(root, _DIR_FLAGS)
    try:
        yield fd
    finally:
        os.close(fd)


def apply_into(layer: BinaryIO | Readable, root: Path, *, mode: Mode) -> ApplyResult:
    """Apply a layer stream onto the existing directory ``root``, in place.

    Not atomic: on :class:`UnpackError` the directory is left half-applied and the caller
    must discard it (the snapshotters apply into a private directory for that reason;
    :func:`apply_layer` does it for you). Returns the diff ID computed on the way.
    """
    if mode not in ("overlay", "flat"):
        raise ValueError(f"unknown apply mode {mode!r}")
    reader, compression = read_ahead(layer)
    entries = 0
    with reader, _open_root(root) as root_fd:
        applier = _Applier(root_fd, mode)
        try:
            tar = _open_tar(reader)
            if tar is not None:
                with tar:
                    entries = _apply_members(tar, applier)
            reader.drain()
            applier.finish()
        except _CorruptHeader as exc:
            raise UnpackError(f"layer has a damaged tar header: {exc}") from exc
        except (tarfile.TarError, EOFError, zlib.error, zstandard.ZstdError) as exc:
            raise UnpackError(f"layer is truncated or corrupt: {exc}") from exc
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UnpackError(f"no space left to unpack the layer: {exc.strerror}") from exc
            raise UnpackError(f"layer is truncated or corrupt: {exc}") from exc
        finally:
            applier.close()
    return ApplyResult(
        diff_id=reader.digest,
        size=reader.size,
        compression=compression,
        entries=entries,
        warnings=applier.warnings(),
    )


def apply_layer(
    layer: BinaryIO | Readable,
    target_dir: Path,
    mode: Mode = "overlay",
    *,
    base: Path | None = None,
    durable: bool = True,
) -> ApplyResult:
    """Apply a layer into the new directory ``target_dir``, all or nothing.

    ``mode="overlay"`` makes ``target_dir`` a layer of its own for overlayfs;
    ``mode="flat"`` starts from a faithful copy of ``base`` (the flattened parent, if
    any) and applies the layer on top. The work happens in a temporary sibling which is
    renamed to ``target_dir`` only on success; on any error it is removed. ``target_dir``
    must not exist. With ``durable`` the filesystem is synced before the rename.
    """
    target_dir = Path(target_dir)
    if base is not None and mode != "flat":
        raise ValueError("a base directory only makes sense in flat mode")
    if target_dir.exists() or target_dir.is_symlink():
        raise UnpackError(f"{target_dir} already exists")
    work = temp_sibling(target_dir, "unpack")
    os.mkdir(work, 0o700)
    try:
        # A layer without a "./" entry keeps this mode for its root directory.
        os.chmod(work, 0o755)
        if base is not None:
            clone_tree(base, work)
        result = apply_into(layer, work, mode=mode)
        if durable:
            sync_filesystem(work)
        os.rename(work, target_dir)
    except BaseException:
        remove_tree(work)
        raise
    return result
