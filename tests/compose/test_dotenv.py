"""Compose's env file syntax."""

from __future__ import annotations

from declarun.compose.dotenv import parse_dotenv

TEXT = """\
# a comment
export EXPORTED=yes
PLAIN=value
SPACED = padded value\t \t
INLINE=value # a comment
HASH=value#kept
EMPTY=
SINGLE='literal $HOME \\'quoted\\''
DOUBLE="tab\\there \\"q\\" \\$HOME $HOME"
MULTI="first
second"
AFTER=${PLAIN}-${UNSET:-d}
BARE
GONE
not a line
"""


def test_the_syntax_the_specification_describes() -> None:
    result = parse_dotenv(TEXT, {"HOME": "/root", "BARE": "from env"}.get)
    assert {k: v.value for k, v in result.values.items()} == {
        "EXPORTED": "yes",
        "PLAIN": "value",
        "SPACED": "padded value",
        "INLINE": "value",
        "HASH": "value#kept",
        "EMPTY": "",
        "SINGLE": "literal $HOME 'quoted'",
        "DOUBLE": 'tab\there "q" $HOME /root',
        "MULTI": "first\nsecond",
        "AFTER": "value-d",
        "BARE": "from env",
    }
    assert result.values["AFTER"].line == 12
    assert result.errors == [(15, "expected KEY=VALUE, got 'not a line'")]


def test_raw_format_and_broken_quotes() -> None:
    raw = parse_dotenv("A='$X' # c\n", {}.get, raw=True)
    assert raw.values["A"].value == "'$X' # c"
    broken = parse_dotenv('A="open\nB=1\n', {}.get)
    assert broken.errors == [(1, 'the value of A has no closing "')]
    assert parse_dotenv("A=${B:?needed}\n", {}.get).errors == [
        (1, "A: required variable B is missing a value: needed")
    ]
