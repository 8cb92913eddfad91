"""The tar layer of ``docker save``/``docker load``: a guarded streaming reader and a writer.

The reader parses headers itself (``tarfile.TarInfo.frombuf`` checks each 512-byte
block and its checksum) instead of driving ``tarfile``: an archive is untrusted input,
and ``tarfile`` reads a PAX or GNU long-name header whole into memory, however large the
archive says it is. Here extended headers are capped, member names are cleaned
(absolute names and ``..`` are refused), and only regular files, directories and links
are accepted; links are reported, never followed (the loader treats them as aliases of
other members, so nothing on the host is ever touched). Member data is read straight
from the stream, so an archive of any size passes through in bounded memory.

The whole archive may be compressed (``docker load`` accepts gzip, bzip2, xz and zstd);
:func:`open_archive_stream` detects that from the first bytes.

The writer side produces deterministic headers (owner 0:0, fixed mtime, no user names).
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal, Protocol

import zstandard

from declarun.errors import ContentError

__all__ = [
    "BLOCK",
    "MemberKind",
    "Readable",
    "TarMember",
    "clean_member_name",
    "end_of_archive",
    "iter_members",
    "member_header",
    "open_archive_stream",
    "padding",
    "stream_errors",
]

BLOCK = 512
_MAX_EXTENDED_HEADER = 1 << 20  # PAX records and GNU long names: names, not data
_MAX_MEMBERS = 200_000
_CHUNK = 1 << 20

MemberKind = Literal["file", "dir", "symlink", "hardlink"]

_KINDS: dict[bytes, MemberKind] = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.LNKTYPE: "hardlink",
}

# Exceptions a corrupt, truncated or non-tar body raises from the decompressors.
stream_errors: tuple[type[BaseException], ...] = (
    EOFError,
    gzip.BadGzipFile,
    lzma.LZMAError,
    zlib.error,
    zstandard.ZstdError,
    tarfile.TarError,
)


class Readable(Protocol):
    """Anything with a binary ``read``: a file, a request body adapter, a decompressor."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class TarMember:
    """One archive member: its cleaned name, what it is, its data size and link target."""

    name: str
    kind: MemberKind
    size: int
    linkname: str = ""


def clean_member_name(name: str) -> str:
    """The member name as a relative ``/``-separated path; ``ContentError`` if it escapes.

    ``./`` prefixes, empty and ``.`` components vanish; an absolute name, a ``..``
    component or a NUL byte is refused. The archive root itself is ``""``.
    """
    if "\x00" in name:
        raise ContentError(f"archive member {name!r}: name contains a NUL byte")
    if name.startswith("/"):
        raise ContentError(f"archive member {name!r}: absolute path")
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ContentError(f"archive member {name!r}: path escapes the archive")
    return "/".join(parts)


class _Prefixed:
    """Gives back bytes already read from a stream before the rest of it."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head, self._rest = head, rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0:
                data, self._head = self._head + self._rest.read(), b""
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


def _read_exact(stream: Readable, size: int) -> bytes:
    """Exactly ``size`` bytes; ``ContentError`` if the stream ends first."""
    parts, remaining = [], size
    while remaining:
        chunk = stream.read(min(remaining, _CHUNK))
        if not chunk:
            raise ContentError("the archive is truncated: unexpected end of data")
        parts.append(chunk)
        remaining -= len(chunk)
    return b"".join(parts)


def _read_head(stream: Readable, size: int) -> bytes:
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def open_archive_stream(stream: Readable) -> tuple[Readable, str]:
    """The uncompressed archive and the compression found (gzip, bzip2, xz, zstd, none)."""
    head = _read_head(stream, 6)
    raw = _Prefixed(head, stream)
    if head.startswith(b"\x1f\x8b"):
        return gzip.GzipFile(fileobj=raw, mode="rb"), "gzip"  # type: ignore[call-overload]
    if head.startswith(b"BZh"):
        return bz2.BZ2File(raw, mode="rb"), "bzip2"  # type: ignore[call-overload]
    if head.startswith(b"\xfd7zXZ\x00"):
        return lzma.LZMAFile(raw, mode="rb"), "xz"  # type: ignore[arg-type]
    if head.startswith(b"\x28\xb5\x2f\xfd"):
        reader = zstandard.ZstdDecompressor().stream_reader(
            raw,  # type: ignore[arg-type]
            read_size=_CHUNK,
            read_across_frames=True,
            closefd=False,
        )
        return reader, "zstd"
    return raw, "none"


class _MemberData:
    """Reads one member's data from the archive stream, never past its end."""

    def __init__(self, stream: Readable, size: int) -> None:
        self._stream, self.remaining = stream, size

    def read(self, size: int = -1, /) -> bytes:
        if self.remaining <= 0:
            return b""
        want = self.remaining if size < 0 else min(size, self.remaining)
        chunk = self._stream.read(min(want, _CHUNK))
        if not chunk:
            raise ContentError("the archive is truncated: unexpected end of member data")
        self.remaining -= len(chunk)
        return chunk

    def skip(self) -> None:
        while self.remaining > 0:
            self.read(_CHUNK)


