"""``COPY`` and ``ADD`` without a container: the frontend's plan, its digest, and the write.

:func:`plan_step_copy` resolves a :class:`~declarun.dockerfile.CopySpec` with the frontend's
:func:`~declarun.dockerfile.plan_copy` against the source filesystem (the extracted context,
or the ``--from`` stage's or image's root) and the destination image's root (which decides
"into a directory or onto a file", and where ``--chown`` names are looked up). ``ADD`` URLs
are downloaded by :func:`download` (bounded in size, ``--checksum`` verified) before the
cache key is computed, since their content is part of it, as in dockerd.

:func:`write_copy` writes what the plan lists into the step's writable root: the entries go
through one tar applied by the safe extractor (so a destination path through a symlink of
the image, ``/bin -> usr/bin``, lands where the link points, inside the root), parent
directories that exist are left as they are, archives are extracted in place
(:func:`declarun.daemon.containers.fsaccess.extract_into`), and every time is clamped to
``SOURCE_DATE_EPOCH`` when one is given.
"""

from __future__ import annotations

import bz2
import email.utils
import hashlib
import lzma
import os
import posixpath
import re
import shutil
import stat
import tarfile
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, BinaryIO, Protocol
from urllib.parse import unquote, urlsplit

import aiohttp

from declarun.daemon.containers.rootfs.fsaccess import extract_into
from declarun.daemon.images.unpack import apply_into
from declarun.dockerfile import CopyPlan, CopySpec, Owner, PlannedEntry, parse_chown, plan_copy
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.scope import resolve_in_root
from declarun.dockerfile.sourcedigest import (
    classic_entry_hash,
    classic_source_hash,
    extend_digest,
    sources_digest,
)
from declarun.errdefs import InvalidArgument
from declarun.errors import UnpackError

__all__ = [
    "DestinationFacts",
    "Downloaded",
    "copy_cache_digest",
    "copy_entries",
    "copy_history_hash",
    "download",
    "is_dir_in",
    "plan_step_copy",
    "read_image_text",
    "write_copy",
]

_PASSWD_LIMIT = 4 * 1024 * 1024
_CHUNK = 1 << 20
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
_DISPOSITION_NAME = re.compile(r'filename="?([^";]+)"?')


@dataclass(frozen=True)
class Downloaded:
    """An ``ADD`` URL fetched into the build's scratch space."""

    url: str
    path: Path
    name: str
    digest: str
    mtime_ns: int


def read_image_text(root: Path, path: str) -> str | None:
    """A small text file of the image at ``root`` (``/etc/passwd``), symlinks kept inside."""
    resolved = resolve_in_root(root, path)
    try:
        fd = os.open(root / resolved, _FILE_FLAGS)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as handle:
        if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
            return None
        return handle.read(_PASSWD_LIMIT).decode("utf-8", "replace")


def is_dir_in(root: Path, path: str) -> bool:
    """Whether ``path`` is a directory of the image at ``root`` (symlinks kept inside)."""
    try:
        resolved = resolve_in_root(root, path)
    except CopySourceError:
        return False
    return os.path.isdir(root / resolved) and not os.path.islink(root / resolved)


class DestinationFacts(Protocol):
    """What planning a ``COPY`` asks of the image it writes into."""

    def is_dir(self, path: str) -> bool:
        """Whether ``path`` is a directory there."""
        ...

    def text(self, path: str) -> str | None:
        """A small text file there (``/etc/passwd``), or None."""
        ...


def _names_owner(chown: str | None) -> bool:
    return bool(chown) and not all(part.isdigit() for part in (chown or "").split(":"))


def plan_step_copy(spec: CopySpec, source_root: Path, dest: DestinationFacts) -> CopyPlan:
    """The frontend's plan of ``spec`` (blocking; :class:`CopySourceError` as dockerd words it)."""
    if spec.parents or spec.excludes:
        raise InvalidArgument(
            f"{spec.keyword} --parents and --exclude are not supported by declarund's builder"
        )
    names = _names_owner(spec.chown)
    return plan_copy(
        spec,
        source_root,
        passwd=dest.text("/etc/passwd") if names else None,
        group=dest.text("/etc/group") if names else None,
        is_dir=dest.is_dir,
    )


