"""A container's files seen from the daemon, without ever leaving its root: ``docker cp``,
``docker export`` and the layer of ``docker commit`` (what changed is :mod:`changes`).

Every path a client names is resolved inside the container's root through directory
descriptors (:class:`~declarun.daemon.images.tarsafe.InRoot`): ``..`` stops at the root
and a symbolic link is followed with the root as ``/``, so a link planted in the container
(``/escape -> /``, ``/x -> /etc/shadow``) names the container's own files, never the
host's. The last component of a path is not followed: ``GET archive`` of a symlink
archives the link, and its ``linkTarget`` (resolved inside the root) lets the client ask
for the target, as with dockerd.

Tars are written from descriptors too: directories are listed through their fd and every
entry is opened with ``O_NOFOLLOW`` relative to its directory. Extraction
(:func:`extract_into`) uses the layer extractor of the image store
(:func:`~declarun.daemon.images.unpack.apply_into`, flat mode) on the destination
directory opened inside the root, so an archive cannot write through a link either.
Known differences from dockerd: extended attributes are not archived, and ``.wh.*`` names
in an uploaded archive are whiteouts (they delete), as in a layer.

Mounts (volumes, binds, tmpfs) are seen when ``root`` shows them: the archive endpoints
pass the container's own view (:mod:`~declarun.daemon.containers.rootfs.view`).
"""

from __future__ import annotations

import base64
import errno
import json
import os
import stat
import tarfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, BinaryIO, cast

from declarun.daemon.containers.rootfs.changes import CHANGE_DELETED, Change
from declarun.daemon.images.tarsafe import InRoot, ResolvedDir
from declarun.daemon.images.unpack import WHITEOUT_PREFIX, apply_into
from declarun.errdefs import InvalidArgument, NotFound
from declarun.errors import UnpackError

