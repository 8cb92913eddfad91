"""The Dockerfile frontend: pure logic that turns a Dockerfile and a context into a build plan.

Shared by declarund's builder (which executes the plan) and the client's planner (which
needs a Dockerfile's base images and a context's file digests). It reads local files but
runs nothing, talks to no daemon and writes into no image; it imports only the standard
library, :mod:`declarun.errdefs`/:mod:`declarun.errors` and PyPI's ``dockerfile``.

A name clash to know about: PyPI's binding of BuildKit's parser is *also* a top-level module
called ``dockerfile``. Absolute imports make ``import dockerfile`` inside this package load
the PyPI module (``declarun.dockerfile`` is never imported as plain ``dockerfile``); only
:mod:`declarun.dockerfile.parse` imports it, as ``gofile``.

The modules, in the order a build uses them (see ``specs/build.md`` for the rules):

* :mod:`.parse` — :func:`parse_dockerfile` -> :class:`Dockerfile` (stages of typed
  :mod:`.instructions`); :mod:`.builders` checks each instruction; :mod:`.directives`,
  :mod:`.flags`, :mod:`.mounts` (``RUN --mount``) and :mod:`.heredoc` help.
* :mod:`.lexer` — Docker's variable substitution; :mod:`.buildargs` — ``ARG`` scoping and
  the predefined args; :mod:`.platform` — platforms.
* :mod:`.graph` — :func:`plan_build` -> :class:`BuildPlan`: the stages a target needs,
  their dependencies and concurrency levels, the external images.
* :mod:`.evaluate` — :func:`evaluate_stage` -> :class:`StageEvaluation` of :mod:`.steps`
  (each step after substitution, its :class:`RunSpec` or :class:`CopySpec`, its config
  change and history entry); :mod:`.metadata` checks ports and signals, :mod:`.gofmt`
  writes Go's renderings into history.
* :mod:`.ignore`, :mod:`.context` — ``.dockerignore`` and hashing a context directory.
* :mod:`.copyplan` — what a ``COPY``/``ADD`` puts where (:mod:`.scope` keeps symlinks in
  the root, :mod:`.gomatch` is Go's ``filepath.Match``, :mod:`.archive` spots tarballs);
  :mod:`.sourcedigest` — its cache digest and dockerd's history hash.
* :mod:`.imageconfig`, :mod:`.cachekey`, :mod:`.epoch` — configs and history entries,
  step cache keys, ``SOURCE_DATE_EPOCH`` timestamps; :mod:`.labels` — ``--label``s of a
  build as dockerd appends them to the target stage.

The names below are imported from their modules on first use (PEP 562): the client's
planner needs the parser, the stage graph and context hashing on every ``declarun plan``,
not the evaluation and ``COPY`` machinery declarund's builder uses, and importing all of it
cost a tenth of a second per command.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from declarun.dockerfile.buildargs import unconsumed_warning
    from declarun.dockerfile.cachekey import step_cache_key
    from declarun.dockerfile.context import (
        ContextChanges,
        ContextDigest,
        DigestCache,
        context_matcher,
        hash_context,
        walk_context,
    )
    from declarun.dockerfile.copyplan import CopyPlan, Owner, PlannedEntry, parse_chown, plan_copy
    from declarun.dockerfile.epoch import created_timestamp, source_date_epoch
    from declarun.dockerfile.errors import (
        BuildTargetError,
        CopySourceError,
        DockerfileError,
        FrontendError,
        IgnorePatternError,
        SubstitutionError,
    )
    from declarun.dockerfile.evaluate import (
        CopySpec,
        RunSpec,
        StageEvaluation,
        Step,
        evaluate_stage,
    )
    from declarun.dockerfile.graph import BuildPlan, StageNode, plan_build
    from declarun.dockerfile.ignore import PatternMatcher, read_dockerignore, removed_after_reading
    from declarun.dockerfile.imageconfig import HistoryEntry, ImageConfig, image_document
    from declarun.dockerfile.labels import with_build_labels
    from declarun.dockerfile.parse import Dockerfile, Stage, parse_dockerfile
    from declarun.dockerfile.platform import Platform, host_platform, parse_platform
    from declarun.dockerfile.sourcedigest import classic_source_hash, sources_digest

_HOMES: dict[str, str] = {
    "unconsumed_warning": "declarun.dockerfile.buildargs",
    "step_cache_key": "declarun.dockerfile.cachekey",
    "ContextChanges": "declarun.dockerfile.context",
    "ContextDigest": "declarun.dockerfile.context",
    "DigestCache": "declarun.dockerfile.context",
    "context_matcher": "declarun.dockerfile.context",
    "hash_context": "declarun.dockerfile.context",
    "walk_context": "declarun.dockerfile.context",
    "CopyPlan": "declarun.dockerfile.copyplan",
    "Owner": "declarun.dockerfile.copyplan",
    "PlannedEntry": "declarun.dockerfile.copyplan",
    "parse_chown": "declarun.dockerfile.copyplan",
    "plan_copy": "declarun.dockerfile.copyplan",
    "created_timestamp": "declarun.dockerfile.epoch",
    "source_date_epoch": "declarun.dockerfile.epoch",
    "BuildTargetError": "declarun.dockerfile.errors",
    "CopySourceError": "declarun.dockerfile.errors",
    "DockerfileError": "declarun.dockerfile.errors",
    "FrontendError": "declarun.dockerfile.errors",
    "IgnorePatternError": "declarun.dockerfile.errors",
    "SubstitutionError": "declarun.dockerfile.errors",
    "CopySpec": "declarun.dockerfile.evaluate",
    "RunSpec": "declarun.dockerfile.evaluate",
    "StageEvaluation": "declarun.dockerfile.evaluate",
    "Step": "declarun.dockerfile.evaluate",
    "evaluate_stage": "declarun.dockerfile.evaluate",
    "BuildPlan": "declarun.dockerfile.graph",
    "StageNode": "declarun.dockerfile.graph",
    "plan_build": "declarun.dockerfile.graph",
    "PatternMatcher": "declarun.dockerfile.ignore",
    "read_dockerignore": "declarun.dockerfile.ignore",
    "removed_after_reading": "declarun.dockerfile.ignore",
    "HistoryEntry": "declarun.dockerfile.imageconfig",
    "ImageConfig": "declarun.dockerfile.imageconfig",
    "image_document": "declarun.dockerfile.imageconfig",
    "Dockerfile": "declarun.dockerfile.parse",
    "Stage": "declarun.dockerfile.parse",
    "parse_dockerfile": "declarun.dockerfile.parse",
    "Platform": "declarun.dockerfile.platform",
    "host_platform": "declarun.dockerfile.platform",
    "parse_platform": "declarun.dockerfile.platform",
    "classic_source_hash": "declarun.dockerfile.sourcedigest",
    "sources_digest": "declarun.dockerfile.sourcedigest",
    "with_build_labels": "declarun.dockerfile.labels",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(home), name)
    globals()[name] = value  # once imported, a plain module attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "BuildPlan",
    "BuildTargetError",
    "ContextChanges",
    "ContextDigest",
    "CopyPlan",
    "CopySourceError",
    "CopySpec",
    "DigestCache",
    "Dockerfile",
    "DockerfileError",
    "FrontendError",
    "HistoryEntry",
    "IgnorePatternError",
    "ImageConfig",
    "Owner",
    "PatternMatcher",
    "PlannedEntry",
    "Platform",
    "RunSpec",
    "Stage",
    "StageEvaluation",
    "StageNode",
    "Step",
    "SubstitutionError",
    "classic_source_hash",
    "context_matcher",
    "created_timestamp",
    "evaluate_stage",
    "hash_context",
    "host_platform",
    "image_document",
    "parse_chown",
    "parse_dockerfile",
    "parse_platform",
    "plan_build",
    "plan_copy",
    "read_dockerignore",
    "removed_after_reading",
    "source_date_epoch",
    "sources_digest",
    "step_cache_key",
    "unconsumed_warning",
    "walk_context",
    "with_build_labels",
]
