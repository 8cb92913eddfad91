"""The build context: a tar body (plain, gzip, bzip2 or xz) unpacked into a private directory.

Three stages, each bounded, so a hostile or careless client cannot fill the disk nor write
outside the build's own directory:

1. :class:`ContextSpool` writes the body, decompressed on the way (``max_length`` pieces,
   never more than a megabyte at once), to a file on the data root's file system, and
   refuses the context once the uncompressed tar passes :attr:`ContextLimits.max_bytes`
   (an oversized context and a compression bomb end the same way, early);
2. :func:`check_context_tar` reads every header before anything is written: no absolute
   name, no ``..`` component (in names or hard link targets), no device files, no
   ``.wh.`` names (the extractor would read them as whiteouts), at most
   :attr:`ContextLimits.max_entries` entries;
3. :func:`extract_context` applies the tar with the image store's safe extractor
   (:func:`declarun.daemon.images.unpack.apply_into`, flat mode), which resolves every
   path through directory descriptors inside the destination.

Symbolic links are data: one may point anywhere, but the frontend resolves a ``COPY``
source through it inside the context only (``declarun.dockerfile.scope``), so nothing
outside the context is ever read. Every refusal is a :class:`BuildContextError` (400)
naming the entry.
"""

from __future__ import annotations

import bz2
import lzma
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

from declarun.daemon.builder.errors import BuildContextError
from declarun.daemon.builder.tarindex import TarFormatError, read_members
from declarun.daemon.images.unpack import WHITEOUT_PREFIX, apply_into
from declarun.errors import UnpackError

__all__ = [
    "ContextIndex",
    "ContextLimits",
    "ContextSpool",
    "extract_context",
    "index_context_tar",
    "looks_like_archive",
    "receive_context",
    "sync_context",
]

_GZIP = b"\x1f\x8b"
_BZIP2 = b"BZh"
_XZ = b"\xfd7zXZ\x00"
_PIECE = 1 << 20
_BLOCK = 512
_TAR_MAGIC_OFFSET = 257


@dataclass(frozen=True)
class ContextLimits:
    """How large a context may be: bytes of the uncompressed tar, and entries in it."""

    max_bytes: int = 16 * 1024**3
    max_entries: int = 1_000_000


class _Decompressor(Protocol):
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


class _Inflater:
    """One of zlib's, bz2's or lzma's decompressors behind one bounded ``feed``."""

    def __init__(self, head: bytes) -> None:
        self.kind = "tar"
        self._zlib: zlib._Decompress | None = None
        self._other: _Decompressor | None = None
        if head.startswith(_GZIP):
            self.kind = "gzip"
            self._zlib = zlib.decompressobj(16 + zlib.MAX_WBITS)
        elif head.startswith(_BZIP2):
            self.kind = "bzip2"
            self._other = bz2.BZ2Decompressor()
        elif head.startswith(_XZ):
            self.kind = "xz"
            self._other = lzma.LZMADecompressor()

    @property
    def compressed(self) -> bool:
        """Whether the stream is compressed at all."""
        return self._zlib is not None or self._other is not None

    @property
    def complete(self) -> bool:
        """Whether a compressed stream reached its end (always true for a plain one)."""
        if self._zlib is not None:
            return self._zlib.eof
        if self._other is not None:
            return bool(getattr(self._other, "eof", True))
        return True

    def pieces(self, data: bytes) -> Iterator[bytes]:
        """Decompressed output of ``data`` in pieces of at most 1 MiB.

        Each piece is made only when the caller asks for the next, so a bomb costs a
        megabyte of memory at a time, never its expanded size.
        """
        if self._zlib is not None:
            yield from self._zlib_pieces(self._zlib, data)
        elif self._other is not None:
            yield from self._stream_pieces(self._other, data)
        else:
            yield data

    @staticmethod
    def _zlib_pieces(inflater: zlib._Decompress, data: bytes) -> Iterator[bytes]:
        pending = data
        while True:
            piece = inflater.decompress(pending, _PIECE)
            if piece:
                yield piece
            pending = inflater.unconsumed_tail
            if inflater.eof or (not pending and len(piece) < _PIECE):
                return

    @staticmethod
    def _stream_pieces(inflater: _Decompressor, data: bytes) -> Iterator[bytes]:
        pending = data
        while True:
            piece = inflater.decompress(pending, _PIECE)
            pending = b""
            if piece:
                yield piece
            if getattr(inflater, "eof", False) or getattr(inflater, "needs_input", True):
                return