__all__ = [
    "PathStat",
    "extract_into",
    "go_file_mode",
    "stat_path",
    "write_layer_tar",
    "write_path_tar",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY
_MAX_HOPS = 40

# Go's os.FileMode type bits (the stat header carries Go's encoding).
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def go_file_mode(st_mode: int) -> int:
    """``st_mode`` as Go's ``os.FileMode`` (what the docker CLI decodes)."""
    mode = st_mode & 0o777
    if stat.S_ISDIR(st_mode):
        mode |= _GO_DIR
    elif stat.S_ISLNK(st_mode):
        mode |= _GO_SYMLINK
    elif stat.S_ISBLK(st_mode):
        mode |= _GO_DEVICE
    elif stat.S_ISCHR(st_mode):
        mode |= _GO_DEVICE | _GO_CHARDEV
    elif stat.S_ISFIFO(st_mode):
        mode |= _GO_PIPE
    elif stat.S_ISSOCK(st_mode):
        mode |= _GO_SOCKET
    if st_mode & stat.S_ISUID:
        mode |= _GO_SETUID
    if st_mode & stat.S_ISGID:
        mode |= _GO_SETGID
    if st_mode & stat.S_ISVTX:
        mode |= _GO_STICKY
    return mode


def _rfc3339(ns: int) -> str:
    seconds, nanos = divmod(ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


@dataclass(frozen=True)
class PathStat:
    """``X-Docker-Container-Path-Stat``: name, size, Go mode, mtime, link target."""

    name: str
    size: int
    mode: int
    mtime: str
    link_target: str

    def header(self) -> str:
        """The base64 JSON header value."""
        doc = {"name": self.name, "size": self.size, "mode": self.mode,
               "mtime": self.mtime, "linkTarget": self.link_target}  # fmt: skip
        return base64.b64encode(json.dumps(doc).encode()).decode()

    @property
    def is_dir(self) -> bool:
        """Whether the path is a directory."""
        return bool(self.mode & _GO_DIR)


def _parts(path: str) -> list[str]:
    """Lexically cleaned components of an absolute in-container path."""
    out: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if out:
                out.pop()
            continue
        out.append(part)
    return out


def _open_root(root: Path) -> int:
    return os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)


def _parent(in_root: InRoot, parts: list[str]) -> ResolvedDir:
    try:
        return in_root.open_dir(parts[:-1], follow=True)
    except UnpackError as exc:
        raise FileNotFoundError(errno.ENOENT, str(exc)) from None


def _resolve_target(in_root: InRoot, parts: list[str]) -> str:
    """The in-root absolute path ``parts`` leads to when every link is followed."""
    for _ in range(_MAX_HOPS):
        if not parts:
            return "/"
        try:
            parent = _parent(in_root, parts)
        except (FileNotFoundError, NotADirectoryError):
            return "/" + "/".join(parts)  # dangling: the target as the link names it
        try:
            st = os.stat(parts[-1], dir_fd=parent.fd, follow_symlinks=False)
            if not stat.S_ISLNK(st.st_mode):
                return "/" + "/".join([*parent.parts, parts[-1]])
            target = os.readlink(parts[-1], dir_fd=parent.fd)
        except FileNotFoundError:
            return "/" + "/".join([*parent.parts, parts[-1]])
        finally:
            os.close(parent.fd)
        base = [] if target.startswith("/") else list(parent.parts)
        parts = _parts("/".join([*base, target]))
    raise OSError(errno.ELOOP, "too many levels of symbolic links")


def stat_path(root: Path, path: str) -> PathStat:
    """Stat ``path`` inside ``root`` (the last component not followed); FileNotFoundError."""
    parts = _parts(path)
    root_fd = _open_root(root)
    try:
        in_root = InRoot(root_fd)
        if not parts:
            st = os.fstat(root_fd)
            return PathStat("/", st.st_size, go_file_mode(st.st_mode), _rfc3339(st.st_mtime_ns), "")
        parent = _parent(in_root, parts)
        try:
            st = os.stat(parts[-1], dir_fd=parent.fd, follow_symlinks=False)
        finally:
            os.close(parent.fd)
        link = _resolve_target(in_root, parts) if stat.S_ISLNK(st.st_mode) else ""
        return PathStat(parts[-1], st.st_size, go_file_mode(st.st_mode),
                        _rfc3339(st.st_mtime_ns), link)  # fmt: skip
    finally:
        os.close(root_fd)


class _TarWriter:
    """Adds file-system entries to a tar from directory descriptors."""

    def __init__(self, out: IO[bytes], mtime_limit: int | None = None) -> None:
        self.tar = tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT)  # noqa: SIM115 - closed by close()
        self._links: dict[tuple[int, int], str] = {}
        self._mtime_limit = mtime_limit

    def close(self) -> None:
        self.tar.close()

    def add(self, dir_fd: int, name: str, arcname: str, *, recursive: bool) -> None:
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        info = tarfile.TarInfo(arcname)
        info.mode = stat.S_IMODE(st.st_mode)
        info.uid, info.gid = st.st_uid, st.st_gid
        limit = self._mtime_limit
        if limit is not None and st.st_mtime_ns >= limit * 1_000_000_000:
            info.mtime = limit
        else:
            # The exact time, nanoseconds included (a float would round it).
            seconds, nanos = divmod(st.st_mtime_ns, 1_000_000_000)
            info.mtime = seconds
            if nanos:
                info.pax_headers = {**info.pax_headers, "mtime": f"{seconds}.{nanos:09d}"}
        if stat.S_ISDIR(st.st_mode):
            info.type = tarfile.DIRTYPE
            self.tar.addfile(info)
            if recursive:
                fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                try:
                    self.add_children(fd, arcname)
                finally:
                    os.close(fd)
        elif stat.S_ISREG(st.st_mode):
            key = (st.st_dev, st.st_ino)
            if st.st_nlink > 1 and key in self._links:
                info.type = tarfile.LNKTYPE
                info.linkname = self._links[key]
                self.tar.addfile(info)
                return
            fd = os.open(name, _FILE_FLAGS, dir_fd=dir_fd)
            with os.fdopen(fd, "rb") as handle:
                info.size = os.fstat(handle.fileno()).st_size
                self.tar.addfile(info, handle)
            if st.st_nlink > 1:
                self._links[key] = arcname
        elif stat.S_ISLNK(st.st_mode):
            info.type = tarfile.SYMTYPE
            info.linkname = os.readlink(name, dir_fd=dir_fd)
            self.tar.addfile(info)
        elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
            info.type = tarfile.CHRTYPE if stat.S_ISCHR(st.st_mode) else tarfile.BLKTYPE
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
            self.tar.addfile(info)
        elif stat.S_ISFIFO(st.st_mode):
            info.type = tarfile.FIFOTYPE
            self.tar.addfile(info)
        # Sockets are skipped, as by Go's archive/tar users.

    def add_children(self, dir_fd: int, prefix: str) -> None:
        for child in sorted(os.listdir(dir_fd)):
            self.add(dir_fd, child, f"{prefix}/{child}" if prefix else child, recursive=True)

    def add_whiteout(self, arcname: str) -> None:
        directory, _, base = arcname.rpartition("/")
        info = tarfile.TarInfo(f"{directory}/{WHITEOUT_PREFIX}{base}" if directory
                               else f"{WHITEOUT_PREFIX}{base}")  # fmt: skip
        info.mode = 0
        self.tar.addfile(info)


