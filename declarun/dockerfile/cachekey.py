"""A build step's cache key: a pure function of everything that decides the step's result.

``step_cache_key(parent, step_text, sources_digest=..., run_args=..., platform=...)`` hashes

* ``parent`` — the previous step's key, or for a stage's first step the base image's ID,
  the ``FROM`` stage's last key, or :data:`SCRATCH_PARENT` (so the whole chain above the
  step is in the key);
* ``step_text`` — the instruction after substitution, canonical
  (:meth:`declarun.dockerfile.evaluate.Step.key_text`; the line it is on is not in it);
* ``sources_digest`` — for ``COPY``/``ADD``, the digest of the sources as they land
  (:func:`declarun.dockerfile.sourcedigest.sources_digest`): editing a file busts the key
  of the step that copies it and, through ``parent``, of every step after it;
* ``run_args`` — the build args a ``RUN`` sees (``KEY=value``; the proxy args are left
  out, as dockerd does, so a proxy change does not rebuild);
* ``platform`` — the stage's platform.

The key is ``sha256:<hex>`` of a canonical JSON document with a format version, so a future
change of the recipe never collides with old keys.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence

__all__ = ["CACHE_KEY_VERSION", "SCRATCH_PARENT", "step_cache_key"]

CACHE_KEY_VERSION = 1
# The parent key of the first step of a stage built FROM scratch.
SCRATCH_PARENT = "scratch"


def step_cache_key(
    parent: str,
    step_text: str,
    *,
    sources_digest: str | None = None,
    run_args: Sequence[str] = (),
    platform: str = "",
) -> str:
    """The cache key of a step (see the module docstring)."""
    material = {
        "version": CACHE_KEY_VERSION,
        "parent": parent,
        "step": step_text,
        "sources": sources_digest,
        "args": sorted(run_args),
        "platform": platform,
    }
    encoded = json.dumps(material, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return "sha256:" + hashlib.sha256(encoded.encode()).hexdigest()
