"""Variable substitution: BuildKit's lexer rules, table-driven plus properties."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from declarun.dockerfile.errors import SubstitutionError
from declarun.dockerfile.lexer import Lexer

ENV = {"A": "a", "EMPTY": "", "SPACED": "x y", "P": "/usr/local/bin", "X_1": "v"}
LEX = Lexer()


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("$A", "a"),
        ("${A}", "a"),
        ("pre${A}post", "preapost"),
        ("$X_1.txt", "v.txt"),
        ("$UNSET", ""),
        ("${UNSET:-d}", "d"),
        ("${EMPTY:-d}", "d"),
        ("${EMPTY-d}", ""),
        ("${UNSET-d}", "d"),
        ("${A:-d}", "a"),
        ("${A:+p}", "p"),
        ("${EMPTY:+p}", ""),
        ("${EMPTY+p}", "p"),
        ("${UNSET+p}", ""),
        ("${UNSET:-$A$A}", "aa"),
        ("${UNSET:-${A:+nested}}", "nested"),
        ("'$A'", "$A"),
        ('"$A"', "a"),
        ('"\\$A"', "$A"),
        ('"a\\"b"', 'a"b'),
        ('"\\x"', "\\x"),
        ("\\$A", "$A"),
        ("a\\ b", "a b"),
        ("'a'\"b\"c", "abc"),
        ("$", "$"),
        ("a$-b", "ab"),
        ("$12x", "x"),
        ("${P#*/}", "usr/local/bin"),
        ("${P##*/}", "bin"),
        ("${P%/*}", "/usr/local"),
        ("${P%%/*}", ""),
        ("${P/local/LOCAL}", "/usr/LOCAL/bin"),
        ("${P//l/L}", "/usr/LocaL/bin"),
        ("trailing\\", "trailing"),
    ],
)
def test_process_word(word: str, expected: str) -> None:
    assert LEX.process_word(word, ENV) == expected


@pytest.mark.parametrize(
    ("word", "words"),
    [
        ("$SPACED", ["x", "y"]),
        ('"$SPACED"', ["x y"]),
        ("80 $A", ["80", "a"]),
        ("a${UNSET:-b}", ["ab"]),
        ("'a b' c", ["a b", "c"]),
        ("  ", []),
    ],
)
def test_process_words_splits_after_expansion(word: str, words: list[str]) -> None:
    assert LEX.process_words(word, ENV) == words


def test_backtick_escape_directive() -> None:
    assert Lexer(escape="`").process_word("a`$b\\c", ENV) == "a$b\\c"


@pytest.mark.parametrize(
    ("word", "message"),
    [
        ("${A", "missing '}'"),
        ("${}", "bad substitution"),
        ("${A.b}", "unsupported modifier (.)"),
        ("'open", "matching single-quote"),
        ('"open', "matching double-quote"),
        ("${UNSET:?need it}", "UNSET: need it"),
        ("${UNSET?}", "UNSET: is not allowed to be unset"),
        ("${EMPTY:?}", "EMPTY: is not allowed to be empty"),
        ("${A:#x}", "unsupported modifier (:#)"),
    ],
)
def test_errors_name_the_word(word: str, message: str) -> None:
    with pytest.raises(SubstitutionError) as caught:
        LEX.process_word(word, ENV)
    assert message in str(caught.value)
    assert str(caught.value).startswith("failed to process ")


def test_skip_unset_and_raw_quotes_keep_text() -> None:
    lexer = Lexer(skip_unset_env=True, raw_quotes=True)
    assert lexer.process_word("'$A' $UNSET ${UNSET:-x} $A", ENV) == "'$A' $UNSET ${UNSET:-x} a"


def test_expand_reports_matched_and_unmatched() -> None:
    expansion = LEX.expand("$A ${B:-$EMPTY}", ENV)
    assert expansion.matched == {"A", "EMPTY"}
    assert expansion.unmatched == {"B"}


_plain = st.text(alphabet=st.characters(blacklist_characters="$'\"\\<"), max_size=30)


@given(_plain)
def test_text_without_special_characters_is_unchanged(text: str) -> None:
    assert LEX.process_word(text, ENV) == text
    assert LEX.process_words(text, ENV) == text.split()


@given(st.text(max_size=30))
def test_single_quoted_text_is_literal(text: str) -> None:
    if "'" in text:
        return
    assert LEX.process_word(f"'{text}'", ENV) == text


@given(st.text(alphabet="ab$'\"\\{}:-+?#%/ ", max_size=20))
def test_never_fails_other_than_substitution_error(text: str) -> None:
    try:
        LEX.process_word(text, ENV)
        LEX.process_words(text, ENV)
    except SubstitutionError:
        pass


@given(st.text(alphabet=st.characters(whitelist_categories=("Ll", "Nd")), min_size=1))
def test_default_applies_exactly_when_unset_or_empty(value: str) -> None:
    for env, expected in (({}, "d"), ({"V": ""}, "d"), ({"V": value}, value)):
        assert LEX.process_word("${V:-d}", env) == expected
