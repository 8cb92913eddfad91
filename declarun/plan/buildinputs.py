"""What a build is made from, as values: the inputs of one build, and the context files changed.

A built image is rebuilt when what it would be built from now (its :class:`BuildInputs`)
differs from what it *was* built from (the record kept when it was built). The observer
(``declarun.observe.builds``) reads both, and :mod:`declarun.plan.builds` compares them.

Build args whose names look secret are masked as environment values are
(:func:`~declarun.plan.identity.mask_secret`), so neither a record nor a plan holds them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from declarun.frozen import FrozenDict
from declarun.plan.identity import config_hash, is_secret_key, mask_secret
from declarun.stack.model import Build

__all__ = [
    "MAX_LISTED_FILES",
    "MAX_NAMED_FILES",
    "BuildInputs",
    "FileChanges",
    "build_inputs",
]

#: How many changed files a reason names before it counts the rest.
MAX_NAMED_FILES = 5
#: How many changed paths of each kind the observed state keeps (the count is always exact).
MAX_LISTED_FILES = 20

_EMPTY: FrozenDict[str, str] = FrozenDict()


@dataclass(frozen=True, slots=True, kw_only=True)
class BuildInputs:
    """Everything one build of an image is made from; equal inputs build the same image.

    ``context`` is the context's root digest, ``dockerfile`` the sha256 of the Dockerfile's
    bytes, ``bases`` the identity of each base image the Dockerfile pulls (its local image
    id, or the lock's pinned digest), for the bases known.
    """

    context: str
    dockerfile: str
    args: FrozenDict[str, str] = _EMPTY
    target: str | None = None
    labels: FrozenDict[str, str] = _EMPTY
    platform: str | None = None
    bases: FrozenDict[str, str] = _EMPTY

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-able data (what a build record and the observed state hold)."""
        return {
            "context": self.context,
            "dockerfile": self.dockerfile,
            "args": dict(self.args),
            "target": self.target,
            "labels": dict(self.labels),
            "platform": self.platform,
            "bases": dict(self.bases),
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> BuildInputs:
        """Read :meth:`to_data`'s form back; raises KeyError/TypeError/ValueError when it is
        not one."""

        def texts(key: str) -> FrozenDict[str, str]:
            raw = data.get(key) or {}
            if not isinstance(raw, Mapping):
                raise TypeError(key)
            return FrozenDict(sorted((str(k), str(v)) for k, v in raw.items()))

        target, platform = data.get("target"), data.get("platform")
        return cls(
            context=str(data["context"]),
            dockerfile=str(data["dockerfile"]),
            args=texts("args"),
            target=None if target is None else str(target),
            labels=texts("labels"),
            platform=None if platform is None else str(platform),
            bases=texts("bases"),
        )

    def digest(self) -> str:
        """``sha256:<hex>`` of the canonical form: equal inputs, equal digests."""
        return config_hash(self.to_data())


def build_inputs(
    build: Build,
    *,
    platform: str | None,
    context: str,
    dockerfile: str,
    bases: Mapping[str, str],
) -> BuildInputs:
    """The inputs of ``build`` given the digests the observer read (secret args masked)."""
    args = {
        key: mask_secret(key, value) if is_secret_key(key) else value
        for key, value in build.args.items()
    }
    return BuildInputs(
        context=context,
        dockerfile=dockerfile,
        args=FrozenDict(sorted(args.items())),
        target=build.target,
        labels=FrozenDict(sorted(build.labels.items())),
        platform=platform,
        bases=FrozenDict(sorted(bases.items())),
    )


@dataclass(frozen=True, slots=True, kw_only=True)
class FileChanges:
    """Context files changed since the recorded build (the Dockerfile left out: it has its
    own reason). Each tuple holds at most :data:`MAX_LISTED_FILES` paths; ``count`` is
    exact."""

    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    modified: tuple[str, ...] = ()
    count: int = 0

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-able data."""
        return {
            "added": list(self.added),
            "removed": list(self.removed),
            "modified": list(self.modified),
            "count": self.count,
        }

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> FileChanges:
        """Read :meth:`to_data`'s form back."""
        return cls(
            added=tuple(str(p) for p in data.get("added", ())),
            removed=tuple(str(p) for p in data.get("removed", ())),
            modified=tuple(str(p) for p in data.get("modified", ())),
            count=int(data.get("count", 0)),
        )

    def named(self, limit: int = MAX_NAMED_FILES) -> str:
        """``src/app.py (modified), new.txt (added) and 12 more files``: modified files first."""
        listed = [
            *(f"{p} (modified)" for p in self.modified),
            *(f"{p} (added)" for p in self.added),
            *(f"{p} (removed)" for p in self.removed),
        ]
        shown = listed[:limit]
        rest = self.count - len(shown)
        text = ", ".join(shown)
        if rest > 0:
            text += f" and {rest} more file{'s' if rest != 1 else ''}"
        return text
