"""Parser directives: ``# syntax=...``, ``# escape=...``, ``# check=...`` at the top of a file.

The PyPI parser applies the escape directive but does not report directives, so they are
read here with BuildKit's rules: only leading ``#`` lines of the form ``# key=value`` with a
known key are directives; the first line that is not one ends them (an unknown key, a plain
comment, a blank line or an instruction). A directive may appear once. ``escape`` must be
`` \\ `` or `` ` ``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from declarun.dockerfile.errors import DockerfileError

__all__ = ["Directives", "read_directives"]

_DIRECTIVE = re.compile(r"^([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_KNOWN = ("syntax", "escape", "check")


@dataclass(frozen=True)
class Directives:
    """The directives found: ``escape`` is the escape character (default ``\\``)."""

    escape: str = "\\"
    syntax: str | None = None
    check: str | None = None


def read_directives(text: str, *, file: str = "Dockerfile") -> Directives:
    """The parser directives at the start of ``text``."""
    found: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), start=1):
        if number == 1:
            line = line.removeprefix("\ufeff")
        if not line.startswith("#"):
            break
        matched = _DIRECTIVE.match(line[1:].lstrip())
        if matched is None:
            break
        key = matched.group(1).lower()
        if key not in _KNOWN:
            break
        if key in found:
            raise DockerfileError(
                f"only one {key} parser directive can be used", file=file, line=number
            )
        found[key] = matched.group(2)
        if key == "escape" and found[key] not in ("\\", "`"):
            raise DockerfileError(
                f"invalid escape token '{found[key]}' does not match ` or \\",
                file=file,
                line=number,
            )
    return Directives(
        escape=found.get("escape", "\\"), syntax=found.get("syntax"), check=found.get("check")
    )