class ContextSpool:
    """Writes a context body, decompressed, to ``file`` (see the module docstring).

    Call :meth:`feed` with each chunk of the body (blocking: from a worker thread), then
    :meth:`finish`. Raises :class:`BuildContextError` past the size limit or on bad
    compressed data.
    """

    def __init__(self, file: IO[bytes], limits: ContextLimits) -> None:
        self._file = file
        self._limits = limits
        self._inflater: _Inflater | None = None
        self._head = b""
        self.size = 0

    @property
    def compression(self) -> str:
        """``tar`` (none), ``gzip``, ``bzip2`` or ``xz`` once the head was seen."""
        return self._inflater.kind if self._inflater is not None else "tar"

    def feed(self, chunk: bytes) -> None:
        """One chunk of the body."""
        for _ in self.feed_pieces(chunk):
            pass

    def feed_pieces(self, chunk: bytes) -> Iterator[bytes]:
        """One chunk of the body; yields the uncompressed pieces as each is written."""
        if self._inflater is None:
            self._head += chunk
            if len(self._head) < len(_XZ):
                return
            chunk, self._head = self._head, b""
            self._inflater = _Inflater(chunk)
        yield from self._inflate(chunk)

    def _inflate(self, chunk: bytes) -> Iterator[bytes]:
        assert self._inflater is not None
        try:
            for piece in self._inflater.pieces(chunk):
                self._write(piece)
                yield piece
        except (OSError, EOFError, zlib.error, lzma.LZMAError) as exc:
            raise BuildContextError(f"the build context is corrupt: {exc}") from None

    def _write(self, data: bytes) -> None:
        self.size += len(data)
        if self.size > self._limits.max_bytes:
            raise BuildContextError(
                f"the build context is larger than the {self._limits.max_bytes} bytes allowed"
            )
        self._file.write(data)

    def finish(self) -> None:
        """The body ended."""
        for _ in self.finish_pieces():
            pass

    def finish_pieces(self) -> Iterator[bytes]:
        """The body ended: flush what is left of a very short one; yields the last pieces."""
        if self._inflater is None and self._head:
            self._inflater = _Inflater(self._head)
            head, self._head = self._head, b""
            yield from self._inflate(head)
        if self._inflater is not None and not self._inflater.complete:
            raise BuildContextError("the build context is corrupt: the compressed data ends early")
        if self.size:
            # The docker CLI's ``-f -`` rewrites the context tar and closes its pipe before
            # the tar writer: the last entry's padding and the end-of-archive blocks are
            # missing, which Go's reader (dockerd's) tolerates. Restore them.
            padding = b"\0" * ((-self.size) % _BLOCK + 2 * _BLOCK)
            self._file.write(padding)
            yield padding
        self._file.flush()


class _SpoolingReader:
    """The uncompressed context as a blocking stream, spooled as it is read.

    ``next_chunk`` gives the body's chunks (``b""`` at the end); each is decompressed one
    piece at a time, only as the reader needs more, so memory stays at a piece.
    """

    def __init__(self, next_chunk: Callable[[], bytes], spool: ContextSpool) -> None:
        self._next_chunk = next_chunk
        self._spool = spool
        self._pieces: Iterator[bytes] = iter(())
        self._buffer = bytearray()
        self._ended = False
        self._eof = False

    def _fill(self) -> None:
        for piece in self._pieces:
            self._buffer += piece
            return
        if self._ended:
            self._eof = True
            return
        chunk = self._next_chunk()
        if chunk:
            self._pieces = self._spool.feed_pieces(chunk)
        else:
            self._ended = True
            self._pieces = self._spool.finish_pieces()

    def read(self, size: int = -1) -> bytes:
        while (size < 0 or len(self._buffer) < size) and not self._eof:
            self._fill()
        if size < 0:
            size = len(self._buffer)
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def drain(self) -> None:
        """Spool whatever follows the end of the archive."""
        while not self._eof:
            self._fill()
            self._buffer.clear()