def _pax_records(data: bytes) -> dict[str, str]:
    """Parse PAX records (``"<len> key=value\\n"``); ``ContentError`` if malformed."""
    out: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break  # NUL padding after the last record
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise ContentError("the archive has a malformed PAX header") from None
        record = data[pos : pos + length]
        if space < 0 or length <= 0 or len(record) != length or not record.endswith(b"\n"):
            raise ContentError("the archive has a malformed PAX header")
        key, sep, value = record[space - pos + 1 : -1].partition(b"=")
        if not sep:
            raise ContentError("the archive has a malformed PAX header")
        out[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return out


def _extended(stream: Readable, info: tarfile.TarInfo) -> bytes:
    if info.size > _MAX_EXTENDED_HEADER:
        raise ContentError(
            f"the archive has an extended header of {info.size} bytes "
            f"(more than {_MAX_EXTENDED_HEADER})"
        )
    data = _read_exact(stream, info.size)
    _read_exact(stream, -info.size % BLOCK)
    return data


def iter_members(stream: Readable) -> Iterator[tuple[TarMember, Readable]]:
    """Walk a tar stream: each member with a reader of its data (valid until the next).

    Data a caller leaves unread is skipped. Raises ``ContentError`` on anything that is
    not a clean tar of files, directories and links.
    """
    pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    count = 0
    while True:
        block = _read_head(stream, BLOCK)
        if not block:
            if count == 0:
                raise ContentError("the archive is empty")
            raise ContentError("the archive is truncated: no end-of-archive marker")
        if len(block) < BLOCK:
            raise ContentError("the archive is truncated or not a tar archive")
        if block == bytes(BLOCK):
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as err:
            raise ContentError(f"not a valid tar archive ({err})") from None
        if info.size < 0:
            raise ContentError("the archive has a member with a negative size")
        count += 1
        if count > _MAX_MEMBERS:
            raise ContentError(f"the archive has more than {_MAX_MEMBERS} members")
        if info.type == tarfile.XHDTYPE:
            pax.update(_pax_records(_extended(stream, info)))
            continue
        if info.type == tarfile.XGLTYPE:
            _extended(stream, info)  # global defaults (git archive writes them): unused
            continue
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            text = _extended(stream, info).rstrip(b"\x00").decode("utf-8", "surrogateescape")
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = text
            else:
                long_link = text
            continue
        name = pax.get("path", long_name if long_name is not None else info.name)
        linkname = pax.get("linkpath", long_link if long_link is not None else info.linkname)
        size = info.size
        if "size" in pax:
            try:
                size = int(pax["size"])
            except ValueError:
                raise ContentError(f"archive member {name!r}: malformed PAX size") from None
        if any(key.startswith("GNU.sparse") for key in pax):
            raise ContentError(f"archive member {name!r}: sparse files are not supported")
        pax, long_name, long_link = {}, None, None
        kind = _KINDS.get(info.type)
        if kind is None:
            raise ContentError(
                f"archive member {name!r}: unsupported type {info.type!r} "
                "(only files, directories and links belong in an image archive)"
            )
        if kind == "file" and name.endswith("/"):
            kind = "dir"
        if kind != "file":
            size = 0  # tar stores no data for directories and links, whatever it says
        data = _MemberData(stream, size)
        yield TarMember(clean_member_name(name), kind, size, linkname), data
        data.skip()
        _read_exact(stream, -size % BLOCK)


def member_header(
    name: str,
    size: int = 0,
    *,
    directory: bool = False,
    mtime: int = 0,
) -> bytes:
    """A deterministic header for a file (mode 0644) or directory (0755) owned by 0:0."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE if directory else tarfile.REGTYPE
    info.mode = 0o755 if directory else 0o644
    info.size = 0 if directory else size
    info.mtime = mtime
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    # PAX adds an extended header only when a field does not fit (e.g. > 8 GiB).
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> bytes:
    """The zero bytes that round member data of ``size`` up to a whole block."""
    return bytes(-size % BLOCK)


def end_of_archive() -> bytes:
    """The two zero blocks that end a tar archive."""
    return bytes(2 * BLOCK)
