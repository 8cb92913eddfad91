"""Building layer tarballs for tests, including deliberately hostile ones.

``tarfile`` is used only to *write* archives here; it writes names and link targets as
given, which is what a hostile layer needs.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zstandard

__all__ = ["LayerBuilder", "tree_manifest"]

DEFAULT_MTIME = 1_600_000_000


@dataclass
class LayerBuilder:
    """Accumulates tar entries; :meth:`build` returns the (optionally compressed) bytes."""

    entries: list[tuple[tarfile.TarInfo, bytes | None]] = field(default_factory=list)

    def _info(
        self,
        name: str,
        kind: bytes,
        *,
        mode: int,
        uid: int = 0,
        gid: int = 0,
        mtime: float = DEFAULT_MTIME,
        xattrs: Mapping[str, str] | None = None,
        pax: Mapping[str, str] | None = None,
    ) -> tarfile.TarInfo:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = mode
        info.uid, info.gid = uid, gid
        info.mtime = mtime
        headers = {f"SCHILY.xattr.{k}": v for k, v in (xattrs or {}).items()}
        headers.update(pax or {})
        info.pax_headers = headers
        return info

    def dir(self, name: str, mode: int = 0o755, **kw: Any) -> LayerBuilder:
        self.entries.append((self._info(name, tarfile.DIRTYPE, mode=mode, **kw), None))
        return self

    def file(self, name: str, data: bytes = b"", mode: int = 0o644, **kw: Any) -> LayerBuilder:
        info = self._info(name, tarfile.REGTYPE, mode=mode, **kw)
        info.size = len(data)
        self.entries.append((info, data))
        return self

    def symlink(self, name: str, target: str, **kw: Any) -> LayerBuilder:
        info = self._info(name, tarfile.SYMTYPE, mode=0o777, **kw)
        info.linkname = target
        self.entries.append((info, None))
        return self

    def hardlink(self, name: str, target: str, **kw: Any) -> LayerBuilder:
        info = self._info(name, tarfile.LNKTYPE, mode=0o644, **kw)
        info.linkname = target
        self.entries.append((info, None))
        return self

    def device(
        self, name: str, kind: str, major: int, minor: int, mode: int = 0o666, **kw: Any
    ) -> LayerBuilder:
        tar_kind = tarfile.CHRTYPE if kind == "chr" else tarfile.BLKTYPE
        info = self._info(name, tar_kind, mode=mode, **kw)
        info.devmajor, info.devminor = major, minor
        self.entries.append((info, None))
        return self

    def fifo(self, name: str, mode: int = 0o644, **kw: Any) -> LayerBuilder:
        self.entries.append((self._info(name, tarfile.FIFOTYPE, mode=mode, **kw), None))
        return self

    def whiteout(self, directory: str, victim: str) -> LayerBuilder:
        prefix = f"{directory}/" if directory else ""
        return self.file(f"{prefix}.wh.{victim}", mode=0o600)

    def opaque(self, directory: str) -> LayerBuilder:
        prefix = f"{directory}/" if directory else ""
        return self.file(f"{prefix}.wh..wh..opq", mode=0o600)

    def build(self, compression: str = "none") -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
            for info, data in self.entries:
                tar.addfile(info, io.BytesIO(data) if data is not None else None)
        raw = buf.getvalue()
        if compression == "gzip":
            return gzip.compress(raw)
        if compression == "zstd":
            return zstandard.ZstdCompressor().compress(raw)
        return raw


def _describe(path: Path) -> tuple[Any, ...]:
    st = path.lstat()
    kind = stat.S_IFMT(st.st_mode)
    extra: Any = None
    if stat.S_ISREG(st.st_mode):
        extra = hashlib.sha256(path.read_bytes()).hexdigest()
    elif stat.S_ISLNK(st.st_mode):
        extra = os.readlink(path)
    elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
        extra = st.st_rdev
    xattrs: tuple[tuple[str, bytes], ...] = ()
    if not stat.S_ISLNK(st.st_mode):
        names = sorted(os.listxattr(path, follow_symlinks=False))
        xattrs = tuple((n, os.getxattr(path, n, follow_symlinks=False)) for n in names)
    return (
        kind,
        stat.S_IMODE(st.st_mode),
        st.st_uid,
        st.st_gid,
        st.st_size if not stat.S_ISDIR(st.st_mode) else None,
        st.st_mtime_ns,
        st.st_nlink,
        st.st_ino,
        extra,
        xattrs,
    )


def tree_manifest(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything observable about a tree, symlinks not followed, keyed by relative path."""
    out = {".": _describe(root)}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            out[str(path.relative_to(root))] = _describe(path)
    return out
