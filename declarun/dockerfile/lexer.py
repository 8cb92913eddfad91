"""Variable substitution and word splitting as Docker's shell lexer does them.

The rules are BuildKit's ``frontend/dockerfile/shell`` lexer (also what dockerd's classic
builder uses), re-implemented here:

* ``$name`` and ``${name}``; a name is letters, digits and ``_``; ``$`` followed by a digit
  takes all the digits (``$12``), followed by one of ``@ * # ? - $ ! 0`` takes that one
  character (all unset, so empty); a ``$`` followed by anything else stays ``$``.
* ``${x:-word}`` word when x is unset *or empty*; ``${x-word}`` only when unset.
  ``${x:+word}`` word when x is set and not empty, else empty; ``${x+word}`` when set.
  ``${x:?msg}`` / ``${x?msg}`` fail with ``x: msg`` (or ``is not allowed to be unset/empty``).
  ``${x#pat}`` ``${x##pat}`` ``${x%pat}`` ``${x%%pat}`` trim the shortest/longest matching
  prefix/suffix, ``${x/pat/repl}`` and ``${x//pat/repl}`` replace (``*`` and ``?`` wildcards,
  ``\\`` escapes them, no bracket expressions). ``word`` is itself expanded.
* Single quotes keep everything literally; double quotes keep everything but ``$``
  expansions, and the escape character escapes only ``"``, ``$`` and itself inside them.
  Outside quotes the escape character (``\\`` or the ``# escape=`` directive's `` ` ``)
  makes the next character literal. Quotes are removed unless ``raw_quotes``.
* :meth:`Lexer.process_words` splits the result into words on unquoted white space
  (white space that came from a variable's value splits too) — only ``EXPOSE`` uses it.

One deliberate difference from BuildKit's current Go code: there a nested ``${x:-...}``
inside a word resets the words buffer shared with the outer word, so ``EXPOSE a${x:-b}``
yields ``["b"]``; here, as in the classic builder, it yields ``["ab"]``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from declarun.dockerfile.errors import SubstitutionError
from declarun.dockerfile.gofmt import go_quote

__all__ = ["Expansion", "Lexer"]

_SPECIAL_PARAMS = frozenset("@*#?-$!0")
_HEREDOC_SPACE = frozenset("\t\r ")


@dataclass(frozen=True)
class Expansion:
    """The result of one expansion: the text, its words, and the variable names used.

    ``matched`` are the names that were set, ``unmatched`` those referenced but unset.
    """

    result: str
    words: tuple[str, ...]
    matched: frozenset[str]
    unmatched: frozenset[str]


class _Words:
    """Accumulates the words of a result: white space ends a word unless it was quoted."""

    def __init__(self) -> None:
        self.buffer: list[str] = []
        self.words: list[str] = []
        self.in_word = False

    def add_char(self, ch: str) -> None:
        if ch.isspace():
            if self.in_word and self.buffer:
                self.words.append("".join(self.buffer))
                self.buffer = []
                self.in_word = False
        else:
            self.add_raw_char(ch)

    def add_raw_char(self, ch: str) -> None:
        self.buffer.append(ch)
        self.in_word = True

    def add_string(self, text: str) -> None:
        for ch in text:
            self.add_char(ch)

    def add_raw_string(self, text: str) -> None:
        self.buffer.append(text)
        self.in_word = True

    def finish(self) -> list[str]:
        if self.buffer:
            self.words.append("".join(self.buffer))
            self.buffer = []
            self.in_word = False
        return self.words


@dataclass
class _State:
    text: str
    env: Mapping[str, str]
    lexer: Lexer
    raw_escapes: bool
    pos: int = 0
    matched: set[str] = field(default_factory=set)
    unmatched: set[str] = field(default_factory=set)

    def peek(self) -> str | None:
        return self.text[self.pos] if self.pos < len(self.text) else None

    def next(self) -> str | None:
        if self.pos >= len(self.text):
            return None
        ch = self.text[self.pos]
        self.pos += 1
        return ch

    def lookup(self, name: str) -> tuple[str, bool]:
        if name in self.env:
            self.matched.add(name)
            return self.env[name], True
        self.unmatched.add(name)
        return "", False


@dataclass(frozen=True)
class Lexer:
    """A configured lexer; ``escape`` is the Dockerfile's escape character.

    ``raw_quotes`` keeps quote characters in the result; ``raw_escapes`` keeps escape
    characters; ``skip_process_quotes`` treats quotes as ordinary characters (heredoc bodies);
    ``skip_unset_env`` leaves references to unset variables as written.
    """

    escape: str = "\\"
    raw_quotes: bool = False
    raw_escapes: bool = False
    skip_process_quotes: bool = False
    skip_unset_env: bool = False

    def process_word(self, word: str, env: Mapping[str, str]) -> str:
        """``word`` with its variables expanded and quotes removed (white space kept)."""
        return self.expand(word, env).result

    def process_words(self, word: str, env: Mapping[str, str]) -> list[str]:
        """``word`` expanded, then split into words on unquoted white space."""
        return list(self.expand(word, env).words)

    def expand(self, word: str, env: Mapping[str, str]) -> Expansion:
        """Expand ``word``; raises :class:`SubstitutionError` naming ``word`` on bad syntax."""
        state = _State(word, env, self, self.raw_escapes)
        try:
            result, words = _process_until(state, None, self.raw_escapes)
        except SubstitutionError as exc:
            raise SubstitutionError(f"failed to process {go_quote(word)}: {exc}") from None
        return Expansion(result, tuple(words), frozenset(state.matched), frozenset(state.unmatched))


def _process_until(state: _State, stop: str | None, raw_escapes: bool) -> tuple[str, list[str]]:
    """Process characters until ``stop`` (consumed) or the end; returns text and words."""
    saved_raw = state.raw_escapes
    state.raw_escapes = raw_escapes
    try:
        return _scan(state, stop)
    finally:
        state.raw_escapes = saved_raw


def _scan(state: _State, stop: str | None) -> tuple[str, list[str]]:
    lexer = state.lexer
    result: list[str] = []
    words = _Words()
    while (ch := state.peek()) is not None:
        if stop is not None and ch == stop:
            state.next()
            return "".join(result), words.finish()
        special = ch == "$" or ch == "<"
        if not lexer.skip_process_quotes and ch in ("'", '"'):
            special = True
        if special:
            if ch == "$":
                text = _dollar(state)
                result.append(text)
                words.add_string(text)  # white space in a value splits words
                continue
            if ch == "<":
                text = _possible_heredoc(state)
            elif ch == "'":
                text = _single_quote(state)
            else:
                text = _double_quote(state)
            result.append(text)
            words.add_raw_string(text)
            continue
        state.next()
        if ch == lexer.escape:
            if state.raw_escapes:
                words.add_raw_char(ch)
                result.append(ch)
            escaped = state.next()
            if escaped is None:
                break
            words.add_raw_char(escaped)
            result.append(escaped)
        else:
            words.add_char(ch)
            result.append(ch)
    if stop is not None:
        raise SubstitutionError(f"unexpected end of statement while looking for matching {stop}")
    return "".join(result), words.finish()


def _single_quote(state: _State) -> str:
    raw = state.lexer.raw_quotes
    out: list[str] = ["'"] if raw else []
    state.next()
    while True:
        ch = state.next()
        if ch is None:
            raise SubstitutionError(
                "unexpected end of statement while looking for matching single-quote"
            )
        if ch == "'":
            if raw:
                out.append(ch)
            return "".join(out)
        out.append(ch)


def _double_quote(state: _State) -> str:
    raw = state.lexer.raw_quotes
    escape = state.lexer.escape
    out: list[str] = ['"'] if raw else []
    state.next()
    while True:
        ch = state.peek()
        if ch is None:
            raise SubstitutionError(
                "unexpected end of statement while looking for matching double-quote"
            )
        if ch == '"':
            state.next()
            if raw:
                out.append(ch)
            return "".join(out)
        if ch == "$":
            out.append(_dollar(state))
            continue
        state.next()
        if ch == escape:
            if state.raw_escapes:
                out.append(ch)
            following = state.peek()
            if following is None:
                continue  # an escape at the very end is dropped
            if following in ('"', "$", escape):
                ch = state.next() or ""
        out.append(ch)


def _possible_heredoc(state: _State) -> str:
    state.next()
    if state.peek() != "<":
        return "<"
    state.next()
    spaces: list[str] = []
    while (ch := state.peek()) is not None and ch in _HEREDOC_SPACE:
        spaces.append(ch)
        state.next()
    return "<<" + "".join(spaces)


def _name(state: _State) -> str:
    name: list[str] = []
    while (ch := state.peek()) is not None:
        if not name and ch.isdigit():
            while (digit := state.peek()) is not None and digit.isdigit():
                name.append(digit)
                state.next()
            return "".join(name)
        if not name and ch in _SPECIAL_PARAMS:
            state.next()
            return ch
        if not (ch.isalpha() or ch.isdigit() or ch == "_"):
            break
        name.append(ch)
        state.next()
    return "".join(name)


def _dollar(state: _State) -> str:
    skip_unset = state.lexer.skip_unset_env
    state.next()
    if state.peek() != "{":
        name = _name(state)
        if not name:
            return "$"
        value, found = state.lookup(name)
        if not found and skip_unset:
            return "$" + name
        return value
    state.next()
    first = state.peek()
    if first is None:
        raise SubstitutionError("syntax error: missing '}'")
    if first in "{}:":
        raise SubstitutionError("syntax error: bad substitution")
    name = _name(state)
    ch = state.next()
    if ch is None:
        raise SubstitutionError("syntax error: missing '}'")
    if ch == "}":
        value, found = state.lookup(name)
        if not found and skip_unset:
            return "${" + name + "}"
        return value
    if ch == "/":
        return _replace(state, name)
    modifier = ch or ""
    null_is_unset = False
    if ch == ":":
        null_is_unset = True
        ch = state.next()
        modifier += ch or ""
    if ch is None or ch not in "+-?#%":
        raise SubstitutionError(f"unsupported modifier ({modifier}) in substitution")
    pattern_mode = ch in "#%"
    if null_is_unset and pattern_mode:
        raise SubstitutionError(f"unsupported modifier ({modifier}) in substitution")
    word = _nested_word(state, "}", pattern_mode)
    value, is_set = state.lookup(name)
    if skip_unset and not is_set:
        return "${" + name + modifier + word + "}"
    empty = not is_set or (null_is_unset and value == "")
    if ch == "-":
        return word if empty else value
    if ch == "+":
        return "" if empty else word
    if ch == "?":
        if not is_set:
            raise SubstitutionError(f"{name}: {word or 'is not allowed to be unset'}")
        if null_is_unset and value == "":
            raise SubstitutionError(f"{name}: {word or 'is not allowed to be empty'}")
        return value
    greedy = word.startswith(ch)
    if greedy:
        word = word[1:]
    if ch == "%":
        return _trim_suffix(word, value, greedy)
    return _trim_prefix(word, value, greedy)


def _nested_word(state: _State, stop: str, raw_escapes: bool) -> str:
    try:
        word, _ = _process_until(state, stop, raw_escapes)
    except SubstitutionError:
        if state.peek() is None:
            raise SubstitutionError(
                "syntax error: missing '}'" if stop == "}" else "syntax error: missing '/' in ${}"
            ) from None
        raise
    return word


def _replace(state: _State, name: str) -> str:
    replace_all = state.peek() == "/"
    if replace_all:
        state.next()
    pattern = _nested_word(state, "/", True)
    replacement = _nested_word(state, "}", True)
    value, is_set = state.lookup(name)
    if state.lexer.skip_unset_env and not is_set:
        return "${" + name + "/" + pattern + "/" + replacement + "}"
    regex = _shell_pattern(pattern, greedy=True, anchored=False)
    if replace_all:
        return regex.sub(lambda _m: replacement, value)
    found = regex.search(value)
    if found is None:
        return value
    return value[: found.start()] + replacement + value[found.end() :]


def _shell_pattern(pattern: str, *, greedy: bool, anchored: bool) -> re.Pattern[str]:
    """A shell wildcard pattern (``*``, ``?``, ``\\`` escapes) as a regular expression."""
    out: list[str] = ["^"] if anchored else []
    star = ".*" if greedy else ".*?"
    i = 0
    while i < len(pattern):
        ch = pattern[i]
        i += 1
        if ch == "*":
            out.append(star)
        elif ch == "?":
            out.append(".")
        elif ch == "\\":
            following = pattern[i] if i < len(pattern) else ""
            if following in ("}", "/"):
                continue  # escaped to get past ${...}; not part of the pattern
            i += 1
            if following not in ("*", "?", "\\"):
                raise SubstitutionError(
                    f"invalid pattern ({pattern}) in substitution: invalid escape '\\{following}'"
                )
            out.append(re.escape(following))
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out), re.DOTALL)


def _trim_prefix(pattern: str, value: str, greedy: bool) -> str:
    found = _shell_pattern(pattern, greedy=greedy, anchored=True).search(value)
    return value[found.end() :] if found else value


def _reverse_pattern(pattern: str) -> str:
    # Reverse, keeping each escape before the character it escapes: a\*c -> c\*a.
    tokens: list[str] = []
    i = 0
    while i < len(pattern):
        if pattern[i] == "\\" and i + 1 < len(pattern):
            tokens.append(pattern[i : i + 2])
            i += 2
        else:
            tokens.append(pattern[i])
            i += 1
    return "".join(reversed(tokens))


def _trim_suffix(pattern: str, value: str, greedy: bool) -> str:
    # The shortest rightmost match is the shortest leftmost match of the reversed strings.
    return _trim_prefix(_reverse_pattern(pattern), value[::-1], greedy)[::-1]
