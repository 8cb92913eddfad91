"""``.dockerignore`` with Docker's rules (moby's ``patternmatcher`` and ``ignorefile``).

Reading (:func:`read_dockerignore`): a UTF-8 BOM is dropped; lines starting with ``#`` are
comments; each other line is trimmed, blank ones skipped; a leading ``!`` makes an
exception; the pattern is cleaned like Go's ``filepath.Clean`` (``./a//b/`` -> ``a/b``)
and a leading ``/`` removed (``/a`` and ``a`` are the same).

Matching (:class:`PatternMatcher`): Go ``filepath.Match`` syntax plus ``**`` for any number
of directories (``**/*.go``, ``a/**``, ``**`` alone matches everything). Patterns apply in
order and the *last* one that matches a path decides (``!`` re-includes). A pattern that
matches a directory matches everything below it. When walking a context
(:func:`declarun.dockerfile.context.walk_context`) an excluded directory is not entered
unless an exception pattern starts with that directory's path (``!dir/keep``), in which case
only the entries an exception re-includes are sent.

The Dockerfile and ``.dockerignore`` are always sent, even when a pattern excludes them
(:func:`build_patterns` adds the exceptions, as the docker CLI does); dockerd then deletes
them from the extracted context when the ``.dockerignore`` excludes them, so ``COPY . /x``
does not see them (:func:`removed_after_reading` names them).

One simplification: inside a character class (``[...]``), ``*`` and ``?`` are taken
literally, where moby turns them into regular-expression fragments and builds a broken
class; patterns that rely on that are not meaningful anyway.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import Enum

from declarun.dockerfile.errors import IgnorePatternError
from declarun.dockerfile.gomatch import BadPattern, validate

__all__ = [
    "MatchInfo",
    "Pattern",
    "PatternMatcher",
    "build_patterns",
    "clean_path",
    "read_dockerignore",
    "removed_after_reading",
]

_REGEX_SPECIAL = frozenset(".+()|{}$")


def clean_path(path: str) -> str:
    """Go's ``filepath.Clean`` on Linux: shortest equivalent path, ``.`` for empty."""
    if not path:
        return "."
    cleaned = posixpath.normpath(path)
    # normpath keeps a leading '//', Clean does not.
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def read_dockerignore(text: str) -> list[str]:
    """The patterns of a ``.dockerignore`` file, normalised as the docker CLI reads them."""
    patterns: list[str] = []
    for number, line in enumerate(text.splitlines()):
        if number == 0:
            line = line.removeprefix("\ufeff")
        if line.startswith("#"):
            continue
        pattern = line.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = clean_path(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern[1:]
        patterns.append("!" + pattern if invert else pattern)
    return patterns


class _Kind(Enum):
    EXACT = "exact"
    PREFIX = "prefix"
    SUFFIX = "suffix"
    REGEX = "regex"


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "[]\\&~|^-" else ch


def _compile(pattern: str) -> tuple[_Kind, re.Pattern[str] | None]:
    out = ["^"]
    kind = _Kind.EXACT
    i = 0
    in_class = False
    while i < len(pattern):
        ch = pattern[i]
        start = i == 0
        i += 1
        if in_class:
            if ch == "]":
                out.append("]")
                in_class = False
            elif ch == "\\" and i < len(pattern):
                out.append(_class_char(pattern[i]))
                i += 1
            elif ch == "-" or (ch == "^" and out[-1] == "["):
                out.append(ch)
            else:
                out.append(_class_char(ch))
            continue
        if ch == "*":
            if i < len(pattern) and pattern[i] == "*":
                i += 1
                if i < len(pattern) and pattern[i] == "/":
                    i += 1
                if i >= len(pattern):
                    if kind is _Kind.EXACT:
                        kind = _Kind.PREFIX
                    else:
                        out.append(".*")
                        kind = _Kind.REGEX
                else:
                    out.append("(.*/)?")
                    kind = _Kind.REGEX
                if start:
                    kind = _Kind.SUFFIX
            else:
                out.append("[^/]*")
                kind = _Kind.REGEX
        elif ch == "?":
            out.append("[^/]")
            kind = _Kind.REGEX
        elif ch in _REGEX_SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            if i < len(pattern):
                out.append(re.escape(pattern[i]))
                i += 1
                kind = _Kind.REGEX
            else:
                out.append("\\\\")
        elif ch == "[":
            out.append("[")
            in_class = True
            kind = _Kind.REGEX
        elif ch == "]":
            out.append("\\]")
            kind = _Kind.REGEX
        else:
            out.append(re.escape(ch))
    if kind is not _Kind.REGEX:
        return kind, None
    try:
        return kind, re.compile("".join(out) + "$")
    except re.error:
        raise IgnorePatternError(f"syntax error in pattern: {pattern!r}") from None


@dataclass(frozen=True)
class Pattern:
    """One cleaned pattern; ``exclusion`` for a ``!`` exception."""

    text: str
    exclusion: bool
    depth: int
    kind: _Kind
    regex: re.Pattern[str] | None

    def match(self, path: str) -> bool:
        """Whether this pattern matches ``path`` (relative, ``/``-separated, cleaned)."""
        if self.kind is _Kind.EXACT:
            return path == self.text
        if self.kind is _Kind.PREFIX:
            return path.startswith(self.text[:-2])
        if self.kind is _Kind.SUFFIX:
            suffix = self.text[2:]
            return path.endswith(suffix) or (suffix.startswith("/") and path == suffix[1:])
        assert self.regex is not None
        return self.regex.match(path) is not None


@dataclass(frozen=True)
class MatchInfo:
    """Which patterns matched a directory, handed to its children while walking."""

    parent_matched: tuple[bool, ...] = ()


class PatternMatcher:
    """Docker's ``.dockerignore`` matcher over a list of patterns (see the module docstring)."""

    def __init__(self, patterns: Iterable[str]) -> None:
        compiled: list[Pattern] = []
        for raw in patterns:
            text = raw.strip()
            if not text:
                continue
            text = clean_path(text)
            exclusion = text.startswith("!")
            if exclusion:
                if len(text) == 1:
                    raise IgnorePatternError('illegal exclusion pattern: "!"')
                text = text[1:]
            try:
                validate(text)
            except BadPattern:
                raise IgnorePatternError(f"syntax error in pattern: {text!r}") from None
            kind, regex = _compile(text)
            compiled.append(Pattern(text, exclusion, len(text.split("/")), kind, regex))
        self.patterns: tuple[Pattern, ...] = tuple(compiled)
        self.exclusions = any(p.exclusion for p in compiled)

    def matches(self, path: str) -> bool:
        """Whether ``path`` is excluded (a pattern matching a parent directory counts)."""
        path = clean_path(path)
        if path == ".":
            return False
        parent = posixpath.dirname(path) or "."
        parent_dirs = parent.split("/")
        matched = False
        for pattern in self.patterns:
            if pattern.exclusion != matched:
                continue
            hit = pattern.match(path)
            if not hit and parent != ".":
                for i in range(len(parent_dirs)):
                    if pattern.match("/".join(parent_dirs[: i + 1])):
                        hit = True
                        break
            if hit:
                matched = not pattern.exclusion
        return matched

    def matches_in_walk(self, path: str, parent: MatchInfo | None) -> tuple[bool, MatchInfo]:
        """Whether ``path`` is excluded, given what matched its directory while walking."""
        parent_matched = parent.parent_matched if parent else ()
        matched = False
        info: list[bool] = []
        for i, pattern in enumerate(self.patterns):
            hit = parent_matched[i] if parent_matched else False
            if not hit:
                if pattern.exclusion != matched:
                    info.append(False)
                    continue
                hit = pattern.match(path)
                if not hit and not parent_matched:
                    dirs = (posixpath.dirname(path) or ".").split("/")
                    if dirs != ["."]:
                        hit = any(pattern.match("/".join(dirs[: j + 1])) for j in range(len(dirs)))
            info.append(hit)
            if hit:
                matched = not pattern.exclusion
        return matched, MatchInfo(tuple(info))

    def may_reinclude_below(self, directory: str) -> bool:
        """Whether an exception pattern starts with ``directory/`` (so it must be entered)."""
        prefix = directory + "/"
        return any(p.exclusion and (p.text + "/").startswith(prefix) for p in self.patterns)


def build_patterns(patterns: Sequence[str], dockerfile: str | None) -> list[str]:
    """``patterns`` plus the exceptions that keep ``.dockerignore`` and the Dockerfile sent.

    ``dockerfile`` is the Dockerfile's path relative to the context (None when it comes
    from elsewhere, such as stdin).
    """
    result = list(patterns)
    matcher = PatternMatcher(result)
    if matcher.matches(".dockerignore"):
        result.append("!.dockerignore")
    if dockerfile is not None:
        name = clean_path(dockerfile)
        if PatternMatcher(result).matches(name):
            result.append("!" + name)
    return result


def removed_after_reading(patterns: Sequence[str], dockerfile: str | None) -> list[str]:
    """The files dockerd deletes from an extracted context once it has read them.

    ``patterns`` are the context's own ``.dockerignore`` patterns (without
    :func:`build_patterns`' exceptions): ``.dockerignore`` and the Dockerfile are removed
    when those patterns exclude them.
    """
    matcher = PatternMatcher(patterns)
    candidates = [".dockerignore"] + ([clean_path(dockerfile)] if dockerfile else [])
    return [path for path in candidates if matcher.matches(path)]
