"""Whole-tree file system operations used around unpacking: faithful copy, removal, sync.

A root filesystem holds what generic copy helpers drop (device nodes, hardlinks, trusted
and security xattrs, setuid bits on root-owned files), so copies go through ``cp -a``,
which keeps all of it and uses reflinks where the filesystem offers them.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import shutil
import stat
import subprocess
import uuid
from pathlib import Path

from declarun.errors import UnpackError

__all__ = ["clone_tree", "remove_tree", "sync_filesystem", "temp_sibling"]


def temp_sibling(target: Path, tag: str) -> Path:
    """A fresh, unused path next to ``target`` (same filesystem, so a rename is atomic)."""
    return target.parent / f".{tag}-{target.name}-{uuid.uuid4().hex[:12]}"


def clone_tree(source: Path, dest: Path) -> None:
    """Copy the contents of directory ``source`` into existing directory ``dest``.

    Keeps ownership, modes, timestamps, hardlinks, symlinks (never followed), device
    nodes, fifos and xattrs. Raises :class:`UnpackError` if ``cp`` fails.
    """
    proc = subprocess.run(
        ["cp", "-a", "--reflink=auto", "--", f"{source}/.", f"{dest}/"],
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        raise UnpackError(f"copying {source} failed: {proc.stderr.strip()}")


def remove_tree(path: Path) -> None:
    """Remove ``path`` and everything below it, following no symlinks; missing is fine.

    A tree is first renamed aside so it disappears at once, then deleted.
    """
    try:
        st = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISDIR(st.st_mode):
        path.unlink()
        return
    aside = temp_sibling(path, "trash")
    os.rename(path, aside)
    shutil.rmtree(aside)


def _libc_syncfs() -> ctypes._NamedFuncPointer | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        return ctypes.CDLL(name, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None


_SYNCFS = _libc_syncfs()


def sync_filesystem(path: Path) -> None:
    """Flush the filesystem holding ``path`` to disk before a snapshot is published.

    One ``syncfs`` instead of an fsync per file: layers hold thousands of small files.
    """
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        if _SYNCFS is None or _SYNCFS(fd) != 0:
            os.sync()
    finally:
        os.close(fd)