def copy_cache_digest(
    plan: CopyPlan,
    downloads: list[Downloaded],
    known: Callable[[Path], str | None] | None = None,
) -> str:
    """The sources digest of the cache key: the plan's, extended by downloaded contents;
    ``known`` gives digests of source files already hashed (the received context's)."""
    digest = sources_digest(plan, known=known)
    for item in downloads:
        digest = extend_digest(digest, item.url, item.digest)
    return digest


def copy_history_hash(plan: CopyPlan, downloads: list[Downloaded], *, from_context: bool) -> str:
    """dockerd's ``file:``/``dir:``/``multi:`` hash for the history (blocking)."""
    downloaded = [
        "file:" + classic_entry_hash(item.path.parent, item.path.name, "image")
        for item in downloads
    ]
    return classic_source_hash(
        plan, flavor="context" if from_context else "image", downloaded=downloaded
    )


def _url_name(url: str, disposition: str | None) -> str:
    if disposition:
        match = _DISPOSITION_NAME.search(disposition)
        if match and posixpath.basename(match.group(1)) not in ("", ".", ".."):
            return posixpath.basename(match.group(1))
    name = posixpath.basename(unquote(urlsplit(url).path))
    return name if name not in ("", ".", "..") else "__unnamed__"


async def download(
    session: aiohttp.ClientSession,
    url: str,
    directory: Path,
    *,
    max_bytes: int,
    checksum: str | None = None,
) -> Downloaded:
    """Fetch ``url`` into ``directory`` (at most ``max_bytes``); dockerd's errors."""
    hasher = hashlib.sha256()
    target = directory / "download"
    size = 0
    try:
        async with session.get(url, allow_redirects=True) as response:
            if response.status >= 400:
                raise InvalidArgument(
                    f"failed to GET {url} with status {response.status}: {response.reason}"
                )
            name = _url_name(str(response.url), response.headers.get("Content-Disposition"))
            modified = response.headers.get("Last-Modified")
            with target.open("wb") as out:
                async for chunk in response.content.iter_chunked(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise InvalidArgument(
                            f"download of {url} is larger than the {max_bytes} bytes allowed"
                        )
                    hasher.update(chunk)
                    out.write(chunk)
    except aiohttp.ClientError as exc:
        raise InvalidArgument(f"failed to download {url}: {exc}") from None
    digest = "sha256:" + hasher.hexdigest()
    if checksum is not None and checksum != digest:
        raise InvalidArgument(f"digest mismatch for {url}: {digest}, expected {checksum}")
    mtime_ns = time.time_ns()
    if modified:
        parsed = email.utils.parsedate_to_datetime(modified)
        if parsed is not None:
            mtime_ns = int(parsed.timestamp()) * 1_000_000_000
    final = directory / name
    os.rename(target, final)
    os.chmod(final, 0o600)
    os.utime(final, ns=(mtime_ns, mtime_ns))
    return Downloaded(url, final, name, digest, mtime_ns)


def _clamp(mtime_ns: int | None, epoch: int | None) -> float:
    moment = time.time_ns() if mtime_ns is None else mtime_ns
    if epoch is not None:
        moment = min(moment, epoch * 1_000_000_000)
    return moment / 1_000_000_000


def _exists(root: Path, path: str) -> bool:
    try:
        resolved = resolve_in_root(root, path)
    except CopySourceError:
        return False
    return os.path.lexists(root / resolved)


def _info(entry: PlannedEntry, epoch: int | None) -> tarfile.TarInfo:
    info = tarfile.TarInfo(entry.path.lstrip("/"))
    info.mode = entry.mode
    info.uid, info.gid = entry.uid, entry.gid
    info.mtime = _clamp(entry.mtime_ns, epoch)
    return info


def _add_entry(tar: tarfile.TarFile, entry: PlannedEntry, epoch: int | None) -> None:
    info = _info(entry, epoch)
    if entry.kind == "dir":
        info.type = tarfile.DIRTYPE
        tar.addfile(info)
    elif entry.kind == "symlink":
        info.type = tarfile.SYMTYPE
        info.linkname = entry.link
        tar.addfile(info)
    elif entry.kind == "hardlink":
        info.type = tarfile.LNKTYPE
        info.linkname = entry.link.lstrip("/")
        tar.addfile(info)
    elif entry.kind == "fifo":
        info.type = tarfile.FIFOTYPE
        tar.addfile(info)
    elif entry.kind == "inline":
        data = entry.data or b""
        info.size = len(data)
        tar.addfile(info, _BytesReader(data))
    else:
        assert entry.source is not None
        # O_NOFOLLOW: the plan resolved the source already; a link now would be a swap.
        fd = os.open(entry.source, _FILE_FLAGS)
        with os.fdopen(fd, "rb") as handle:
            info.size = os.fstat(handle.fileno()).st_size
            tar.addfile(info, handle)


class _BytesReader:
    def __init__(self, data: bytes) -> None:
        self._data = data
        self._pos = 0

    def read(self, size: int = -1) -> bytes:
        end = len(self._data) if size < 0 else self._pos + size
        chunk = self._data[self._pos : end]
        self._pos += len(chunk)
        return chunk


def _download_entries(
    plan: CopyPlan, downloads: list[Downloaded], owner: Owner, mode: int | None
) -> list[PlannedEntry]:
    entries = []
    for planned, item in zip(plan.downloads, downloads, strict=True):
        path = posixpath.join(planned.dest, item.name) if planned.into_directory else planned.dest
        entries.append(
            PlannedEntry(
                path,
                "file",
                mode if mode is not None else 0o600,
                owner.uid,
                owner.gid,
                source=item.path,
                size=item.path.stat().st_size,
                mtime_ns=item.mtime_ns,
            )
        )
    return entries


def _extract_archive(root: Path, source: Path, dest: str, compression: str, tmp: Path) -> None:
    opener: Callable[[Path], IO[bytes]] | None = None
    if compression == "bzip2":
        opener = bz2.open
    elif compression == "xz":
        opener = lzma.open
    if opener is None:
        with source.open("rb") as archive:
            extract_into(root, dest, archive, no_overwrite_dir_non_dir=False)
        return
    with tempfile.TemporaryFile(dir=tmp) as spool, opener(source) as inflated:
        shutil.copyfileobj(inflated, spool, _CHUNK)
        spool.seek(0)
        extract_into(root, dest, spool, no_overwrite_dir_non_dir=False)


def copy_entries(
    plan: CopyPlan, spec: CopySpec, downloads: list[Downloaded], dest: DestinationFacts
) -> list[PlannedEntry]:
    """What a copy writes: the plan's entries, then the downloaded files (owned as
    ``--chown`` says, mode 0600 unless ``--chmod``, as dockerd makes them)."""
    entries = list(plan.entries)
    if downloads:
        names = _names_owner(spec.chown)
        passwd = dest.text("/etc/passwd") if names else None
        group = dest.text("/etc/group") if names else None
        owner = parse_chown(spec.chown, passwd=passwd, group=group) if spec.chown else Owner(0, 0)
        mode = int(spec.chmod, 8) if spec.chmod else None
        entries += _download_entries(plan, downloads, owner, mode)
    return entries


def write_copy(
    plan: CopyPlan,
    spec: CopySpec,
    entries: list[PlannedEntry],
    root: Path,
    *,
    epoch: int | None,
    tmp: Path,
) -> None:
    """Write ``entries`` (see :func:`copy_entries`) and the plan's archives into the
    mounted, writable ``root`` through the safe extractor (blocking)."""
    entries = [e for e in entries if not (e.create_only and _exists(root, e.path))]
    try:
        if entries:
            with tempfile.TemporaryFile(dir=tmp) as spool:
                _write_tar(spool, entries, epoch)
                spool.seek(0)
                apply_into(spool, root, mode="flat")
        for extraction in plan.extractions:
            _extract_archive(root, extraction.source, extraction.dest, extraction.compression, tmp)
    except UnpackError as exc:
        raise InvalidArgument(f"{spec.keyword} failed: {exc}") from None


def _write_tar(out: BinaryIO, entries: list[PlannedEntry], epoch: int | None) -> None:
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            _add_entry(tar, entry, epoch)
