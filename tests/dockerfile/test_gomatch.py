"""Go's filepath.Match, against the cases of Go's own test table."""

from __future__ import annotations

import fnmatch

import pytest
from hypothesis import given
from hypothesis import strategies as st

from declarun.dockerfile.gomatch import BadPattern, has_wildcards, match, validate

# From Go's path/filepath match_test.go (the Linux rows).
GO_CASES = [
    ("abc", "abc", True),
    ("*", "abc", True),
    ("*c", "abc", True),
    ("a*", "a", True),
    ("a*", "abc", True),
    ("a*", "ab/c", False),
    ("a*/b", "abc/b", True),
    ("a*/b", "a/c/b", False),
    ("a*b*c*d*e*/f", "axbxcxdxe/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/f", True),
    ("a*b*c*d*e*/f", "axbxcxdxe/xxx/f", False),
    ("a*b*c*d*e*/f", "axbxcxdxexxx/fff", False),
    ("a*b?c*x", "abxbbxdbxebxczzx", True),
    ("a*b?c*x", "abxbbxdbxebxczzy", False),
    ("ab[c]", "abc", True),
    ("ab[b-d]", "abc", True),
    ("ab[e-g]", "abc", False),
    ("ab[^c]", "abc", False),
    ("ab[^b-d]", "abc", False),
    ("ab[^e-g]", "abc", True),
    ("a\\*b", "a*b", True),
    ("a\\*b", "ab", False),
    ("a?b", "a☺b", True),
    ("a[^a]b", "a☺b", True),
    ("a???b", "a☺b", False),
    ("a[^a][^a][^a]b", "a☺b", False),
    ("[a-ζ]*", "α", True),
    ("*[a-ζ]", "A", False),
    ("a?b", "a/b", False),
    ("a*b", "a/b", False),
    ("[\\]a]", "]", True),
    ("[\\-]", "-", True),
    ("[x\\-]", "x", True),
    ("[x\\-]", "-", True),
    ("[x\\-]", "z", False),
    ("[\\-x]", "x", True),
    ("[\\-x]", "-", True),
    ("[\\-x]", "a", False),
    ("*x", "xxx", True),
]
GO_BAD = [
    "[]a]",
    "[-]",
    "[x-]",
    "[-x]",
    "\\",
    "[a-b-c]",
    "[",
    "[^",
    "[^bc",
    "a[",
    "a\\",
    "*[",
    "[]",
]


@pytest.mark.parametrize(("pattern", "name", "expected"), GO_CASES)
def test_go_table(pattern: str, name: str, expected: bool) -> None:
    assert match(pattern, name) is expected


@pytest.mark.parametrize("pattern", GO_BAD)
def test_bad_patterns_are_errors(pattern: str) -> None:
    with pytest.raises(BadPattern):
        validate(pattern)


def test_has_wildcards_ignores_escaped() -> None:
    assert has_wildcards("a*")
    assert has_wildcards("[ab]")
    assert not has_wildcards("a\\*b")
    assert not has_wildcards("plain.txt")


_names = st.text(alphabet="ab.c", max_size=8)


@given(_names, st.text(alphabet="ab.c*?", max_size=6))
def test_agrees_with_fnmatch_without_separators(name: str, pattern: str) -> None:
    # Without '/', '[' or '\\', Go's Match and fnmatchcase agree.
    assert match(pattern, name) == fnmatch.fnmatchcase(name, pattern)
