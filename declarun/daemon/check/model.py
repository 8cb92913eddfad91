"""What ``declarun daemon check`` finds: one :class:`Finding` per problem, and the report.

A finding names its area (``content``, ``images``, ``snapshots``, ``leases``, ``ingests``,
``containers``, ``runtime``, ``conmon``, ``mounts``, ``netns``, ``cni``, ``iptables``,
``volumes``, ``logs``), the object it is about and what is wrong, and says what
``--repair`` does about it (``repair``), or why nothing can be done (``advice``). The
repair itself is an action the check made with the finding; it is never serialised.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

__all__ = ["CheckReport", "Finding", "RepairAction", "Repaired"]

#: Repairs run on the daemon's event loop (or the CLI's, offline); blocking work inside
#: goes to a worker thread.
RepairAction = Callable[[], Awaitable[None]]


@dataclass(frozen=True)
class Finding:
    """One problem: ``area: subject: problem``, with what ``--repair`` would do."""

    area: str
    subject: str
    problem: str
    #: What ``--repair`` does (``None``: it cannot be repaired; see ``advice``).
    repair: str | None = None
    advice: str = ""
    action: RepairAction | None = field(default=None, compare=False, repr=False)

    def line(self) -> str:
        """The finding as one line of the command's output."""
        text = f"{self.area}: {self.subject}: {self.problem}"
        if self.repair is None and self.advice:
            text += f" ({self.advice})"
        return text

    def to_json(self) -> dict[str, Any]:
        """The finding as the check endpoint answers it."""
        return {
            "Area": self.area,
            "Subject": self.subject,
            "Problem": self.problem,
            "Repair": self.repair or "",
            "Advice": self.advice,
            "Line": self.line(),
        }


@dataclass(frozen=True)
class Repaired:
    """What ``--repair`` did about a finding (``error`` when the repair failed)."""

    finding: Finding
    error: str = ""

    def line(self) -> str:
        """``repaired: ...`` or ``repair failed: ...``."""
        if self.error:
            return f"repair failed: {self.finding.line()}: {self.error}"
        return f"repaired: {self.finding.line()}: {self.finding.repair}"

    def to_json(self) -> dict[str, Any]:
        """For the check endpoint's answer."""
        return {**self.finding.to_json(), "Error": self.error, "Line": self.line()}


@dataclass(frozen=True)
class CheckReport:
    """The result of a check: what was repaired, and the problems found (after repairs)."""

    problems: tuple[Finding, ...]
    repaired: tuple[Repaired, ...] = ()
    #: Facts worth knowing that are not problems (interrupted pulls kept to resume...).
    notes: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        """True when no problem is left."""
        return not self.problems

    def lines(self) -> list[str]:
        """The output of ``declarun daemon check``: repairs, then problems, one a line."""
        return [r.line() for r in self.repaired] + [f.line() for f in self.problems]

    def to_json(self) -> dict[str, Any]:
        """The check endpoint's answer (each entry carries its output ``Line``)."""
        return {
            "Problems": [f.to_json() for f in self.problems],
            "Repaired": [r.to_json() for r in self.repaired],
            "Notes": list(self.notes),
        }