def receive_context(
    next_chunk: Callable[[], bytes], file: IO[bytes], limits: ContextLimits
) -> ContextIndex:
    """Spool the body ``next_chunk`` gives into ``file``, checking and indexing the tar on
    the way (one pass: the index is ready when the body has arrived). Blocking."""
    spool = ContextSpool(file, limits)
    reader = _SpoolingReader(next_chunk, spool)
    index = _index_stream(reader, limits)
    reader.drain()
    file.flush()
    return index


def looks_like_archive(head: bytes) -> bool:
    """Whether the first bytes of a download look like a (compressed) tar archive."""
    if head.startswith((_GZIP, _BZIP2, _XZ)):
        return True
    magic = head[_TAR_MAGIC_OFFSET : _TAR_MAGIC_OFFSET + 5]
    return magic == b"ustar"


def _refuse(name: str, why: str) -> BuildContextError:
    return BuildContextError(f"invalid build context: entry {name!r} {why}")


def _check_path(member_name: str, path: str, what: str) -> None:
    if "\x00" in path:
        raise _refuse(member_name, f"has a NUL byte in its {what}")
    if path.startswith("/"):
        raise _refuse(member_name, f"has an absolute {what} ({path!r})")
    if ".." in path.split("/"):
        raise _refuse(member_name, f"has '..' in its {what} ({path!r}): it would leave the context")


@dataclass
class ContextIndex:
    """What a context tar holds: each path (cleaned, ``a/b``; ``""`` the root) with what
    decides its extracted form -- type, mode, owner, link target, time and, for a file, the
    SHA-256 of its content -- and where its header is in the spool (for this build only).
    """

    entries: dict[str, tuple[object, ...]]
    offsets: dict[str, int]
    #: False when an entry cannot be re-read on its own (a global pax header came first):
    #: the tar is then unpacked whole, never patched into a kept context.
    self_contained: bool = True

    def __len__(self) -> int:
        """How many entries the tar has (implied directories not counted)."""
        return len(self.offsets)


# The key of a directory only implied by the paths below it.
_IMPLIED: tuple[object, ...] = ("implied",)


def _clean(name: str) -> str:
    return "/".join(part for part in name.split("/") if part not in ("", "."))


def index_context_tar(file: IO[bytes], limits: ContextLimits) -> ContextIndex:
    """Check every entry of the plain tar in ``file`` and index it (reads it all once).

    Raises :class:`BuildContextError` for anything that must not be unpacked (see the
    module docstring).
    """
    file.seek(0)
    try:
        return _index_stream(file, limits)
    finally:
        file.seek(0)


def _index_stream(stream: IO[bytes] | _SpoolingReader, limits: ContextLimits) -> ContextIndex:
    entries: dict[str, tuple[object, ...]] = {}
    offsets: dict[str, int] = {}
    self_contained = [True]
    count = 0
    try:
        for member in read_members(stream, self_contained):
            count += 1
            if count > limits.max_entries:
                raise BuildContextError(
                    f"the build context has more than the {limits.max_entries} entries allowed"
                )
            name = member.name
            _check_path(name, name, "name")
            if any(part.startswith(WHITEOUT_PREFIX) for part in name.split("/")):
                raise _refuse(name, "is named like a layer whiteout (.wh.), which is not allowed")
            if member.islnk():
                _check_path(name, member.linkname, "hard link target")
            elif member.type in (b"3", b"4"):
                raise _refuse(name, "is a device file, which a build context may not hold")
            elif not (member.isreg() or member.type in (b"2", b"5", b"6")):
                raise _refuse(name, f"has an unsupported type {member.type!r}")
            path = _clean(name)
            entries[path] = (
                member.type,
                member.mode,
                member.uid,
                member.gid,
                member.linkname,
                member.digest,
                member.mtime,
                member.xattrs,
            )
            offsets[path] = member.offset
    except TarFormatError as exc:
        raise BuildContextError(f"the build context is not a valid tar archive: {exc}") from None
    # Directories the tar implies without entries of their own are made by the extractor:
    # list them too, so a later context without them removes them.
    for path in list(entries):
        parent = path.rpartition("/")[0]
        while parent and parent not in entries:
            entries[parent] = _IMPLIED
            parent = parent.rpartition("/")[0]
    return ContextIndex(entries, offsets, self_contained[0])