def write_path_tar(root: Path, path: str, out: IO[bytes]) -> None:
    """``GET archive``: ``path`` inside ``root`` (recursively) as a tar named by its base name.

    The root itself (``/``) is archived as its contents. FileNotFoundError if missing.
    """
    parts = _parts(path)
    root_fd = _open_root(root)
    try:
        writer = _TarWriter(out)
        try:
            if not parts:
                writer.add_children(root_fd, "")
            else:
                parent = _parent(InRoot(root_fd), parts)
                try:
                    writer.add(parent.fd, parts[-1], parts[-1], recursive=True)
                finally:
                    os.close(parent.fd)
        finally:
            writer.close()
    finally:
        os.close(root_fd)


def _check_dir_nondir(dest: ResolvedDir, spool: BinaryIO) -> None:
    """dockerd's ``noOverwriteDirNonDir``: no directory replaced by a file, nor the reverse."""
    spool.seek(0)
    try:
        with tarfile.open(fileobj=spool, mode="r|*") as tar:
            for member in tar:
                parts = _parts(member.name)
                if not parts:
                    continue
                try:
                    parent = InRoot(dest.fd).open_dir(parts[:-1], follow=True)
                except (OSError, UnpackError):
                    continue
                try:
                    st = os.stat(parts[-1], dir_fd=parent.fd, follow_symlinks=False)
                except OSError:
                    continue
                finally:
                    os.close(parent.fd)
                existing_dir = stat.S_ISDIR(st.st_mode)
                if existing_dir and not member.isdir():
                    raise InvalidArgument(
                        f'cannot overwrite directory "/{"/".join(parts)}" with non-directory'
                    )
                if not existing_dir and member.isdir():
                    raise InvalidArgument(
                        f'cannot overwrite non-directory "/{"/".join(parts)}" with directory'
                    )
    except tarfile.TarError as exc:
        raise InvalidArgument(f"the archive is not a valid tar: {exc}") from None
    finally:
        spool.seek(0)


def extract_into(root: Path, path: str, spool: BinaryIO, *, no_overwrite_dir_non_dir: bool) -> None:
    """``PUT archive``: extract the tar in ``spool`` into directory ``path`` inside ``root``.

    NotFound when ``path`` does not exist, InvalidArgument when it is not a directory or the
    archive is refused.
    """
    parts = _parts(path)
    root_fd = _open_root(root)
    try:
        try:
            dest = InRoot(root_fd).open_dir(parts, follow=True)
        except FileNotFoundError:
            raise NotFound(f"Could not find the file {path} in container") from None
        except UnpackError:
            raise InvalidArgument("extraction point is not a directory") from None
        try:
            if no_overwrite_dir_non_dir:
                _check_dir_nondir(dest, spool)
            # The destination is reached through its descriptor: nothing on the way can be
            # swapped for a link between the lookup and the extraction.
            try:
                apply_into(spool, cast(Path, _FdPath(dest.fd)), mode="flat")
            except UnpackError as exc:
                raise InvalidArgument(f"cannot extract the archive: {exc}") from None
        finally:
            os.close(dest.fd)
    finally:
        os.close(root_fd)


class _FdPath(os.PathLike[str]):
    """``/proc/self/fd/N/.``: an open directory as a path whose last part is no link.

    ``pathlib.Path`` would drop the trailing ``.``, and ``apply_into`` opens its root with
    ``O_NOFOLLOW``, which refuses the magic link ``/proc/self/fd/N`` itself.
    """

    def __init__(self, fd: int) -> None:
        self._path = f"/proc/self/fd/{fd}/."

    def __fspath__(self) -> str:
        return self._path


def write_layer_tar(
    merged_root: Path, changes: list[Change], out: IO[bytes], *, mtime_limit: int | None = None
) -> None:
    """The layer of ``docker commit``: changed entries from the merged root, ``.wh.`` for deletions.

    Directories are added without their children (each changed child is a change of its
    own); an entry that vanished since ``changes`` was computed is skipped. Entries come in
    the order of ``changes`` with no user or group names and no access or change times;
    ``mtime_limit`` (Unix seconds) clamps modification times, so the same files always give
    the same bytes (``SOURCE_DATE_EPOCH`` builds).
    """
    root_fd = _open_root(merged_root)
    try:
        writer = _TarWriter(out, mtime_limit)
        in_root = InRoot(root_fd)
        try:
            for change in changes:
                parts = _parts(change.path)
                if not parts:
                    continue
                arcname = "/".join(parts)
                if change.kind == CHANGE_DELETED:
                    writer.add_whiteout(arcname)
                    continue
                try:
                    parent = in_root.open_dir(parts[:-1], follow=False)
                except (OSError, UnpackError):
                    continue
                try:
                    writer.add(parent.fd, parts[-1], arcname, recursive=False)
                except FileNotFoundError:
                    continue
                finally:
                    os.close(parent.fd)
        finally:
            writer.close()
    finally:
        os.close(root_fd)
