"""Recognising the local archives ``ADD`` extracts: tar, plain or gzip/bzip2/xz/zstd.

dockerd's rule: a local ``ADD`` source is extracted when it decompresses (by magic number)
and a tar header can be read from the result; anything else is copied as a file. A URL
source is never extracted.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import tarfile
from pathlib import Path
from typing import IO, Literal

import zstandard

__all__ = ["Compression", "archive_compression"]

Compression = Literal["none", "gzip", "bzip2", "xz", "zstd"]
_MAGIC: tuple[tuple[bytes, Compression], ...] = (
    (b"\x1f\x8b\x08", "gzip"),
    (b"BZh", "bzip2"),
    (b"\xfd7zXZ\x00", "xz"),
    (b"\x28\xb5\x2f\xfd", "zstd"),
)
_BLOCK = 512


def _first_block(handle: IO[bytes], compression: Compression) -> bytes:
    if compression == "gzip":
        with gzip.GzipFile(fileobj=handle) as stream:
            return stream.read(_BLOCK)
    if compression == "bzip2":
        with bz2.BZ2File(handle) as stream:
            return stream.read(_BLOCK)
    if compression == "xz":
        with lzma.LZMAFile(handle) as stream:
            return stream.read(_BLOCK)
    if compression == "zstd":
        reader = zstandard.ZstdDecompressor().stream_reader(handle)
        return bytes(reader.read(_BLOCK))
    return handle.read(_BLOCK)


def archive_compression(path: Path) -> Compression | None:
    """The compression of the tar archive at ``path``, or None when it is not one."""
    try:
        with path.open("rb") as handle:
            head = handle.read(8)
            compression: Compression = "none"
            for magic, name in _MAGIC:
                if head.startswith(magic):
                    compression = name
            handle.seek(0)
            block = _first_block(handle, compression)
    except (OSError, EOFError, ValueError, lzma.LZMAError, zstandard.ZstdError):
        return None  # unreadable or not what its magic number says: copied as a file
    if len(block) < _BLOCK:
        return None
    try:
        tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
    except tarfile.HeaderError:
        return None
    return compression