def _removed_tops(
    old: dict[str, tuple[object, ...]], new: dict[str, tuple[object, ...]]
) -> list[str]:
    """Paths of ``old`` gone from ``new``, without those under another gone one."""
    gone = sorted(path for path in old if path not in new and path)
    tops: list[str] = []
    for path in gone:
        if tops and path.startswith(tops[-1] + "/"):
            continue
        tops.append(path)
    return tops


def _changed(old: dict[str, tuple[object, ...]], new: ContextIndex) -> list[str]:
    changed = {
        path for path, key in new.entries.items() if old.get(path) != key and path in new.offsets
    }
    # A hard link shares its target's inode: a rewritten target takes its links along.
    for path, key in new.entries.items():
        if key[0] == b"1" and _clean(str(key[4])) in changed:
            changed.add(path)
    return sorted(changed, key=lambda path: new.offsets[path])


def sync_context(
    file: IO[bytes], index: ContextIndex, old: dict[str, tuple[object, ...]], tree: Path, tmp: Path
) -> int:
    """Make ``tree`` (extracted from a context indexed as ``old``) hold the tar in ``file``.

    Only what differs is written: removed paths through whiteouts, changed entries as they
    are in the tar, both in one tar applied by the safe extractor. Returns how many entries
    were written or removed. Blocking. On error the tree must be thrown away.
    """
    if not old:
        # A fresh directory: unpack the whole tar as it is.
        if index.offsets:
            file.seek(0)
            try:
                apply_into(file, tree, mode="flat")
            except UnpackError as exc:
                raise BuildContextError(f"cannot unpack the build context: {exc}") from None
            finally:
                file.seek(0)
        return len(index)
    removed = _removed_tops(old, index.entries)
    changed = _changed(old, index)
    if not removed and not changed:
        return 0
    with tempfile.TemporaryFile(dir=tmp) as patch:
        with tarfile.open(fileobj=patch, mode="w", format=tarfile.PAX_FORMAT) as out:
            for path in removed:
                parent, _, base = path.rpartition("/")
                whiteout = tarfile.TarInfo(
                    f"{parent}/{WHITEOUT_PREFIX}{base}" if parent else f"{WHITEOUT_PREFIX}{base}"
                )
                out.addfile(whiteout)
            if changed:
                _copy_members(file, index, changed, out)
        patch.seek(0)
        try:
            apply_into(patch, tree, mode="flat")
        except UnpackError as exc:
            raise BuildContextError(f"cannot unpack the build context: {exc}") from None
    file.seek(0)
    return len(removed) + len(changed)


def _copy_members(
    file: IO[bytes], index: ContextIndex, paths: list[str], out: tarfile.TarFile
) -> None:
    """Copy the entries at ``paths`` of the spooled tar into ``out``, headers re-read."""
    file.seek(0)
    with tarfile.open(
        fileobj=file, mode="r:", encoding="utf-8", errors="surrogateescape"
    ) as source:
        for path in paths:
            file.seek(index.offsets[path])
            member = tarfile.TarInfo.fromtarfile(source)
            out.addfile(member, source.extractfile(member) if member.isreg() else None)


def extract_context(file: IO[bytes], dest: Path, limits: ContextLimits) -> int:
    """Check, index and unpack the plain tar in ``file`` into the empty directory ``dest``.

    Returns the number of entries. Blocking: call it from a worker thread.
    """
    index = index_context_tar(file, limits)
    if index.entries:
        sync_context(file, index, {}, dest, dest.parent)
    return len(index)
