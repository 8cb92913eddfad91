"""Digests of what a ``COPY``/``ADD`` copies: the cache key's, and dockerd's history hash.

:func:`sources_digest` is the content digest of the sources *as they land*: for every
entry of a :class:`~declarun.dockerfile.copyplan.CopyPlan` its image path, type, mode,
owner (after ``--chown``), link target and content (SHA-256); for every extracted archive
its destination and content; for every download its URL and destination (an executor adds
the downloaded content's digest to the key itself, see :func:`extend_digest`). Times are
left out, so touching a file does not bust the cache; editing it does.

:func:`classic_source_hash` is the ``file:<hex>`` / ``dir:<hex>`` / ``multi:<hex>`` string
dockerd's classic builder writes into ``created_by`` (``COPY file:... in /dst``). It is a
tarsum: SHA-256 of selected tar header fields and the content. For the build context
(``flavor="context"``) the fields are those of the context tar the docker CLI sends (owner
0:0, mode without file-type bits, user and group names blank); for ``COPY --from`` and
downloads (``flavor="image"``) dockerd hashes the files on disk (real owners, mode with
file-type bits, names looked up on the daemon's host). A symlink's hash is its target's
(resolved in scope); one whose target is missing hashes as its path.
"""

from __future__ import annotations

import grp
import hashlib
import os
import pwd
import stat
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Literal

from declarun.dockerfile.copyplan import CopyPlan, SourceInfo
from declarun.dockerfile.scope import resolve_in_root

__all__ = [
    "Flavor",
    "classic_entry_hash",
    "classic_source_hash",
    "combine_classic_hashes",
    "extend_digest",
    "sources_digest",
]

Flavor = Literal["context", "image"]
_CHUNK = 1 << 20
_TYPE_BITS = (
    (stat.S_ISREG, 0o100000, "0"),
    (stat.S_ISDIR, 0o040000, "5"),
    (stat.S_ISLNK, 0o120000, "2"),
    (stat.S_ISCHR, 0o020000, "3"),
    (stat.S_ISBLK, 0o060000, "4"),
    (stat.S_ISFIFO, 0o010000, "6"),
    (stat.S_ISSOCK, 0o140000, "0"),
)


def _content(path: Path, digest: hashlib._Hash) -> None:
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)


def _sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    _content(path, digest)
    return digest.hexdigest()


def sources_digest(plan: CopyPlan, *, known: Callable[[Path], str | None] | None = None) -> str:
    """The content digest of everything ``plan`` writes (see the module docstring).

    ``known(path)`` may give a source file's SHA-256 (hex) already computed, such as an
    executor's index of the context it received; files it does not know are read.
    """
    total = hashlib.sha256()
    for entry in plan.entries:
        if entry.kind == "file" and entry.source is not None:
            content = (known(entry.source) if known is not None else None) or _sha256_file(
                entry.source
            )
        elif entry.kind == "inline" and entry.data is not None:
            content = hashlib.sha256(entry.data).hexdigest()
        else:
            content = ""
        line = (
            f"{entry.path}\0{entry.kind}\0{entry.mode:o}\0{entry.uid}\0{entry.gid}\0"
            f"{entry.link}\0{content}\0{int(entry.create_only)}\n"
        )
        total.update(line.encode("utf-8", "surrogateescape"))
    for extraction in plan.extractions:
        line = f"extract\0{extraction.dest}\0{_sha256_file(extraction.source)}\n"
        total.update(line.encode("utf-8", "surrogateescape"))
    for download in plan.downloads:
        line = f"download\0{download.url}\0{download.dest}\0{int(download.into_directory)}\n"
        total.update(line.encode("utf-8", "surrogateescape"))
    return "sha256:" + total.hexdigest()


def extend_digest(digest: str, *parts: str) -> str:
    """``digest`` combined with more material (such as a downloaded file's digest)."""
    combined = hashlib.sha256("\0".join((digest, *parts)).encode())
    return "sha256:" + combined.hexdigest()


def _name(table: Literal["user", "group"], number: int) -> str:
    try:
        return pwd.getpwuid(number).pw_name if table == "user" else grp.getgrgid(number).gr_name
    except KeyError:
        return ""


