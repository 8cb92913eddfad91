"""``docker images`` filters and the image prune policy, on real stores without HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.events import EventBus
from declarun.daemon.filters import Filters
from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import Descriptor, LocalStore
from declarun.daemon.images.listing import (
    dangling_wanted,
    image_summaries,
    only_matching,
    path_match,
    prune_images,
)
from declarun.daemon.images.platform import Platform
from declarun.daemon.images.registry import RegistryConfig
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import Image, ImageRecord, Metadata
from declarun.daemon.snapshots import open_snapshotter
from declarun.errdefs import InvalidArgument


def _filters(**values: list[str]) -> Filters:
    return Filters({k.replace("_not", "!"): frozenset(v) for k, v in values.items()})


@pytest.fixture
def service(tmp_path: Path) -> Iterator[ImageService]:
    metadata = Metadata(tmp_path / "metadata.db")
    images = ImageService(
        metadata,
        LocalStore(tmp_path / "content"),
        open_snapshotter(tmp_path, "copy"),
        EventBus(),
        registry_config=RegistryConfig(),
        max_concurrent_downloads=3,
        scratch_dir=tmp_path,
    )
    yield images
    metadata.close()


def _add(
    service: ImageService, seed: str, names: tuple[str, ...], labels: dict[str, str], created: str
) -> Image:
    """An image with a real config blob (no layers) under ``names``."""
    config = {"created": created, "config": {"Labels": labels}, "rootfs": {"diff_ids": []}}
    data = json.dumps({**config, "seed": seed}).encode()
    info = service.store.put(data)
    record = ImageRecord(
        id=info.digest,
        manifest=Descriptor(mediatypes.OCI_MANIFEST, info.digest, 1),
        config=Descriptor(mediatypes.OCI_CONFIG, info.digest, info.size),
        layers=(),
        platform=Platform("linux", "amd64"),
        created=created,
        size=10,
    )
    return service.metadata.put_image(record, names=names)


def test_reference_patterns_are_gos_path_match() -> None:
    assert path_match("busy*", "busybox")
    assert not path_match("*", "library/busybox")  # `*` does not cross `/`
    assert path_match("*/busybox", "library/busybox")
    assert path_match("b?sybox:[0-9]*", "busybox:1.36")
    assert not path_match("[abc", "a")  # an unclosed class matches nothing


def test_reference_filter_keeps_only_the_names_it_matches(service: ImageService) -> None:
    image = _add(
        service,
        "a",
        ("docker.io/library/busybox:1", "docker.io/library/app:1"),
        {},
        "2024-01-01T00:00:00Z",
    )
    only = only_matching(frozenset({"busybox"}), image)
    assert only is not None and only.tags == ("docker.io/library/busybox:1",)
    assert only_matching(frozenset({"nginx"}), image) is None


def test_dangling_is_one_boolean() -> None:
    assert dangling_wanted(Filters()) is None
    assert dangling_wanted(_filters(dangling=["true"])) is True
    assert dangling_wanted(_filters(dangling=["0"])) is False
    with pytest.raises(InvalidArgument, match="dangling=maybe"):
        dangling_wanted(_filters(dangling=["maybe"]))
    with pytest.raises(InvalidArgument, match="only one value"):
        dangling_wanted(_filters(dangling=["true", "false"]))


def test_list_filters_by_label_dangling_and_time(service: ImageService) -> None:
    _add(service, "old", ("docker.io/library/old:1",), {"tier": "db"}, "2020-01-01T00:00:00Z")
    _add(service, "new", ("docker.io/library/new:1",), {"tier": "web"}, "2024-01-01T00:00:00Z")
    _add(service, "none", (), {}, "2024-06-01T00:00:00Z")

    def tags(filters: Filters) -> list[list[str]]:
        return sorted(doc["RepoTags"] for doc in image_summaries(service, filters))

    assert tags(Filters()) == [[], ["new:1"], ["old:1"]]
    assert tags(_filters(label=["tier=web"])) == [["new:1"]]
    assert tags(_filters(dangling=["true"])) == [[]]
    assert tags(_filters(before=["new:1"])) == [["old:1"]]
    assert tags(_filters(until=["2021-01-01T00:00:00Z"])) == [["old:1"]]
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        image_summaries(service, _filters(colour=["red"]))


def test_prune_takes_dangling_images_unless_told_all_unused(service: ImageService) -> None:
    tagged = _add(service, "t", ("docker.io/library/keep:1",), {}, "2024-01-01T00:00:00Z")
    dangling = _add(service, "d", (), {}, "2024-01-01T00:00:00Z")
    spared = _add(service, "s", (), {"keep": "yes"}, "2024-01-01T00:00:00Z")
    result = prune_images(service, _filters(label_not=["keep"]))
    assert [r.value for r in result.deleted] == [dangling.id]
    assert [(e.type, e.action) for e in service.events.recent()][-2:] == [
        ("image", "delete"),
        ("image", "prune"),
    ]
    remaining = {image.id for image in service.metadata.list_images()}
    assert remaining == {tagged.id, spared.id}

    result = prune_images(service, _filters(dangling=["false"]))
    deleted = {r.value for r in result.deleted if r.kind == "Deleted"}
    assert deleted == {tagged.id, spared.id}
