"""Reading here-document markers (``<<EOF``, ``<<-EOF``, ``<<'EOF'``, ``3<<EOF``) as BuildKit does.

The PyPI parser returns each heredoc's name and body but not how its marker was written.
That decides two things: ``<<-`` strips leading tabs from the body (``chomp``), and a marker
with any quoting (``<<'EOF'``, ``<<"EOF"``, ``<<E"O"F``) turns off variable expansion of the
body (``expand``). BuildKit finds the markers by splitting the instruction line into words
(quotes and escapes kept) and matching ``^(\\d*)<<(-?)\\s*([^<]*)$`` on each; so does this.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from declarun.dockerfile.errors import SubstitutionError
from declarun.dockerfile.lexer import Lexer

__all__ = ["HeredocMarker", "heredoc_marker", "heredoc_markers"]

_MARKER = re.compile(r"^(\d*)<<(-?)\s*([^<]*)$", re.DOTALL)
_LINE_LEXER = Lexer(raw_quotes=True, raw_escapes=True, skip_unset_env=True)
_WORD_LEXER = Lexer(skip_unset_env=True)
_RAW_WORD_LEXER = Lexer(raw_quotes=True, skip_unset_env=True)


@dataclass(frozen=True)
class HeredocMarker:
    """A marker: the terminator ``name``, ``fd`` (``3<<``), ``chomp`` (``<<-``), ``expand``."""

    name: str
    fd: int
    chomp: bool
    expand: bool


def heredoc_marker(word: str) -> HeredocMarker | None:
    """The marker ``word`` is, or None when it is not one."""
    found = _MARKER.match(word)
    if found is None or not found.group(3):
        return None
    rest = found.group(3)
    try:
        words = _WORD_LEXER.process_words(rest, {})
        raw_words = _RAW_WORD_LEXER.process_words(rest, {})
    except SubstitutionError:
        return None
    if len(words) != 1 or len(raw_words) != 1:
        return None
    quotes = words[0].count("'") + words[0].count('"')
    raw_quotes = raw_words[0].count("'") + raw_words[0].count('"')
    return HeredocMarker(
        name=words[0],
        fd=int(found.group(1) or "0"),
        chomp=found.group(2) == "-",
        expand=quotes == raw_quotes,
    )


def heredoc_markers(line: str) -> list[HeredocMarker]:
    """Every marker in an instruction line, in order."""
    try:
        words = _LINE_LEXER.process_words(line, {})
    except SubstitutionError:
        return []
    return [marker for word in words if (marker := heredoc_marker(word)) is not None]
