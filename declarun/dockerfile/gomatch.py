"""Go's ``path/filepath.Match`` on Linux, the wildcard syntax of ``COPY``/``ADD`` sources.

``*`` any run of non-``/`` characters, ``?`` one non-``/`` character, ``[abc]``/``[a-z]``
character classes (``[^...]`` negates), ``\\`` escapes the next character. A malformed
pattern (``[``, ``a\\``, ``[]``) is an error even when the name would not match, as in Go.
"""

from __future__ import annotations

__all__ = ["BadPattern", "has_wildcards", "match", "validate"]


class BadPattern(ValueError):
    """The pattern is malformed (Go's ``filepath.ErrBadPattern``)."""

    def __init__(self, pattern: str) -> None:
        super().__init__(f"syntax error in pattern: {pattern!r}")


def has_wildcards(name: str) -> bool:
    """True when ``name`` holds an unescaped ``*``, ``?`` or ``[`` (the classic builder's test)."""
    i = 0
    while i < len(name):
        ch = name[i]
        if ch == "\\":
            i += 2
            continue
        if ch in "*?[":
            return True
        i += 1
    return False


def _scan_chunk(pattern: str) -> tuple[bool, str, str]:
    star = False
    while pattern.startswith("*"):
        pattern = pattern[1:]
        star = True
    in_range = False
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        if ch == "\\":
            if i + 1 < len(pattern):
                i += 1
        elif ch == "[":
            in_range = True
        elif ch == "]":
            in_range = False
        elif ch == "*" and not in_range:
            break
        i += 1
    return star, pattern[:i], pattern[i:]


def _get_escaped(chunk: str, whole: str) -> tuple[str, str]:
    if not chunk or chunk[0] in "-]":
        raise BadPattern(whole)
    if chunk[0] == "\\":
        chunk = chunk[1:]
        if not chunk:
            raise BadPattern(whole)
    ch, rest = chunk[0], chunk[1:]
    if not rest:
        raise BadPattern(whole)
    return ch, rest


def _match_chunk(chunk: str, name: str, whole: str) -> str | None:
    """Match ``chunk`` at the start of ``name``: the rest of ``name``, or None.

    After a mismatch the chunk is still read to the end, so a bad pattern is reported.
    """
    failed = False
    while chunk:
        if not failed and not name:
            failed = True
        head = chunk[0]
        if head == "[":
            current = ""
            if not failed:
                current, name = name[0], name[1:]
            chunk = chunk[1:]
            negated = chunk.startswith("^")
            if negated:
                chunk = chunk[1:]
            matched = False
            ranges = 0
            while True:
                if chunk.startswith("]") and ranges > 0:
                    chunk = chunk[1:]
                    break
                low, chunk = _get_escaped(chunk, whole)
                high = low
                if chunk[0] == "-":
                    high, chunk = _get_escaped(chunk[1:], whole)
                if not failed and low <= current <= high:
                    matched = True
                ranges += 1
            if matched == negated:
                failed = True
        elif head == "?":
            if not failed:
                if name[0] == "/":
                    failed = True
                name = name[1:]
            chunk = chunk[1:]
        else:
            if head == "\\":
                chunk = chunk[1:]
                if not chunk:
                    raise BadPattern(whole)
            if not failed:
                if chunk[0] != name[0]:
                    failed = True
                name = name[1:]
            chunk = chunk[1:]
    return None if failed else name


def match(pattern: str, name: str) -> bool:
    """Whether ``name`` matches ``pattern``; raises :class:`BadPattern` for a bad pattern."""
    whole = pattern
    while pattern:
        star, chunk, pattern = _scan_chunk(pattern)
        if star and not chunk:
            # A trailing * matches the rest unless it holds a separator.
            return "/" not in name
        rest = _match_chunk(chunk, name, whole)
        if rest is not None and (not rest or pattern):
            name = rest
            continue
        if star:
            i = 0
            advanced = False
            while i < len(name) and name[i] != "/":
                rest = _match_chunk(chunk, name[i + 1 :], whole)
                if rest is not None:
                    if not pattern and rest:
                        i += 1
                        continue  # the last chunk must consume the whole name
                    name = rest
                    advanced = True
                    break
                i += 1
            if advanced:
                continue
        # No match: still check that the rest of the pattern is well formed.
        while pattern:
            _, chunk, pattern = _scan_chunk(pattern)
            _match_chunk(chunk, "", whole)
        return False
    return not name


def validate(pattern: str) -> None:
    """Raise :class:`BadPattern` unless ``pattern`` is well formed."""
    match(pattern, ".")
