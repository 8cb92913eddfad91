"""What declarun keeps about builds in the user's cache directory, and where.

``$XDG_CACHE_HOME/declarun/`` (``~/.cache/declarun/`` without it) holds three things, each
an optimisation or a memory that only this machine needs:

``context-digests/<h>.json``
    The frontend's :class:`~declarun.dockerfile.DigestCache` of one context directory (``h``:
    16 hex of the sha256 of its path): each file's content digest by ``(size, mtime, inode,
    device)``, so hashing a context again reads only the files that changed.
``contexts/<hex>.json``
    A context's per-file digests (:meth:`ContextDigest.to_json`), keyed by its root digest,
    so a later plan can name the files that changed since a build. Written when a context
    digest is first seen; one no build record refers to is removed after a day.
``builds/<t>/<image-id hex>.json``
    The build record: the :class:`~declarun.plan.buildinputs.BuildInputs` an image was
    built from (``t``: 16 hex of the sha256 of its tag). Written after each build; a tag
    keeps the records of its four newest images (one per engine it is built on, say).

Reading never fails: a missing or damaged file is as if nothing was kept (the cost is a
rehash, or a rebuild that the engine's build cache makes cheap). Writing a build record may
fail (:class:`OSError`): without it every plan would build the image again, so the caller
reports it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from declarun.dockerfile import ContextDigest
from declarun.plan.buildinputs import BuildInputs

__all__ = [
    "cache_dir",
    "digest_cache_path",
    "read_context_map",
    "read_record",
    "record_path",
    "write_context_map",
    "write_record",
]

_MAP_GRACE_SECONDS = 24 * 3600
_RECORDS_PER_TAG = 4


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/declarun``, else ``~/.cache/declarun``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "declarun"


def _short(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:16]


def _hex(digest: str) -> str | None:
    algorithm, _, hexpart = digest.partition(":")
    if (
        algorithm != "sha256"
        or len(hexpart) != 64
        or not all(c in "0123456789abcdef" for c in hexpart)
    ):
        return None
    return hexpart


def digest_cache_path(context: Path) -> Path:
    """Where the digest cache of the context directory ``context`` is kept."""
    return cache_dir() / "context-digests" / f"{_short(str(context))}.json"


def _write_atomically(path: Path, document: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps(document, separators=(",", ":")), encoding="utf-8")
    os.replace(temporary, path)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _map_path(root_digest: str) -> Path | None:
    hexpart = _hex(root_digest)
    return None if hexpart is None else cache_dir() / "contexts" / f"{hexpart}.json"


def write_context_map(digest: ContextDigest) -> None:
    """Keep ``digest``'s per-file digests, unless they are kept already (best effort)."""
    path = _map_path(digest.digest)
    if path is None or path.exists():
        return
    with contextlib.suppress(OSError):
        _write_atomically(path, digest.to_json())


def read_context_map(root_digest: str) -> ContextDigest | None:
    """The per-file digests of the context whose root digest is ``root_digest``, if kept."""
    path = _map_path(root_digest)
    document = None if path is None else _read_json(path)
    if not isinstance(document, dict) or document.get("digest") != root_digest:
        return None
    try:
        return ContextDigest.from_json(document)
    except (KeyError, TypeError, AttributeError, ValueError):
        return None


def record_path(tag: str, image_id: str) -> Path | None:
    """Where the build record of image ``image_id`` tagged ``tag`` is kept (None for an id
    that is not a sha256 digest)."""
    hexpart = _hex(image_id)
    return None if hexpart is None else cache_dir() / "builds" / _short(tag) / f"{hexpart}.json"


def read_record(tag: str, image_id: str) -> BuildInputs | None:
    """What image ``image_id``, tagged ``tag``, was built from, if recorded here."""
    path = record_path(tag, image_id)
    document = None if path is None else _read_json(path)
    if not isinstance(document, dict) or document.get("tag") != tag:
        return None
    try:
        return BuildInputs.from_data(document["inputs"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None


def _prune_context_maps(now: float) -> None:
    referenced: set[str] = set()
    for record in (cache_dir() / "builds").glob("*/*.json"):
        document = _read_json(record)
        if isinstance(document, dict) and isinstance(document.get("inputs"), dict):
            referenced.add(str(document["inputs"].get("context")))
    for kept in (cache_dir() / "contexts").glob("*.json"):
        if f"sha256:{kept.stem}" in referenced:
            continue
        with contextlib.suppress(OSError):
            if kept.stat().st_mtime < now - _MAP_GRACE_SECONDS:
                kept.unlink()


def _older_records(path: Path) -> list[Path]:
    """The tag's records beyond the newest few (a tag built on several engines has an image
    on each; older images of a tag are no longer what it names)."""
    dated: list[tuple[float, Path]] = []
    for other in path.parent.glob("*.json"):
        if other == path:
            continue
        with contextlib.suppress(OSError):
            dated.append((other.stat().st_mtime, other))
    dated.sort(reverse=True)
    return [other for _, other in dated[_RECORDS_PER_TAG - 1 :]]


def write_record(tag: str, image_id: str, inputs: BuildInputs) -> Path:
    """Record that image ``image_id``, tagged ``tag``, was built from ``inputs``; the tag's
    older records and unused context maps go. Raises ``OSError`` (or
    ``ValueError`` for an id that is not a sha256 digest)."""
    path = record_path(tag, image_id)
    if path is None:
        raise ValueError(f"not an image id: {image_id!r}")
    _write_atomically(
        path,
        {"tag": tag, "image": image_id, "built": int(time.time()), "inputs": inputs.to_data()},
    )
    for older in _older_records(path):
        with contextlib.suppress(OSError):
            older.unlink()
    with contextlib.suppress(OSError):
        _prune_context_maps(time.time())
    return path
