"""Saved plans on disk: the plan document plus where its stack came from.

``plan -o plan.json`` writes the plan document (``specs/plan-format.md``) with two more
top-level members: ``source`` (the stack file's absolute path, the active profiles and the
vars files, and, for a Compose file, its format, the other ``-f`` files, the project name and
the ``--env-file`` files), so ``apply plan.json`` can load the same stack to re-derive and
compare it, and ``observed`` (a digest per object seen), so a stale plan can say what moved.
``--var`` values are deliberately not saved (they may be secrets): give them again to apply;
a different value changes the desired state and the saved plan is refused.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.plan.model import Plan, PlanFormatError

__all__ = ["PlanSource", "is_saved_plan", "read_saved_plan", "saved_plan_text", "write_saved_plan"]


@dataclass(frozen=True)
class PlanSource:
    """The stack a saved plan was made from, and (saved with it) a digest per object of the
    world it was made against, to say what moved when it is stale."""

    file: Path
    profiles: tuple[str, ...] = ()
    vars_files: tuple[Path, ...] = ()
    input_format: str = "auto"  # stack, compose, or auto (detected again)
    compose_files: tuple[Path, ...] = ()
    project_name: str | None = None
    env_files: tuple[Path, ...] = ()
    observed: Mapping[str, Mapping[str, str]] | None = None  # None: not recorded


def saved_plan_text(plan: Plan, source: PlanSource) -> str:
    """The saved plan document: ``plan`` with its ``source`` and ``observed`` objects, as
    JSON text."""
    document: dict[str, Any] = plan.to_data()
    document["source"] = {
        "file": str(source.file.resolve()),
        "profiles": list(source.profiles),
        "vars_files": [str(p.resolve()) for p in source.vars_files],
    }
    if source.input_format != "auto":
        document["source"]["format"] = source.input_format
    if source.compose_files:
        document["source"]["compose_files"] = [str(p.resolve()) for p in source.compose_files]
    if source.project_name is not None:
        document["source"]["project_name"] = source.project_name
    if source.env_files:
        document["source"]["env_files"] = [str(p.resolve()) for p in source.env_files]
    if source.observed is not None:
        document["observed"] = {k: dict(v) for k, v in sorted(source.observed.items())}
    return json.dumps(document, indent=2, ensure_ascii=False) + "\n"


def write_saved_plan(plan: Plan, source: PlanSource, path: Path) -> None:
    """Write ``plan`` with its ``source`` to ``path`` atomically."""
    temporary = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    temporary.write_text(saved_plan_text(plan, source), "utf-8")
    os.replace(temporary, path)


def is_saved_plan(path: Path) -> bool:
    """True when ``path`` holds a plan document rather than a stack file."""
    if path.suffix.lower() != ".json" or not path.is_file():
        return False
    try:
        head = path.read_text(encoding="utf-8", errors="replace")[:4096]
    except OSError:
        return False
    return head.lstrip().startswith("{") and '"format_version"' in head


def read_saved_plan(path: Path) -> tuple[Plan, PlanSource]:
    """Read a saved plan and its source; PlanFormatError when it is not one."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise PlanFormatError(f"{path}: cannot read the saved plan: {exc}") from None
    plan = Plan.from_data(data)
    source = data.get("source") if isinstance(data, dict) else None
    if not isinstance(source, dict) or not isinstance(source.get("file"), str):
        raise PlanFormatError(
            f"{path}: the plan does not say which stack file it was made from "
            "(save plans with 'declarun plan FILE -o PLAN')"
        )
    observed = data.get("observed")
    return plan, PlanSource(
        file=Path(source["file"]),
        profiles=tuple(str(p) for p in source.get("profiles") or ()),
        vars_files=tuple(Path(str(p)) for p in source.get("vars_files") or ()),
        input_format=str(source.get("format") or "auto"),
        compose_files=tuple(Path(str(p)) for p in source.get("compose_files") or ()),
        project_name=None if source.get("project_name") is None else str(source["project_name"]),
        env_files=tuple(Path(str(p)) for p in source.get("env_files") or ()),
        observed=None
        if not isinstance(observed, dict)
        else {
            str(k): {str(a): str(b) for a, b in v.items()}
            for k, v in observed.items()
            if isinstance(v, dict)
        },
    )
