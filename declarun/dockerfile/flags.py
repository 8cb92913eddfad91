"""Instruction flags (``--from=x``, ``--link``) read with BuildKit's ``BFlags`` rules.

Each instruction declares the flags it knows; anything else is ``unknown flag: --x`` (with a
suggestion when one is close). String flags need ``=value``; boolean flags take nothing,
``=true`` or ``=false``; list flags (``--mount``, ``--exclude``) may repeat, others may not.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Literal

from declarun.errdefs import InvalidArgument

__all__ = ["FlagError", "FlagKind", "Flags", "parse_flags"]

FlagKind = Literal["bool", "string", "strings"]


class FlagError(InvalidArgument):
    """A flag the instruction does not know, or used wrongly."""


@dataclass(frozen=True)
class Flags:
    """The flags given: ``strings`` holds every value, in order, by flag name."""

    values: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def string(self, name: str) -> str | None:
        """The value of a string flag, or None when not given."""
        given = self.values.get(name)
        return given[-1] if given else None

    def boolean(self, name: str) -> bool | None:
        """A boolean flag's value, or None when not given."""
        given = self.values.get(name)
        return None if not given else given[-1] == "true"

    def strings(self, name: str) -> tuple[str, ...]:
        """Every value of a repeatable flag."""
        return self.values.get(name, ())


def parse_flags(args: Iterable[str], known: Mapping[str, FlagKind]) -> Flags:
    """Read ``args`` (``--name=value`` words) against the ``known`` flags."""
    values: dict[str, list[str]] = {}
    for arg in args:
        if arg == "--":
            break
        if not arg.startswith("--"):
            raise FlagError(f"arg should start with -- : {arg}")
        flag_name, has_value, value = arg.partition("=")
        name = flag_name[2:]
        kind = known.get(name)
        if kind is None:
            message = f"unknown flag: {flag_name}"
            close = difflib.get_close_matches(name, list(known), n=1)
            if close:
                message += f" (did you mean {close[0]}?)"
            raise FlagError(message)
        if name in values and kind != "strings":
            raise FlagError(f"duplicate flag specified: {flag_name}")
        if kind == "bool":
            if has_value and value == "":
                raise FlagError(f"missing a value on flag: {flag_name}")
            lowered = value.lower()
            if lowered not in ("true", "false", ""):
                raise FlagError(f"expecting boolean value for flag {flag_name}, not: {value}")
            values[name] = ["false" if lowered == "false" else "true"]
        else:
            if not has_value:
                raise FlagError(f"missing a value on flag: {flag_name}")
            values.setdefault(name, []).append(value)
    return Flags({k: tuple(v) for k, v in values.items()})
