"""A build context directory: which files are sent, their digests, and what changed.

:func:`walk_context` lists the entries the docker CLI would send for a directory — the
``.dockerignore`` rules applied as ``moby/go-archive`` applies them while building the
context tar (see :mod:`declarun.dockerfile.ignore`), in its lexical walk order.

:func:`hash_context` digests those entries for the planner: each entry's fingerprint is its
type, permission bits and, for a file, the SHA-256 of its content; for a symlink, its
target. Owners and times are left out (the docker CLI sends every file as 0:0 and the
build ignores times), so only what can change a build changes the digest.
:meth:`ContextDigest.changes` names the files added, removed or modified between two digests.

Hashing is fast on repeat through a :class:`DigestCache`: a file's content digest is reused
while its ``(size, mtime_ns, inode, device)`` is unchanged, and content is read only for
files whose stat differs. Where the cache lives is the caller's choice: a JSON file (a
path) or any mutable mapping. A file modified less than a second before it was hashed is
not cached, so a write within the file system's timestamp granularity cannot hide behind
an unchanged mtime (git's "racy clean" problem).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import time
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.dockerfile.errors import FrontendError
from declarun.dockerfile.ignore import MatchInfo, PatternMatcher, build_patterns, read_dockerignore

__all__ = [
    "ContextChanges",
    "ContextDigest",
    "ContextEntry",
    "DigestCache",
    "context_matcher",
    "hash_context",
    "walk_context",
]

_RACY_NS = 1_000_000_000
_CHUNK = 1 << 20


@dataclass(frozen=True)
class ContextEntry:
    """An entry the context holds: its ``/``-separated relative path, lstat and host path."""

    path: str
    stat: os.stat_result
    full_path: str = ""

    @property
    def is_dir(self) -> bool:
        """True for a directory (not a symlink to one)."""
        return stat.S_ISDIR(self.stat.st_mode)


def context_matcher(root: Path, dockerfile: str | None = "Dockerfile") -> PatternMatcher | None:
    """The matcher for ``root``'s ``.dockerignore`` (None when there is none).

    ``dockerfile`` is the Dockerfile's path relative to ``root`` (kept even when excluded).
    """
    try:
        text = (root / ".dockerignore").read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise FrontendError(f"cannot read {root / '.dockerignore'}: {exc.strerror}") from None
    patterns = read_dockerignore(text)
    if not patterns:
        return None
    return PatternMatcher(build_patterns(patterns, dockerfile))


def _scan(directory: str | Path) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(directory) as entries:
            return sorted(entries, key=lambda e: e.name.encode("utf-8", "surrogateescape"))
    except OSError as exc:
        raise FrontendError(f"cannot read {directory}: {exc.strerror}") from None


def walk_context(root: Path, matcher: PatternMatcher | None = None) -> Iterator[ContextEntry]:
    """The entries of ``root`` the context holds, depth first in lexical order (as Go walks)."""
    stack: list[tuple[Iterator[os.DirEntry[str]], str, MatchInfo | None]] = [
        (iter(_scan(root)), "", None)
    ]
    while stack:
        entries, prefix, info = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        rel = prefix + entry.name
        try:
            entry_stat = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # vanished meanwhile
        is_dir = stat.S_ISDIR(entry_stat.st_mode)
        child_info: MatchInfo | None = None
        if matcher is not None:
            skip, child_info = matcher.matches_in_walk(rel, info)
            if skip:
                # An excluded directory is entered only when an exception may re-include
                # something below it; the directory itself is not sent either way.
                if is_dir and matcher.exclusions and matcher.may_reinclude_below(rel):
                    stack.append((iter(_scan(entry.path)), rel + "/", child_info))
                continue
        yield ContextEntry(rel, entry_stat, entry.path)
        if is_dir:
            stack.append((iter(_scan(entry.path)), rel + "/", child_info))


class DigestCache:
    """Content digests by ``(path, size, mtime_ns, inode, device)``; see the module docstring.

    ``DigestCache(path)`` keeps the cache in a JSON file (read now, written by :meth:`save`
    when something changed); ``DigestCache(mapping)`` uses any mutable mapping of string
    keys to JSON-able lists.
    """

    def __init__(self, store: Path | MutableMapping[str, Any] | None = None) -> None:
        self._path: Path | None = None
        self._dirty = False
        if isinstance(store, Path):
            self._path = store
            self._data: MutableMapping[str, Any] = self._load(store)
        else:
            self._data = {} if store is None else store

    @staticmethod
    def _load(path: Path) -> dict[str, Any]:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            return {}  # a missing or damaged cache only costs a rehash
        return data if isinstance(data, dict) else {}

    def lookup(self, path: str, st: os.stat_result) -> str | None:
        """The cached digest of ``path`` if its stat is unchanged."""
        cached = self._data.get(path)
        if (
            isinstance(cached, list)
            and len(cached) == 5
            and cached[:4] == [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev]
        ):
            return str(cached[4])
        return None

    def store(self, path: str, st: os.stat_result, digest: str, hashed_at_ns: int) -> None:
        """Remember ``digest`` unless the file changed too recently to trust its mtime."""
        if st.st_mtime_ns + _RACY_NS > hashed_at_ns:
            self.forget(path)
            return
        entry = [st.st_size, st.st_mtime_ns, st.st_ino, st.st_dev, digest]
        if self._data.get(path) != entry:
            self._data[path] = entry
            self._dirty = True

    def forget(self, path: str) -> None:
        """Drop ``path``'s entry."""
        if path in self._data:
            del self._data[path]
            self._dirty = True

    def prune(self, prefix: str, keep: set[str]) -> None:
        """Drop entries under ``prefix`` that are not in ``keep`` (files gone since)."""
        for key in [k for k in self._data if k.startswith(prefix) and k not in keep]:
            del self._data[key]
            self._dirty = True

    def save(self) -> None:
        """Write the JSON file atomically (only for a path-backed cache that changed)."""
        if self._path is None or not self._dirty:
            return
        self._path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._path.with_name(self._path.name + f".tmp{os.getpid()}")
        temporary.write_text(json.dumps(self._data, separators=(",", ":")))
        os.replace(temporary, self._path)
        self._dirty = False


