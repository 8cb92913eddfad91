"""The fast tar header reader agrees with ``tarfile`` on every format a client writes, and
refuses what is not a tar archive."""

from __future__ import annotations

import hashlib
import io
import tarfile

import pytest

from declarun.daemon.builder.tarindex import TarFormatError, read_members

LONG = "dir-" + "x" * 120 + "/file-" + "y" * 120 + ".txt"


def _archive(fmt: int) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:

        def add(name: str, kind: bytes, data: bytes = b"", **fields: object) -> None:
            info = tarfile.TarInfo(name)
            info.type = kind
            info.size = len(data) if kind == tarfile.REGTYPE else 0
            for key, value in fields.items():
                setattr(info, key, value)
            tar.addfile(info, io.BytesIO(data) if kind == tarfile.REGTYPE else None)

        add("top", tarfile.DIRTYPE, mode=0o750, mtime=1_600_000_000)
        add("top/plain.txt", tarfile.REGTYPE, b"hello\n", uid=1000, gid=100, mode=0o640)
        add(LONG, tarfile.REGTYPE, b"long name\n")
        add("top/link", tarfile.SYMTYPE, linkname="../" + "z" * 150)
        add("top/hard", tarfile.LNKTYPE, linkname="top/plain.txt")
        add("top/fifo", tarfile.FIFOTYPE)
        add("top/ünïcode", tarfile.REGTYPE, b"\xff\x00binary")
        add("top/big-ids", tarfile.REGTYPE, b"", uid=3_000_000, gid=3_000_000)
        add("top/empty", tarfile.REGTYPE, b"")
    return out.getvalue()


@pytest.mark.parametrize("fmt", [tarfile.PAX_FORMAT, tarfile.GNU_FORMAT])
def test_members_agree_with_tarfile(fmt: int) -> None:
    data = _archive(fmt)
    ours = list(read_members(io.BytesIO(data)))
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        theirs = tar.getmembers()
        assert [m.name for m in ours] == [m.name for m in theirs]
        for mine, info in zip(ours, theirs, strict=True):
            assert (mine.mode, mine.uid, mine.gid, mine.linkname) == (
                info.mode,
                info.uid,
                info.gid,
                info.linkname,
            ), info.name
            assert mine.type == info.type
            assert int(float(mine.mtime)) == int(info.mtime)
            if info.isreg():
                content = tar.extractfile(info)
                assert content is not None
                assert mine.digest == hashlib.sha256(content.read()).hexdigest()
                assert mine.size == info.size
            # The offset is where tarfile reads the same entry again on its own.
            source = io.BytesIO(data)
            with tarfile.open(fileobj=source, mode="r:") as again:
                source.seek(mine.offset)
                assert tarfile.TarInfo.fromtarfile(again).name == info.name


def test_ustar_prefix_names_and_pax_xattrs() -> None:
    name = "a" * 90 + "/" + "b" * 90
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        info = tarfile.TarInfo(name)
        info.size = 1
        tar.addfile(info, io.BytesIO(b"p"))
    assert [m.name for m in read_members(io.BytesIO(out.getvalue()))] == [name]
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("f")
        info.pax_headers = {"SCHILY.xattr.user.k": "v", "mtime": "1.5"}
        tar.addfile(info, io.BytesIO(b""))
    (member,) = read_members(io.BytesIO(out.getvalue()))
    assert member.xattrs == (("SCHILY.xattr.user.k", "v"),)
    assert member.mtime == "1.5"


def test_what_is_not_a_tar_archive_is_refused() -> None:
    data = _archive(tarfile.PAX_FORMAT)
    with pytest.raises(TarFormatError, match="checksum"):
        list(read_members(io.BytesIO(b"this is not a tar archive" * 40)))
    with pytest.raises(TarFormatError, match="unexpected end of data"):
        list(read_members(io.BytesIO(data[:1500])))
    damaged = bytearray(data)
    damaged[3] ^= 0x20
    with pytest.raises(TarFormatError, match="checksum"):
        list(read_members(io.BytesIO(bytes(damaged))))
    sparse = bytearray(data[:512])
    sparse[156:157] = b"S"
    checksum = sum(sparse[:148]) + 8 * 32 + sum(sparse[156:])
    sparse[148:156] = f"{checksum:06o}\0 ".encode()
    with pytest.raises(TarFormatError, match="unsupported entry type"):
        list(read_members(io.BytesIO(bytes(sparse) + bytes(1024))))
    assert list(read_members(io.BytesIO(b""))) == []
