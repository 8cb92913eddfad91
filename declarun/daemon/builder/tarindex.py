"""A fast, strict reader of tar headers: what indexing a build context needs, at speed.

Python's ``tarfile`` costs about 100 µs per entry; a context of a few thousand files would
spend most of a cached rebuild there. :func:`read_members` parses the formats the docker
CLI, docker-py and GNU tar write -- ustar (with its name prefix), POSIX pax (``x`` and
``g`` headers: ``path``, ``linkpath``, ``size``, ``uid``, ``gid``, ``mtime``, xattrs) and
GNU long names (``L``, ``K``), numbers in octal or base-256 -- and yields one
:class:`Member` per entry with its content digest, reading the data once. It never writes
anything: extraction stays with the safe extractor, which re-reads changed entries with
``tarfile`` from the offsets given here.

Anything else is refused with :class:`TarFormatError`: a header whose checksum is wrong
(not a tar archive, or a damaged one), data that ends early, GNU sparse or multi-volume
entries.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

__all__ = ["Member", "TarFormatError", "read_members"]

_BLOCK = 512
_CHUNK = 1 << 20
_ZERO_BLOCK = bytes(_BLOCK)
_REGULAR = (b"0", b"\0", b"7")
_XATTR = "SCHILY.xattr."
# Entry types whose size field is not followed by data (tarfile reads them the same way).
_NO_DATA = (b"1", b"2", b"3", b"4", b"5", b"6")


class TarFormatError(Exception):
    """The stream is not a tar archive this reader accepts; the message says why."""


class Readable(Protocol):
    """A blocking binary stream."""

    def read(self, size: int = -1, /) -> bytes: ...


@dataclass(frozen=True)
class Member:
    """One entry: its name as stored, type flag, metadata, content SHA-256 (hex, files
    only), and the offset of its first header (extended headers included)."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime: str
    linkname: str
    offset: int
    digest: str = ""
    xattrs: tuple[tuple[str, str], ...] = field(default=())

    def isreg(self) -> bool:
        """A regular file."""
        return self.type in _REGULAR

    def islnk(self) -> bool:
        """A hard link."""
        return self.type == b"1"


def _number(field_bytes: bytes, what: str) -> int:
    if field_bytes[:1] in (b"\x80", b"\xff"):
        # base-256: big-endian two's complement in the remaining bytes
        value = int.from_bytes(field_bytes[1:], "big")
        if field_bytes[0] == 0xFF:
            value -= 1 << (8 * (len(field_bytes) - 1))
        return value
    text = field_bytes.split(b"\0", 1)[0].strip(b" \0")
    if not text:
        return 0
    try:
        return int(text, 8)
    except ValueError:
        raise TarFormatError(f"invalid {what} field in a header") from None


