"""Compose's env file syntax: the ``.env`` file beside a project, ``--env-file`` files and a
service's ``env_file:`` entries.

As the Compose Specification describes it: ``[export ]KEY[=[VALUE]]`` lines; ``#`` comment
lines and blank lines skipped; a value may be unquoted (an inline comment must follow a space:
``a # b`` is ``a``, ``a#b`` is ``a#b``), single-quoted (literal; ``\\'`` is a quote) or
double-quoted (``\\n``, ``\\r``, ``\\t``, ``\\\\``, ``\\"`` and ``\\$`` escapes); quoted values may
span lines; unquoted and double-quoted values are interpolated (``${VAR}``), the environment
first, then the file's earlier keys. ``KEY`` alone takes ``KEY`` from the environment when it
is set there and is left out otherwise. The ``raw`` format keeps every value as written.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from declarun.compose.interpolate import InterpolationError, substitute

__all__ = ["DotenvEntry", "DotenvResult", "parse_dotenv"]

_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-\[\]]*")
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "\\": "\\", '"': '"', "$": "\\$", "'": "'"}


@dataclass(frozen=True)
class DotenvEntry:
    """One variable of an env file: its value and the line it was written on."""

    value: str
    line: int


@dataclass
class DotenvResult:
    """The variables of one env file, in order, and the problems found, by line."""

    values: dict[str, DotenvEntry] = field(default_factory=dict)
    errors: list[tuple[int, str]] = field(default_factory=list)
    missing: list[tuple[int, str]] = field(default_factory=list)  # unset ${VAR}s, by line


def _quoted(text: str, start: int, quote: str) -> tuple[str, int] | None:
    """The quoted value starting after ``text[start]`` and the index after its closing quote."""
    out: list[str] = []
    index = start + 1
    while index < len(text):
        char = text[index]
        if char == "\\" and index + 1 < len(text):
            following = text[index + 1]
            if quote == '"' and following in _ESCAPES:
                out.append(_ESCAPES[following])
                index += 2
                continue
            if quote == "'" and following == "'":
                out.append("'")
                index += 2
                continue
        if char == quote:
            return "".join(out), index + 1
        out.append(char)
        index += 1
    return None


def parse_dotenv(
    text: str,
    lookup: Callable[[str], str | None],
    *,
    raw: bool = False,
) -> DotenvResult:
    """Parse env file ``text``; ``lookup`` reads the environment for ``${VAR}`` and bare keys.

    With ``raw`` (``format: raw``) values are kept exactly as written after the ``=``.
    """
    result = DotenvResult()
    lines = text.splitlines()
    number = 0
    while number < len(lines):
        line_no = number + 1
        line = lines[number].strip()
        number += 1
        if not line or line.startswith("#"):
            continue
        if line.startswith(("export ", "export\t")):
            line = line[len("export") :].lstrip()
        key_part, sep, rest = line.partition("=")
        key = key_part.strip()
        if not _KEY.fullmatch(key):
            result.errors.append(
                (line_no, f"expected KEY=VALUE, got {lines[line_no - 1].strip()!r}")
            )
            continue
        if not sep:
            found = lookup(key)
            if found is not None:
                result.values[key] = DotenvEntry(found, line_no)
            continue
        if raw:
            result.values[key] = DotenvEntry(rest, line_no)
            continue
        value_text = rest.lstrip()
        interpolate = True
        if value_text[:1] in ("'", '"'):
            quote = value_text[0]
            # A quoted value may go on over the next lines until its closing quote.
            joined, extra = value_text, 0
            parsed = _quoted(joined, 0, quote)
            while parsed is None and number + extra < len(lines):
                joined += "\n" + lines[number + extra]
                extra += 1
                parsed = _quoted(joined, 0, quote)
            if parsed is None:
                result.errors.append((line_no, f"the value of {key} has no closing {quote}"))
                continue
            number += extra
            value, end = parsed
            trailing = joined[end:].strip()
            if trailing and not trailing.startswith("#"):
                result.errors.append(
                    (line_no, f"unexpected text after the quoted value of {key}: {trailing!r}")
                )
                continue
            interpolate = quote == '"'
        else:
            value = value_text
            comment = re.search(r"\s#", value)
            if comment is not None:
                value = value[: comment.start()]
            value = value.strip()
        if interpolate and "$" in value:
            earlier = {k: v.value for k, v in result.values.items()}

            def find(name: str, earlier: Mapping[str, str] = earlier) -> str | None:
                found = lookup(name)
                return found if found is not None else earlier.get(name)

            try:
                substituted = substitute(value.replace("\\$", "$$"), find)
            except InterpolationError as exc:
                result.errors.append((line_no, f"{key}: {exc}"))
                continue
            result.missing.extend((line_no, name) for name in substituted.missing)
            value = substituted.text
        else:
            value = value.replace("\\$", "$")
        result.values[key] = DotenvEntry(value, line_no)
    return result