@dataclass(frozen=True)
class ContextChanges:
    """Paths added, removed and modified between two context digests (sorted)."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.added or self.removed or self.modified)

    def paths(self) -> tuple[str, ...]:
        """Every changed path, sorted."""
        return tuple(sorted((*self.added, *self.removed, *self.modified)))


@dataclass(frozen=True)
class ContextDigest:
    """A context's digest: ``digest`` over every entry's ``fingerprint`` (by path)."""

    digest: str
    entries: Mapping[str, str] = field(default_factory=dict)

    def changes(self, newer: ContextDigest) -> ContextChanges:
        """What changed from this digest to ``newer``."""
        old, new = self.entries, newer.entries
        return ContextChanges(
            added=tuple(sorted(p for p in new if p not in old)),
            removed=tuple(sorted(p for p in old if p not in new)),
            modified=tuple(sorted(p for p in new if p in old and old[p] != new[p])),
        )

    def to_json(self) -> dict[str, Any]:
        """A JSON-able form (for the planner's saved state)."""
        return {"digest": self.digest, "entries": dict(self.entries)}

    @classmethod
    def from_json(cls, doc: Mapping[str, Any]) -> ContextDigest:
        """Read :meth:`to_json`'s form back."""
        return cls(str(doc["digest"]), {str(k): str(v) for k, v in doc["entries"].items()})


def _file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def _fingerprint(entry: ContextEntry, cache: DigestCache, now_ns: int) -> str:
    mode = stat.S_IMODE(entry.stat.st_mode)
    kind = stat.S_IFMT(entry.stat.st_mode)
    full = entry.full_path
    if stat.S_ISREG(kind):
        content = cache.lookup(full, entry.stat)
        if content is None:
            try:
                content = _file_digest(full)
            except OSError as exc:
                raise FrontendError(f"cannot read {full}: {exc.strerror}") from None
            cache.store(full, entry.stat, content, now_ns)
        return f"file {mode:o} {content}"
    if stat.S_ISLNK(kind):
        return f"symlink {mode:o} {os.readlink(full)}"
    if stat.S_ISDIR(kind):
        return f"dir {mode:o}"
    return f"special {kind:o} {mode:o}"


def hash_context(
    root: Path,
    *,
    dockerfile: str | None = "Dockerfile",
    cache: DigestCache | Path | MutableMapping[str, Any] | None = None,
    matcher: PatternMatcher | None = None,
) -> ContextDigest:
    """Digest the context ``root`` (``.dockerignore`` applied; see the module docstring).

    ``dockerfile`` is the Dockerfile's path relative to ``root`` (it is always part of the
    context); ``matcher`` overrides reading ``root/.dockerignore``. A path-backed cache is
    saved before returning.
    """
    root = Path(root)
    if not root.is_dir():
        raise FrontendError(f"build context {root} is not a directory")
    store = cache if isinstance(cache, DigestCache) else DigestCache(cache)
    chosen = matcher if matcher is not None else context_matcher(root, dockerfile)
    now_ns = time.time_ns()
    entries: dict[str, str] = {}
    total = hashlib.sha256()
    seen: set[str] = set()
    for entry in walk_context(root, chosen):
        entries[entry.path] = _fingerprint(entry, store, now_ns)
        seen.add(entry.full_path)
    for path in sorted(entries):
        total.update(f"{path}\0{entries[path]}\n".encode("utf-8", "surrogateescape"))
    store.prune(str(root) + "/", seen)
    store.save()
    return ContextDigest("sha256:" + total.hexdigest(), entries)