def _checksum_ok(header: bytes) -> bool:
    stored = _number(header[148:156], "checksum")
    blanked = header[:148] + b" " * 8 + header[156:]
    unsigned = sum(blanked)
    signed = sum(b - 256 if b > 127 else b for b in blanked)
    return stored in (unsigned, signed)


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax_records(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:
            break
        space = data.find(b" ", pos)
        if space < 0:
            raise TarFormatError("invalid pax extended header")
        try:
            length = int(data[pos:space])
        except ValueError:
            raise TarFormatError("invalid pax extended header") from None
        if length <= 0 or pos + length > len(data):
            raise TarFormatError("invalid pax extended header")
        record = data[space + 1 : pos + length - 1]
        key, sep, value = record.partition(b"=")
        if not sep:
            raise TarFormatError("invalid pax extended header")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


class _Stream:
    """The source, read exactly, with the offset of what was read."""

    def __init__(self, source: Readable) -> None:
        self._source = source
        self.offset = 0

    def _feed(self, size: int, sink: hashlib._Hash | list[bytes] | None) -> None:
        missing = size
        while missing:
            chunk = self._source.read(min(missing, _CHUNK))
            if not chunk:
                raise TarFormatError("unexpected end of data")
            if isinstance(sink, list):
                sink.append(chunk)
            elif sink is not None:
                sink.update(chunk)
            missing -= len(chunk)
        self.offset += size

    def header(self) -> bytes | None:
        """The next 512-byte block, or None where the stream ends cleanly."""
        first = self._source.read(_BLOCK)
        if not first:
            return None
        self.offset += len(first)
        parts = [first]
        self._feed(_BLOCK - len(first), parts)
        return b"".join(parts)

    def payload(self, size: int) -> bytes:
        """An extended header's data (padding skipped)."""
        parts: list[bytes] = []
        self._feed(size, parts)
        self._feed(-size % _BLOCK, None)
        return b"".join(parts)

    def skip(self, size: int, hasher: hashlib._Hash | None = None) -> None:
        """An entry's data (hashed when asked) and its padding."""
        self._feed(size, hasher)
        self._feed(-size % _BLOCK, None)


def read_members(source: Readable, self_contained: list[bool] | None = None) -> Iterator[Member]:
    """Every entry of the tar stream ``source`` (see the module docstring).

    ``self_contained[0]`` is set False when a global pax header was met: an entry then
    cannot be read again on its own from its offset.
    """
    if self_contained is None:
        self_contained = [True]
    stream = _Stream(source)
    global_pax: dict[str, str] = {}
    pax: dict[str, str] = {}
    long_name: str | None = None
    long_link: str | None = None
    start: int | None = None
    while True:
        at = stream.offset
        header = stream.header()
        if header is None or header == _ZERO_BLOCK:
            if pax or long_name is not None or long_link is not None:
                raise TarFormatError("unexpected end of data after an extended header")
            return
        if not _checksum_ok(header):
            raise TarFormatError("invalid header (bad checksum)")
        if start is None:
            start = at
        kind = header[156:157]
        size = _number(header[124:136], "size")
        if kind == b"x":
            pax.update(_pax_records(stream.payload(size)))
            continue
        if kind == b"g":
            global_pax.update(_pax_records(stream.payload(size)))
            self_contained[0] = False
            start = None
            continue
        if kind in (b"L", b"K"):
            value = _text(stream.payload(size))
            if kind == b"L":
                long_name = value
            else:
                long_link = value
            continue
        if kind in (b"S", b"M", b"V", b"N"):
            raise TarFormatError(f"unsupported entry type {kind!r}")
        records = {**global_pax, **pax}
        name = _text(header[0:100])
        if header[257:263] == b"ustar\0":  # POSIX: a prefix for long names
            prefix = _text(header[345:500])
            if prefix:
                name = f"{prefix}/{name}"
        name = records.get("path", long_name if long_name is not None else name)
        linkname = records.get(
            "linkpath", long_link if long_link is not None else _text(header[157:257])
        )
        if kind == b"5":
            name = name.rstrip("/")  # as tarfile names directories
        try:
            if "size" in records:
                size = int(records["size"])
            uid = int(records["uid"]) if "uid" in records else _number(header[108:116], "uid")
            gid = int(records["gid"]) if "gid" in records else _number(header[116:124], "gid")
        except ValueError:
            raise TarFormatError(f"invalid pax numbers for {name!r}") from None
        digest = ""
        if kind in _REGULAR:
            hasher = hashlib.sha256()
            stream.skip(size, hasher)
            digest = hasher.hexdigest()
        elif kind not in _NO_DATA:
            stream.skip(size)  # as tarfile: the data of a type it does not know is skipped
        yield Member(
            name=name,
            type=kind if kind != b"\0" else b"0",
            mode=_number(header[100:108], "mode") & 0o7777,
            uid=uid,
            gid=gid,
            size=size if kind in _REGULAR else 0,
            mtime=records.get("mtime", str(_number(header[136:148], "mtime"))),
            linkname=linkname,
            offset=start,
            digest=digest,
            xattrs=tuple(sorted((k, v) for k, v in records.items() if k.startswith(_XATTR))),
        )
        pax, long_name, long_link, start = {}, None, None, None
