"""The layer stream readers: multi-member gzip as GzipFile reads it, and the read-ahead thread."""

from __future__ import annotations

import gzip
import hashlib
import io
import threading
import zlib

import pytest
import zstandard

from declarun.daemon.images.layerstream import GzipMembers, ReadAhead, read_ahead

DATA = bytes(range(256)) * 4000 + b"tail"


def _gzip_read(blob: bytes) -> bytes:
    return gzip.GzipFile(fileobj=io.BytesIO(blob)).read()


def _read_all(reader: GzipMembers, size: int) -> bytes:
    return b"".join(iter(lambda: reader.read(size), b""))


@pytest.mark.parametrize(
    "blob",
    [
        gzip.compress(DATA),
        gzip.compress(DATA[:1000]) + gzip.compress(DATA[1000:]),
        gzip.compress(DATA) + b"\0" * 5000,
        gzip.compress(DATA[:10]) + b"\0" * 3 + gzip.compress(DATA[10:]) + b"\0",
        gzip.compress(b""),
    ],
    ids=["one-member", "two-members", "zero-padding", "padding-between", "empty"],
)
@pytest.mark.parametrize("size", [100, 7000, 1 << 20])
def test_gzip_members_read_what_gzipfile_reads(blob: bytes, size: int) -> None:
    assert _read_all(GzipMembers(io.BytesIO(blob)), size) == _gzip_read(blob)
    assert GzipMembers(io.BytesIO(blob)).read() == _gzip_read(blob)


def test_a_truncated_gzip_stream_is_an_eof_error() -> None:
    blob = gzip.compress(DATA)
    for cut in (5, len(blob) // 2, len(blob) - 4):
        with pytest.raises(EOFError):
            _read_all(GzipMembers(io.BytesIO(blob[:cut])), 1 << 16)


@pytest.mark.parametrize(
    "damage",
    ["crc", "length", "trailing-garbage"],
)
def test_a_damaged_gzip_stream_is_refused(damage: str) -> None:
    blob = bytearray(gzip.compress(DATA))
    if damage == "crc":
        blob[-8] ^= 0xFF
    elif damage == "length":
        blob[-1] ^= 0xFF
    else:
        blob += b"not gzip at all"
    with pytest.raises(zlib.error):
        _read_all(GzipMembers(io.BytesIO(bytes(blob))), 1 << 16)


@pytest.mark.parametrize("kind", ["none", "gzip", "zstd"])
def test_read_ahead_gives_the_stream_and_its_digest(kind: str) -> None:
    blob = {
        "none": DATA,
        "gzip": gzip.compress(DATA),
        "zstd": zstandard.ZstdCompressor().compress(DATA),
    }[kind]
    reader, detected = read_ahead(io.BytesIO(blob))
    with reader:
        first = reader.read(10)
        rest = reader.read()
        reader.drain()
        assert detected == kind
        assert first + rest == DATA
        assert reader.size == len(DATA)
        assert reader.digest == "sha256:" + hashlib.sha256(DATA).hexdigest()


def test_read_ahead_raises_the_streams_error_in_the_reader() -> None:
    reader, _ = read_ahead(io.BytesIO(gzip.compress(DATA)[:-100]))
    with reader, pytest.raises(EOFError):
        reader.drain()
    with pytest.raises(RuntimeError):
        _ = reader.digest


class _Endless:
    """A stream that never ends, counting the reads made after it was told to stop."""

    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.reads_after_stop = 0

    def read(self, size: int = -1, /) -> bytes:
        if self.stopped.is_set():
            self.reads_after_stop += 1
        return b"x" * size


def test_closing_stops_and_joins_the_helper_thread() -> None:
    source = _Endless()
    reader = ReadAhead(source)
    assert reader.read(5) == b"xxxxx"  # the helper is now blocked on a full queue
    reader.close()
    source.stopped.set()
    assert not any(t.name == "layer-read-ahead" and t.is_alive() for t in threading.enumerate())
    assert source.reads_after_stop == 0
