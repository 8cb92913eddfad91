"""Reading a layer blob as an uncompressed tar stream, hashing it on the way.

The compression is detected from the first bytes (gzip ``1f 8b``, zstd ``28 b5 2f fd``,
anything else is taken as a plain tar), never from a media type, so a mislabelled layer
still unpacks. The sha256 of the *uncompressed* bytes is the layer's diff ID, which the
image config lists in ``rootfs.diff_ids``; computing it while unpacking saves a second
pass over the data.
"""

from __future__ import annotations

import gzip
import hashlib
from typing import BinaryIO, Protocol

import zstandard

__all__ = [
    "GZIP_MAGIC",
    "ZSTD_MAGIC",
    "HashingReader",
    "Readable",
    "detect_compression",
    "open_uncompressed",
]

GZIP_MAGIC = b"\x1f\x8b"
ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_CHUNK = 1 << 20


class Readable(Protocol):
    """Anything with a binary ``read``: a file, a socket file, a decompressor."""

    def read(self, size: int = -1, /) -> bytes: ...


def detect_compression(head: bytes) -> str:
    """Name the compression of a blob from its first bytes: ``gzip``, ``zstd`` or ``none``."""
    if head.startswith(GZIP_MAGIC):
        return "gzip"
    if head.startswith(ZSTD_MAGIC):
        return "zstd"
    return "none"


class _Prefixed:
    """A reader that gives back some already-read bytes before the rest of a stream."""

    def __init__(self, head: bytes, rest: Readable) -> None:
        self._head = head
        self._rest = rest

    def read(self, size: int = -1, /) -> bytes:
        if self._head:
            if size < 0 or size >= len(self._head):
                data, self._head = self._head, b""
                if size < 0:
                    return data + self._rest.read()
                return data
            data, self._head = self._head[:size], self._head[size:]
            return data
        return self._rest.read(size)


class HashingReader:
    """Passes reads through and keeps the sha256 and length of everything read."""

    def __init__(self, inner: Readable) -> None:
        self._inner = inner
        self._hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1, /) -> bytes:
        """Read like the wrapped stream does, hashing the bytes returned."""
        data = self._inner.read(size)
        self._hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        """Read to the end, so the digest covers the whole stream (tar's zero padding too)."""
        while self.read(_CHUNK):
            pass

    @property
    def digest(self) -> str:
        """``sha256:<hex>`` of what has been read so far."""
        return "sha256:" + self._hash.hexdigest()


def _read_head(stream: Readable, size: int) -> bytes:
    """Read up to ``size`` bytes, tolerating short reads from pipes and sockets."""
    head = b""
    while len(head) < size:
        chunk = stream.read(size - len(head))
        if not chunk:
            break
        head += chunk
    return head


def open_uncompressed(stream: BinaryIO | Readable) -> tuple[HashingReader, str]:
    """Wrap a layer blob so reads return the uncompressed tar, hashed as it is read.

    Returns the reader and the compression detected. Decompression errors surface from
    ``read`` as the decompressor's own exceptions; the unpacker turns them into
    :class:`declarun.errors.UnpackError`.
    """
    head = _read_head(stream, len(ZSTD_MAGIC))
    kind = detect_compression(head)
    raw = _Prefixed(head, stream)
    inner: Readable
    if kind == "gzip":
        # GzipFile handles multi-member streams and checks each member's CRC and length.
        inner = gzip.GzipFile(fileobj=raw, mode="rb")  # type: ignore[call-overload]
    elif kind == "zstd":
        decompressor = zstandard.ZstdDecompressor()
        inner = decompressor.stream_reader(
            raw,  # type: ignore[arg-type]
            read_size=_CHUNK,
            read_across_frames=True,
            closefd=False,
        )
    else:
        inner = raw
    return HashingReader(inner), kind