def _capability(path: Path) -> str | None:
    try:
        value = bytearray(os.getxattr(path, "security.capability", follow_symlinks=False))
    except OSError:
        return None
    if len(value) > 3 and value[3] == 3:  # revision 3 is stored as revision 2 (20 bytes)
        value[3] = 2
        value = value[:20]
    return value.decode("latin-1")


def _header_hash(root: Path, rel: str, flavor: Flavor) -> str:
    full = root / rel
    st = os.lstat(full)
    mode = stat.S_IMODE(st.st_mode)
    typeflag = "0"
    for test, bits, flag in _TYPE_BITS:
        if test(st.st_mode):
            typeflag = flag
            if flavor == "image":
                mode |= bits
            break
    is_dir = stat.S_ISDIR(st.st_mode)
    is_device = stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode)
    fields = [
        ("name", rel + "/" if is_dir else rel),
        ("mode", str(mode)),
        ("uid", "0" if flavor == "context" else str(st.st_uid)),
        ("gid", "0" if flavor == "context" else str(st.st_gid)),
        ("size", str(st.st_size) if stat.S_ISREG(st.st_mode) else "0"),
        ("typeflag", typeflag),
        ("linkname", os.readlink(full) if stat.S_ISLNK(st.st_mode) else ""),
        ("uname", "" if flavor == "context" else _name("user", st.st_uid)),
        ("gname", "" if flavor == "context" else _name("group", st.st_gid)),
        ("devmajor", str(os.major(st.st_rdev)) if is_device else "0"),
        ("devminor", str(os.minor(st.st_rdev)) if is_device else "0"),
    ]
    capability = _capability(full)
    if capability is not None:
        fields.append(("security.capability", capability))
    digest = hashlib.sha256("".join(k + v for k, v in fields).encode("utf-8", "surrogateescape"))
    if stat.S_ISREG(st.st_mode):
        _content(full, digest)
    return digest.hexdigest()


def classic_entry_hash(root: Path, path: str, flavor: Flavor = "context") -> str:
    """dockerd's hash of one path of ``root`` (symlinks followed in scope)."""
    resolved = resolve_in_root(root, path)
    if not resolved or not os.path.lexists(root / resolved):
        # dockerd's backwards-compatible fallback: a missing file "hashes" as its path.
        return path if flavor == "context" else resolved
    return _header_hash(root, resolved, flavor)


def _walk_all(root: Path, rel: str) -> list[str]:
    found = [rel]
    for current, dirs, files in os.walk(root / rel):
        dirs.sort()
        base = os.path.relpath(current, root)
        found.extend(f"{base}/{name}" for name in sorted(dirs + files))
    return found


def _info_hash(root: Path, info: SourceInfo, flavor: Flavor) -> str | None:
    if info.kind == "url":
        return None
    if info.kind == "inline":
        return "file:" + hashlib.sha256(info.data).hexdigest()
    if info.kind == "file":
        return "file:" + classic_entry_hash(root, info.path, flavor)
    parts = sorted(classic_entry_hash(root, rel, flavor) for rel in _walk_all(root, info.resolved))
    return "dir:" + hashlib.sha256(",".join(parts).encode("utf-8", "surrogateescape")).hexdigest()


def combine_classic_hashes(hashes: Sequence[str]) -> str:
    """One source's hash as is; several as ``multi:`` over them in order (dockerd's rule)."""
    if len(hashes) == 1:
        return hashes[0]
    return "multi:" + hashlib.sha256(",".join(hashes).encode()).hexdigest()


def classic_source_hash(
    plan: CopyPlan, *, flavor: Flavor = "context", downloaded: Sequence[str] = ()
) -> str:
    """dockerd's ``created_by`` hash of ``plan``'s sources.

    ``downloaded`` gives, in order, the hashes of the plan's URL sources, which only the
    executor can compute after downloading (``"file:" + classic_entry_hash(dir, name,
    "image")``). Raises ValueError when some are missing.
    """
    pending = list(downloaded)
    hashes: list[str] = []
    for info in plan.infos:
        value = _info_hash(plan.root, info, flavor)
        if value is None:
            if not pending:
                raise ValueError("the hash of a downloaded source is needed")
            value = pending.pop(0)
        hashes.append(value)
    return combine_classic_hashes(hashes)
