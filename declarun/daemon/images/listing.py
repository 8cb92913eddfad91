"""Which images a list shows and a prune removes: dockerd's filters and prune policy.

``GET /images/json`` hides a build's intermediate images (no name, other images built on
them) unless ``all``, as dockerd does, and takes ``before``, ``since`` (an image: those
created before/after it),
``dangling`` (no tag), ``label``, ``reference`` (a pattern matched as Go's ``path.Match``
against the familiar names, which also trims the names shown to those it matches) and
``until`` (a time). ``POST /images/prune`` removes dangling images, or with
``dangling=false`` every image no container was created from, narrowed by ``label``,
``label!`` and ``until``.

Both are blocking (image configs are read from the content store): call them from a
worker thread.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from declarun.daemon.filters import Filters, parse_time
from declarun.daemon.images.inspect import created_unix, image_config, summary_document
from declarun.daemon.images.service import DeleteRecord, ImageService
from declarun.daemon.metadata import Image
from declarun.errdefs import InvalidArgument
from declarun.reference import parse_reference

__all__ = [
    "LIST_FILTERS",
    "PRUNE_FILTERS",
    "PruneResult",
    "dangling_wanted",
    "image_summaries",
    "only_matching",
    "path_match",
    "prune_images",
]

LIST_FILTERS = ("before", "dangling", "label", "reference", "since", "until")
PRUNE_FILTERS = ("dangling", "label", "label!", "until")


@dataclass(frozen=True)
class PruneResult:
    """What a prune removed: Docker's Untagged/Deleted list and the bytes freed."""

    deleted: list[DeleteRecord]
    space_reclaimed: int


def path_match(pattern: str, text: str) -> bool:
    """Go's ``path.Match``: ``*`` and ``?`` do not cross ``/``."""
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "*":
            out.append("[^/]*")
        elif c == "?":
            out.append("[^/]")
        elif c == "[":
            end = pattern.find("]", i + 1)
            if end < 0:
                return False
            body = pattern[i + 1 : end]
            out.append("[" + ("^" + body[1:] if body.startswith("^") else body) + "]")
            i = end
        elif c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(re.escape(pattern[i]))
        else:
            out.append(re.escape(c))
        i += 1
    return re.fullmatch("".join(out), text) is not None


def _name_matches(patterns: frozenset[str], name: str) -> bool:
    ref = parse_reference(name, default_tag=None)
    return any(
        path_match(p, ref.familiar()) or path_match(p, ref.familiar_name()) for p in patterns
    )


def only_matching(patterns: frozenset[str], image: Image) -> Image | None:
    """The image with only the names the ``reference`` filter matches (dockerd shows
    just those), or None when none does."""
    tags = tuple(n for n in image.tags if _name_matches(patterns, n))
    digests = tuple(n for n in image.digests if _name_matches(patterns, n))
    if not tags and not digests:
        return None
    return dataclasses.replace(image, tags=tags, digests=digests)


def dangling_wanted(filters: Filters) -> bool | None:
    """The ``dangling`` filter as a boolean (None when absent); InvalidArgument if malformed."""
    values = filters.get("dangling")
    if not values:
        return None
    if len(values) > 1:
        raise InvalidArgument("invalid filter 'dangling': give only one value")
    value = next(iter(values)).lower()
    if value in ("true", "1"):
        return True
    if value in ("false", "0"):
        return False
    raise InvalidArgument(f"invalid filter 'dangling={value}'")


def _labels(config: Mapping[str, Any]) -> dict[str, str]:
    labels: dict[str, str] = (config.get("config") or {}).get("Labels") or {}
    return labels


def _has_key(labels: Mapping[str, str], wanted: str) -> bool:
    key, sep, value = wanted.partition("=")
    return key in labels and (not sep or labels[key] == value)


def _until(filters: Filters) -> int | None:
    values = filters.get("until")
    return parse_time(next(iter(values)), "until") if values else None


def _reference_time(service: ImageService, filters: Filters, name: str) -> int | None:
    values = filters.get(name)
    if not values:
        return None
    times = [created_unix(service.resolve(v)) for v in values]
    return min(times) if name == "before" else max(times)


def image_summaries(
    service: ImageService, filters: Filters, *, all_images: bool = False
) -> list[dict[str, Any]]:
    """``GET /images/json``: the Swagger ``ImageSummary`` of every image the filters keep.

    As dockerd, an image without a name that other images were built on (a build's
    intermediate image) is only listed with ``all_images``.
    """
    filters.validate(LIST_FILTERS)
    dangling = dangling_wanted(filters)
    before = _reference_time(service, filters, "before")
    since = _reference_time(service, filters, "since")
    until_ns = _until(filters)
    parents = service.metadata.image_parents()
    with_children = set(parents.values())
    out = []
    for image in service.metadata.list_images():
        if not all_images and image.id in with_children and not (image.tags or image.digests):
            continue
        config = image_config(service, image)
        created = created_unix(image, config)
        if dangling is not None and (not image.tags) != dangling:
            continue
        if "reference" in filters:
            matching = only_matching(filters.get("reference"), image)
            if matching is None:
                continue
            image = matching
        if not filters.match_kv_list("label", _labels(config)):
            continue
        if before is not None and created >= before:
            continue
        if since is not None and created <= since:
            continue
        if until_ns is not None and created * 1_000_000_000 > until_ns:
            continue
        out.append(summary_document(image, config, parents.get(image.id, "")))
    return out


def prune_images(service: ImageService, filters: Filters) -> PruneResult:
    """``POST /images/prune``: remove what the prune policy selects; publishes ``prune``."""
    filters.validate(PRUNE_FILTERS)
    dangling = dangling_wanted(filters)
    until_ns = _until(filters)
    used = service.in_use_by_containers() | service.leased_images()
    with_children = set(service.metadata.image_parents().values())
    victims = []
    for image in service.metadata.list_images():
        if image.id in used or (dangling is not False and image.tags):
            continue
        if image.id in with_children:
            continue  # a build's intermediate image: it goes with the image built on it
        config = image_config(service, image)
        labels = _labels(config)
        if not filters.match_kv_list("label", labels):
            continue
        if any(_has_key(labels, v) for v in filters.get("label!")):
            continue
        if until_ns is not None and created_unix(image, config) * 10**9 >= until_ns:
            continue
        victims.append(image)
    records, freed = service.remove_images(victims)
    service.events.publish("image", "prune", "", {"reclaimed": str(freed)})
    return PruneResult(records, freed)
