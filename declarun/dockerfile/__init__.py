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
"""

from __future__ import annotations

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
