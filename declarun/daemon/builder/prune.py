"""The build cache as records: what ``/system/df`` lists and ``/build/prune`` removes.

Two kinds of record, with BuildKit's ``BuildCache`` fields:

* ``regular`` -- a step remembered in the metadata (``build_cache``: key -> image). Its ID
  is the key's hex, ``Parents`` the parent step's, ``Size`` the bytes of the layer the step
  added. ``InUse`` while a container runs on its image or a build holds it; ``Shared``
  when its image is part of a tagged image (its layers are that image's too).
* ``exec.cachemount`` -- a ``RUN --mount=type=cache`` directory (:mod:`.cachemounts`).

:func:`prune_build_cache` removes records that are not in use: with ``all`` every one,
otherwise only those not shared (the cache of builds whose result is gone or untagged);
``filters`` (``until``, ``id``, ``parent``, ``type``, ``description``, ``inuse``,
``shared``, ``private``) narrow the choice, and ``keep-storage`` keeps the most recently
used records up to that many bytes (``all`` without filters also drops the extracted
contexts kept for the next build). A removed step's image goes too when nothing else
needs it (no name, no container, no child image, no other cache entry, no build), then its
parents the same way, and garbage collection frees the blobs and snapshots.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from declarun.daemon.builder.cachemounts import CacheMounts, tree_size
from declarun.daemon.builder.contextcache import ContextCache
from declarun.daemon.filters import Filters, parse_time
from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import ImageNotFoundError

__all__ = [
    "PRUNE_FILTERS",
    "CacheRecord",
    "PruneResult",
    "build_cache_records",
    "prune_build_cache",
]

PRUNE_FILTERS = ("until", "id", "parent", "type", "description", "inuse", "shared", "private")


class BuildCacheOwner(Protocol):
    """What pruning needs of the builder service."""

    images: ImageService
    cache_mounts: CacheMounts
    contexts: ContextCache


@dataclass(frozen=True)
class CacheRecord:
    """One build cache record (Swagger ``BuildCache``)."""

    id: str
    parents: tuple[str, ...]
    type: str
    description: str
    in_use: bool
    shared: bool
    size: int
    created: float
    last_used: float
    usage_count: int
    key: str
    image_id: str = ""

    def to_api(self) -> dict[str, Any]:
        """The Swagger ``BuildCache`` object."""
        return {
            "ID": self.id,
            "Parents": list(self.parents) or None,
            "Type": self.type,
            "Description": self.description,
            "InUse": self.in_use,
            "Shared": self.shared,
            "Size": self.size,
            "CreatedAt": _rfc3339(self.created),
            "LastUsedAt": _rfc3339(self.last_used) if self.last_used else None,
            "UsageCount": self.usage_count,
        }


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed: record IDs and bytes freed."""

    deleted: tuple[str, ...]
    reclaimed: int


