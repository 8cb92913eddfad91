"""What a ``COPY``/``ADD`` puts where: sources resolved on a local directory, as a plan.

:func:`plan_copy` reads a source root (the extracted build context, or the filesystem of
the stage or image named by ``--from``) and returns a :class:`CopyPlan`: every path the
step writes in the image with its type, mode, owner and content source, the archives
``ADD`` extracts and the URLs it downloads. It writes nothing; the executor does, in order.

Docker's rules, as dockerd's classic builder applies them:

* Sources: a leading ``/`` or ``./`` is dropped (absolute sources are inside the root);
  ``..`` that would leave the root is refused (``forbidden path outside the build
  context``); symlinks are followed *inside* the root (:mod:`declarun.dockerfile.scope`),
  so one pointing outside resolves to a path in the root, usually missing. Wildcards use
  Go's ``filepath.Match`` against every path of the root; no match at all is
  ``no source files were specified``; a missing source is ``file not found in build context
  or excluded by .dockerignore``.
* Destination: relative to ``WORKDIR`` (done by the evaluator). A trailing ``/``, or a
  directory already in the image (the ``is_dir`` callback), means "into this directory";
  several sources require a trailing ``/``.
* A source directory copies its *contents* (the directory itself is not recreated at the
  destination: a new destination directory gets mode 0755).
* Owners: ``--chown`` (see :func:`parse_chown`) owns every copied path and the parent
  directories a file copy creates; without it, context files are owned by 0:0 and
  ``COPY --from`` keeps the source's owners. Parent directories are created 0755 only when
  missing (``create_only``), existing ones are left alone. ``--chmod`` (octal) sets the mode
  of every copied file and directory.
* ``ADD``: a local tar archive (plain, gzip, bzip2, xz, zstd) is *extracted* into the
  destination directory; a URL (``http://``, ``https://``) is downloaded and never extracted.
  ``COPY`` refuses URLs.
* Heredoc sources (``COPY <<EOF /dest``) become files of mode 0644 named after the marker
  when the destination is a directory.
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from declarun.dockerfile.archive import Compression, archive_compression
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.gomatch import BadPattern, has_wildcards, match
from declarun.dockerfile.ignore import PatternMatcher
from declarun.dockerfile.scope import resolve_in_root
from declarun.dockerfile.steps import CopySpec

__all__ = [
    "ArchiveExtraction",
    "CopyPlan",
    "Download",
    "EntryKind",
    "Owner",
    "PlannedEntry",
    "SourceInfo",
    "parse_chown",
    "plan_copy",
]

EntryKind = Literal["file", "dir", "symlink", "hardlink", "fifo", "inline"]
_ROOT = (0, 0)


@dataclass(frozen=True)
class Owner:
    """A numeric owner."""

    uid: int
    gid: int


def _lookup(table: str | None, name: str, what: str) -> tuple[int, int]:
    for line in (table or "").splitlines():
        fields = line.split(":")
        if len(fields) >= 3 and fields[0] == name:
            try:
                primary = int(fields[3]) if what == "user" and len(fields) > 3 else -1
                return int(fields[2]), primary
            except ValueError:
                break
    raise CopySourceError(
        f"unable to convert uid/gid chown string to host mapping: no such {what}: {name}"
    )


def parse_chown(spec: str, *, passwd: str | None = None, group: str | None = None) -> Owner:
    """``--chown=user[:group]`` as numbers; names are looked up in the image's files.

    ``passwd``/``group`` are the texts of the destination image's ``/etc/passwd`` and
    ``/etc/group`` (None when absent). As in dockerd, a missing group part means "the group
    written like the user" (``7`` -> ``7:7``); for a user *name* with no group of that name
    the user's primary group is used.
    """
    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise CopySourceError(f"invalid chown string format: {spec}")
    user_text = parts[0]
    group_text = parts[1] if len(parts) == 2 else user_text
    primary = -1
    if user_text.isdigit():
        uid = int(user_text)
    else:
        uid, primary = _lookup(passwd, user_text, "user")
    if group_text.isdigit():
        gid = int(group_text)
    else:
        try:
            gid, _ = _lookup(group, group_text, "group")
        except CopySourceError:
            if len(parts) == 2 or primary < 0:
                raise
            gid = primary
    return Owner(uid, gid)


@dataclass(frozen=True)
class PlannedEntry:
    """One path the step writes in the image.

    ``kind`` ``file``: content from ``source``; ``inline``: content ``data``; ``dir``:
    a directory (``create_only``: make it only when missing, leave an existing one as it
    is); ``symlink``: pointing to ``link``; ``hardlink``: a hard link to the image path
    ``link`` written earlier in the same plan; ``fifo``: a named pipe. ``mtime_ns`` is the
    source's modification time (kept, as Docker does), None for created directories.
    """

    path: str
    kind: EntryKind
    mode: int
    uid: int
    gid: int
    source: Path | None = None
    link: str = ""
    data: bytes | None = None
    size: int = 0
    mtime_ns: int | None = None
    create_only: bool = False


@dataclass(frozen=True)
class ArchiveExtraction:
    """``ADD`` of a local archive: extract ``source`` into the image directory ``dest``."""

    source: Path
    dest: str
    compression: Compression


@dataclass(frozen=True)
class Download:
    """``ADD`` of a URL: download it to ``dest``; into that directory when ``into_directory``
    (the file name then comes from the URL path or the response's Content-Disposition)."""

    url: str
    dest: str
    into_directory: bool


@dataclass(frozen=True)
class SourceInfo:
    """One source as dockerd counts them (a wildcard gives one per match).

    ``path`` is the path as matched (relative to the root), ``resolved`` the same with
    symlinks resolved in scope; ``kind`` is ``file``, ``dir``, ``url`` or ``inline``.
    """

    kind: Literal["file", "dir", "url", "inline"]
    path: str
    resolved: str = ""
    url: str = ""
    data: bytes = b""


@dataclass(frozen=True)
class CopyPlan:
    """The plan of one ``COPY``/``ADD``: ``entries`` in write order (parents first)."""

    root: Path
    infos: tuple[SourceInfo, ...]
    entries: tuple[PlannedEntry, ...]
    extractions: tuple[ArchiveExtraction, ...]
    downloads: tuple[Download, ...]


def _is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def _excluded(matcher: PatternMatcher | None, rel: str) -> bool:
    return matcher is not None and bool(rel) and matcher.matches(rel)


def _walk(root: Path, rel: str, matcher: PatternMatcher | None) -> list[str]:
    """Every path under ``root/rel`` (``rel`` itself excluded), depth first, lexical order."""
    found: list[str] = []
    stack = [rel]
    while stack:
        current = stack.pop()
        directory = root / current if current else root
        try:
            names = sorted(os.listdir(directory))
        except OSError as exc:
            raise CopySourceError(f"cannot read {current or '.'}: {exc.strerror}") from None
        children = []
        for name in names:
            child = f"{current}/{name}" if current else name
            if _excluded(matcher, child):
                if matcher is not None and matcher.may_reinclude_below(child):
                    children.append(child)
                continue
            found.append(child)
            if stat.S_ISDIR(os.lstat(root / child).st_mode):
                children.append(child)
        stack.extend(reversed(children))
    # Depth first as Go walks: order each directory's subtree right after it.
    return sorted(found, key=lambda p: p.split("/"))


def _resolve_source(
    root: Path, original: str, path: str, matcher: PatternMatcher | None
) -> SourceInfo:
    normalized = posixpath.normpath(path) if path else "."
    if normalized == ".." or normalized.startswith("../"):
        raise CopySourceError(f"forbidden path outside the build context: {original} ()")
    resolved = resolve_in_root(root, "" if normalized == "." else normalized)
    missing = CopySourceError(
        "file not found in build context or excluded by .dockerignore: "
        f"stat {path or '.'}: file does not exist"
    )
    if _excluded(matcher, resolved) and not (
        matcher is not None and matcher.may_reinclude_below(resolved)
    ):
        raise missing
    try:
        mode = os.stat(root / resolved if resolved else root, follow_symlinks=False).st_mode
    except OSError:
        raise missing from None
    kind: Literal["file", "dir"] = "dir" if stat.S_ISDIR(mode) else "file"
    return SourceInfo(kind, path or ".", resolved)


def _infos(spec: CopySpec, root: Path, matcher: PatternMatcher | None) -> list[SourceInfo]:
    infos: list[SourceInfo] = []
    for source in spec.sources:
        if _is_url(source):
            if not spec.add:
                raise CopySourceError("source can't be a URL for COPY")
            infos.append(SourceInfo("url", source, url=source))
            continue
        path = source.removeprefix("/").removeprefix("./")
        if has_wildcards(path):
            try:
                matches = [rel for rel in _walk(root, "", matcher) if match(path, rel)]
            except BadPattern as exc:
                raise CopySourceError(str(exc)) from None
            infos.extend(_resolve_source(root, source, rel, matcher) for rel in matches)
            continue
        infos.append(_resolve_source(root, source, path, matcher))
    for inline in spec.inline_sources:
        infos.append(SourceInfo("inline", inline.name, data=inline.data.encode()))
    if not infos:
        raise CopySourceError("no source files were specified")
    if len(infos) > 1 and not spec.dest.endswith("/"):
        raise CopySourceError(
            f"When using {spec.keyword} with more than one source file, the destination must "
            "be a directory and end with a /"
        )
    return infos


def _chmod(spec: CopySpec) -> int | None:
    if not spec.chmod:
        return None
    try:
        mode = int(spec.chmod, 8)
    except ValueError:
        raise CopySourceError(f"invalid chmod parameter: {spec.chmod}") from None
    if mode < 0 or mode > 0o7777:
        raise CopySourceError(f"invalid chmod parameter: {spec.chmod}")
    return mode


class _Builder:
    def __init__(
        self,
        spec: CopySpec,
        root: Path,
        owner: Owner | None,
        preserve_owner: bool,
        is_dir: Callable[[str], bool],
    ) -> None:
        self.spec = spec
        self.root = root
        self.owner = (owner.uid, owner.gid) if owner else _ROOT
        self.preserve = preserve_owner and owner is None
        self.is_dir = is_dir
        self.mode = _chmod(spec)
        self.entries: list[PlannedEntry] = []
        self.made: set[str] = set()
        self.links: dict[tuple[int, int], str] = {}

    def parents(self, path: str, ids: tuple[int, int]) -> None:
        parts = [p for p in path.split("/") if p][:-1]
        for i in range(1, len(parts) + 1):
            directory = "/" + "/".join(parts[:i])
            if directory not in self.made:
                self.made.add(directory)
                self.entries.append(PlannedEntry(directory, "dir", 0o755, *ids, create_only=True))

    def ids(self, st: os.stat_result) -> tuple[int, int]:
        return (st.st_uid, st.st_gid) if self.preserve else self.owner

    def entry(self, rel: str, dest: str) -> None:
        full = self.root / rel
        st = os.lstat(full)
        mode = stat.S_IMODE(st.st_mode)
        ids = self.ids(st)
        if stat.S_ISLNK(st.st_mode):
            target = os.readlink(full)
            self.entries.append(
                PlannedEntry(dest, "symlink", 0o777, *ids, link=target, mtime_ns=st.st_mtime_ns)
            )
            return
        chosen = self.mode if self.mode is not None else mode
        if stat.S_ISDIR(st.st_mode):
            self.entries.append(PlannedEntry(dest, "dir", chosen, *ids, mtime_ns=st.st_mtime_ns))
            return
        if stat.S_ISFIFO(st.st_mode):
            self.entries.append(PlannedEntry(dest, "fifo", chosen, *ids, mtime_ns=st.st_mtime_ns))
            return
        if not stat.S_ISREG(st.st_mode):
            return  # sockets and device files are not copied
        if st.st_nlink > 1:
            first = self.links.get((st.st_dev, st.st_ino))
            if first is not None:
                self.entries.append(PlannedEntry(dest, "hardlink", chosen, *ids, link=first))
                return
            self.links[(st.st_dev, st.st_ino)] = dest
        self.entries.append(
            PlannedEntry(
                dest, "file", chosen, *ids, source=full, size=st.st_size, mtime_ns=st.st_mtime_ns
            )
        )

    def directory(self, info: SourceInfo, dest: str, matcher: PatternMatcher | None) -> None:
        if dest != "/" and not self.is_dir(dest):
            self.parents(dest, _ROOT)
            ids = self.owner
            self.made.add(dest)
            mode = self.mode if self.mode is not None else 0o755
            self.entries.append(PlannedEntry(dest, "dir", mode, *ids))
        prefix = info.resolved + "/" if info.resolved else ""
        for rel in _walk(self.root, info.resolved, matcher):
            self.entry(rel, posixpath.join(dest, rel[len(prefix) :]))

    def file(self, info: SourceInfo, dest_dir: bool, dest: str) -> None:
        target = dest
        if dest_dir or self.is_dir(dest):
            # Named after the source as written (a symlink's own name, not its target's).
            target = posixpath.join(dest, posixpath.basename(info.path))
        self.parents(target, _ROOT if self.preserve else self.owner)
        self.entry(info.resolved, target)


def plan_copy(
    spec: CopySpec,
    root: Path,
    *,
    matcher: PatternMatcher | None = None,
    owner: Owner | None = None,
    passwd: str | None = None,
    group: str | None = None,
    preserve_owner: bool | None = None,
    is_dir: Callable[[str], bool] = lambda _path: False,
) -> CopyPlan:
    """Resolve ``spec`` against ``root`` (see the module docstring).

    ``root`` is the context directory, or the root filesystem of the ``--from`` stage or
    image. ``matcher`` applies ``.dockerignore`` when ``root`` is the user's own directory
    (the daemon's extracted context needs none). ``--chown`` is resolved with
    :func:`parse_chown` against ``passwd``/``group``, the texts of the *destination*
    image's ``/etc/passwd`` and ``/etc/group`` (needed only for names); ``owner`` overrides. ``preserve_owner`` keeps
    the sources' owners (default: for ``COPY --from`` without ``--chown``). ``is_dir`` tells
    whether an absolute path is a directory in the image being built.
    Raises :class:`CopySourceError` with dockerd's wording.
    """
    root = Path(root)
    if owner is None and spec.chown:
        owner = parse_chown(spec.chown, passwd=passwd, group=group)
    infos = _infos(spec, root, matcher)
    preserve = (
        (spec.from_stage is not None or spec.from_image is not None)
        if preserve_owner is None
        else preserve_owner
    )
    builder = _Builder(spec, root, owner, preserve, is_dir)
    dest = spec.dest_path
    dest_dir = dest.endswith("/")
    dest_clean = posixpath.normpath(dest) if dest not in ("", "/") else "/"
    extractions: list[ArchiveExtraction] = []
    downloads: list[Download] = []
    for info in infos:
        if info.kind == "url":
            downloads.append(Download(info.url, dest_clean, dest_dir))
            target = posixpath.join(dest_clean, "x") if dest_dir else dest_clean
            builder.parents(target, builder.owner)
        elif info.kind == "inline":
            target = dest_clean
            if dest_dir or is_dir(dest_clean):
                target = posixpath.join(dest_clean, info.path)
            builder.parents(target, builder.owner)
            mode = builder.mode if builder.mode is not None else 0o644
            builder.entries.append(
                PlannedEntry(
                    target, "inline", mode, *builder.owner, data=info.data, size=len(info.data)
                )
            )
        elif info.kind == "dir":
            builder.directory(info, dest_clean, matcher)
        else:
            full = root / info.resolved
            compression = archive_compression(full) if spec.add else None
            if compression is not None:
                builder.parents(posixpath.join(dest_clean, "x"), _ROOT)
                extractions.append(ArchiveExtraction(full, dest_clean, compression))
                continue
            builder.file(info, dest_dir, dest_clean)
    return CopyPlan(
        root, tuple(infos), tuple(builder.entries), tuple(extractions), tuple(downloads)
    )
