"""Labels given to a build (``docker build --label``), as dockerd's classic builder adds them.

dockerd appends one ``LABEL key=value`` instruction per label, sorted by key, to the end
of the target stage, without variable substitution; they show as steps of their own and
land in the history like any ``LABEL``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

from declarun.dockerfile.instructions import KeyValue, Label, Location
from declarun.dockerfile.parse import Dockerfile

__all__ = ["with_build_labels"]


def with_build_labels(
    dockerfile: Dockerfile, labels: Mapping[str, str], target: str | None = None
) -> Dockerfile:
    """``dockerfile`` with ``labels`` appended to the target stage (the last by default)."""
    if not labels or not dockerfile.stages:
        return dockerfile
    index = len(dockerfile.stages) - 1
    if target:
        named = [s.index for s in dockerfile.stages if s.name == target.lower()]
        if not named:
            return dockerfile  # plan_build reports the unknown target
        index = named[0]
    stage = dockerfile.stages[index]
    last = stage.instructions[-1].location if stage.instructions else stage.from_.location
    location = Location(last.file, last.end_line, last.end_line)
    added = tuple(
        Label(
            location=location,
            original=f"LABEL {key}={labels[key]}",
            pairs=(KeyValue(key, labels[key]),),
            expand=False,
        )
        for key in sorted(labels)
    )
    stages = list(dockerfile.stages)
    stages[index] = dataclasses.replace(stage, instructions=(*stage.instructions, *added))
    return dataclasses.replace(dockerfile, stages=tuple(stages))