def _rfc3339(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _hex(key: str) -> str:
    return key.split(":", 1)[-1]


def _kept_by_names(svc: ImageService, parents: dict[str, str]) -> set[str]:
    """Images that are, or are ancestors of, an image with a name."""
    kept: set[str] = set()
    for image in svc.metadata.list_images():
        if not (image.tags or image.digests):
            continue
        current: str | None = image.id
        while current is not None and current not in kept:
            kept.add(current)
            current = parents.get(current)
    return kept


def _leased_images(svc: ImageService) -> set[str]:
    return {r.key for lease in svc.metadata.leases() for r in lease.resources if r.kind == "image"}


def build_cache_records(owner: BuildCacheOwner) -> list[CacheRecord]:
    """Every build cache record (blocking: reads the metadata and sizes cache mounts)."""
    svc = owner.images
    meta = svc.metadata
    entries = meta.list_build_cache()
    parents = meta.image_parents()
    shared = _kept_by_names(svc, parents)
    busy = svc.in_use_by_containers() | _leased_images(svc)
    keys = {entry.key for entry in entries}
    records = [
        CacheRecord(
            id=_hex(entry.key),
            parents=(_hex(entry.parent),) if entry.parent in keys else (),
            type="regular",
            description=entry.description,
            in_use=entry.image_id in busy,
            shared=entry.image_id in shared,
            size=entry.size,
            created=entry.created,
            last_used=entry.last_used,
            usage_count=entry.usage_count,
            key=entry.key,
            image_id=entry.image_id,
        )
        for entry in entries
    ]
    for mount in owner.cache_mounts.list():
        records.append(
            CacheRecord(
                id=mount.key,
                parents=(),
                type="exec.cachemount",
                description=f"cached mount {mount.cache_id}",
                in_use=mount.in_use,
                shared=False,
                size=mount.size,
                created=mount.created,
                last_used=mount.last_used,
                usage_count=1,
                key=mount.key,
            )
        )
    return records


def _bool_filter(filters: Filters, name: str) -> bool | None:
    values = filters.get(name)
    if not values:
        return None
    return next(iter(values)).lower() not in ("false", "0")


def _selected(
    record: CacheRecord, filters: Filters, all_records: bool, until_ns: int | None
) -> bool:
    if record.in_use:
        return False
    if not all_records and record.shared:
        return False
    if until_ns is not None and record.last_used * 1e9 >= until_ns:
        return False
    if filters.get("id") and not any(record.id.startswith(v) for v in filters.get("id")):
        return False
    if filters.get("parent") and not set(record.parents) & filters.get("parent"):
        return False
    if not filters.exact_match("type", record.type):
        return False
    descriptions = filters.get("description")
    if descriptions and not any(d in record.description for d in descriptions):
        return False
    shared = _bool_filter(filters, "shared")
    if shared is not None and shared != record.shared:
        return False
    private = _bool_filter(filters, "private")
    return private is None or private == (not record.shared)


def _keep_storage(
    chosen: list[CacheRecord], everything: list[CacheRecord], keep: int
) -> list[CacheRecord]:
    """Of ``chosen``, the ones to delete so that at most ``keep`` bytes remain."""
    if keep <= 0:
        return chosen
    total = sum(r.size for r in everything)
    victims = []
    for record in sorted(chosen, key=lambda r: r.last_used):
        if total <= keep:
            break
        victims.append(record)
        total -= record.size
    return victims


def _remove_orphans(svc: ImageService, candidates: Iterable[str]) -> None:
    """Delete the images nothing needs any more, and then their parents the same way."""
    meta = svc.metadata
    pending = list(dict.fromkeys(candidates))
    while pending:
        image_id = pending.pop()
        parents = meta.image_parents()
        if image_id in parents.values():
            continue  # a child image is built on it (the links go with the children)
        if any(entry.image_id == image_id for entry in meta.list_build_cache()):
            continue
        if image_id in svc.in_use_by_containers() or image_id in _leased_images(svc):
            continue
        try:
            image = meta.get_image(image_id)
        except ImageNotFoundError:
            continue
        if image.tags or image.digests:
            continue
        parent = parents.get(image_id)
        meta.delete_image(image_id)
        svc.events.publish("image", "delete", image_id, {"name": image_id})
        if parent is not None:
            pending.append(parent)


def _prune(
    owner: BuildCacheOwner, filters: Filters, all_records: bool, keep_storage: int
) -> PruneResult:
    filters.validate(PRUNE_FILTERS)
    until_values = filters.get("until")
    until_ns = parse_time(next(iter(until_values)), "until") if until_values else None
    svc = owner.images
    everything = build_cache_records(owner)
    chosen = [r for r in everything if _selected(r, filters, all_records, until_ns)]
    victims = _keep_storage(chosen, everything, keep_storage)
    steps = [r for r in victims if r.type == "regular"]
    mounts = [r for r in victims if r.type == "exec.cachemount"]
    svc.metadata.delete_build_cache(r.key for r in steps)
    _remove_orphans(svc, [r.image_id for r in steps])
    snapshots_before = {layer.chain_id: layer.size for layer in svc.metadata.list_layers()}
    result = svc.collect_garbage()
    reclaimed = result.freed_bytes + sum(snapshots_before.get(c, 0) for c in result.snapshots)
    deleted = [r.id for r in steps]
    for record in mounts:
        if owner.cache_mounts.remove(record.key):
            deleted.append(record.id)
            reclaimed += record.size
    return PruneResult(tuple(deleted), reclaimed)


async def prune_build_cache(
    owner: BuildCacheOwner, filters: Filters, *, all_records: bool, keep_storage: int
) -> PruneResult:
    """``POST /build/prune`` (see the module docstring); with ``all`` and no filter, the
    extracted contexts kept for the next build go too."""
    result = await asyncio.to_thread(_prune, owner, filters, all_records, keep_storage)
    if all_records and not filters.fields:
        trees = owner.contexts.take_all()
        freed = await asyncio.to_thread(_remove_trees, trees)
        result = PruneResult(result.deleted, result.reclaimed + freed)
    return result


def _remove_trees(trees: list[Path]) -> int:
    freed = 0
    for tree in trees:
        freed += tree_size(tree)
        remove_tree(tree)
    return freed
