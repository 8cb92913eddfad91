"""Second half of ``docker load``: turn a spooled archive into image records and names.

Two formats, often in one archive:

* **OCI layout** (``index.json``): each top-level descriptor is a manifest, or an index
  (nested ones too) from which the requested platform's manifest is chosen among those
  whose blobs the archive holds. The name comes from ``io.containerd.image.name``, else
  from ``org.opencontainers.image.ref.name`` when that is a full reference; a bare tag
  (``latest``) names nothing on its own. Manifests are kept as they are, so digests
  survive.
* **Docker archive** (``manifest.json``): ``Config`` and ``Layers`` are member paths
  (``<hex>.json`` and ``<id>/layer.tar`` in older archives, ``blobs/sha256/...`` in
  newer). A layer may be a plain tar, whose digest must equal its diff ID, or compressed
  (gzip, zstd), which is decompressed once to check its diff ID. An OCI manifest is
  generated for the image (config ``application/vnd.oci.image.config.v1+json``, layers
  ``...layer.v1.tar`` or ``tar+gzip``/``tar+zstd``).

An image found in both is taken from ``index.json`` and gets the ``RepoTags`` too. An
``index.json`` entry that does not hold together (moby 25.0.0 wrote manifests without
layers) is left to ``manifest.json`` when the archive has one.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from declarun.daemon.images import mediatypes
from declarun.daemon.images.archive_spool import SpooledArchive
from declarun.daemon.images.archive_tar import stream_errors
from declarun.daemon.images.content import (
    ANNOTATION_IMAGE_NAME,
    ANNOTATION_REF_NAME,
    Descriptor,
    LocalStore,
)
from declarun.daemon.images.layerstream import detect_compression, open_uncompressed
from declarun.daemon.images.platform import Platform, PlatformError, select_manifest
from declarun.daemon.metadata import ImageLayer, ImageRecord
from declarun.daemon.snapshots.chain import chain_ids
from declarun.errors import ContentError, ImageReferenceError
from declarun.reference import ImageReference, parse_reference

__all__ = ["ArchiveImage", "images_from_archive"]

_MAX_INDEX_DEPTH = 4
_DECOMPRESS_ERRORS: tuple[type[BaseException], ...] = (*stream_errors, OSError, ValueError)
_LAYER_TYPES = {
    "none": mediatypes.OCI_LAYER,
    "gzip": mediatypes.OCI_LAYER_GZIP,
    "zstd": mediatypes.OCI_LAYER_ZSTD,
}


@dataclass(frozen=True)
class ArchiveImage:
    """An image the archive holds, ready to register, with the tags it brings."""

    record: ImageRecord
    names: tuple[ImageReference, ...] = ()


@dataclass
class _Found:
    record: ImageRecord
    names: list[ImageReference] = field(default_factory=list)

    def add_names(self, names: list[ImageReference]) -> None:
        self.names.extend(n for n in names if n not in self.names)


def _json(data: bytes, what: str) -> Any:
    try:
        return json.loads(data)
    except (ValueError, RecursionError):
        raise ContentError(f"{what} is not valid JSON") from None


def _check_blob(store: LocalStore, desc: Descriptor) -> None:
    if not store.exists(desc.digest):
        raise ContentError(f"blob {desc.digest} ({desc.media_type}) is missing from the archive")
    size = store.info(desc.digest).size
    if size != desc.size:
        raise ContentError(f"blob {desc.digest}: descriptor says {desc.size} bytes, has {size}")


def _tag_name(text: str, what: str) -> ImageReference:
    """A ``repo:tag`` name from the archive; ``ContentError`` if invalid or pinned."""
    try:
        ref = parse_reference(text)
    except ImageReferenceError as err:
        raise ContentError(f"{what}: invalid image name {text!r}: {err}") from None
    if ref.digest is not None:
        raise ContentError(f"{what}: image name {text!r} has a digest; only tags can be loaded")
    return ref


def _oci_names(desc: Descriptor) -> list[ImageReference]:
    name = desc.annotations.get(ANNOTATION_IMAGE_NAME)
    if not name:
        name = desc.annotations.get(ANNOTATION_REF_NAME, "")
        if not any(sep in name for sep in "/:@"):
            return []  # a bare tag: which repository it belongs to is not said
    return [_tag_name(name, "index.json")]


def _config_fields(config: Any, layer_count: int) -> tuple[list[str], Platform, str | None]:
    """Diff IDs, platform and creation time from an image config."""
    if not isinstance(config, Mapping):
        raise ContentError("image config is not a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, Mapping) else None
    if not isinstance(diff_ids, list) or not all(isinstance(d, str) for d in diff_ids):
        raise ContentError("image config has no rootfs.diff_ids list")
    if len(diff_ids) != layer_count:
        raise ContentError(f"image config lists {len(diff_ids)} diff IDs for {layer_count} layers")
    os_name, arch = config.get("os"), config.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        raise ContentError("image config lacks os or architecture")
    variant = config.get("variant")
    created = config.get("created")
    return (
        list(diff_ids),
        Platform(os_name, arch, variant if isinstance(variant, str) and variant else None),
        created if isinstance(created, str) else None,
    )


def _record(
    store: LocalStore,
    manifest: Descriptor,
    config: Descriptor,
    layers: list[Descriptor],
    index: Descriptor | None,
) -> ImageRecord:
    for desc in (config, *layers):
        _check_blob(store, desc)
    diff_ids, platform, created = _config_fields(
        _json(store.read(config.digest), "image config"), len(layers)
    )
    try:
        chains = chain_ids(diff_ids)
    except ValueError as err:
        raise ContentError(f"image config: {err}") from None
    return ImageRecord(
        id=config.digest,
        manifest=Descriptor(manifest.media_type, manifest.digest, manifest.size),
        config=Descriptor(config.media_type, config.digest, config.size),
        layers=tuple(
            ImageLayer(Descriptor(d.media_type, d.digest, d.size), diff, chain)
            for d, diff, chain in zip(layers, diff_ids, chains, strict=True)
        ),
        platform=platform,
        created=created,
        size=sum(d.size for d in layers),
        index=index,
    )


def _manifest_record(store: LocalStore, desc: Descriptor, index: Descriptor | None) -> ImageRecord:
    _check_blob(store, desc)
    doc = _json(store.read(desc.digest), f"manifest {desc.digest}")
    if not isinstance(doc, Mapping):
        raise ContentError(f"manifest {desc.digest} is not a JSON object")
    layers = doc.get("layers")
    if not isinstance(layers, list):
        raise ContentError(f"manifest {desc.digest} has no layers list")
    return _record(
        store,
        desc,
        Descriptor.from_json(doc.get("config")),
        [Descriptor.from_json(layer) for layer in layers],
        index,
    )


def _resolve(
    store: LocalStore, desc: Descriptor, platform: Platform | None, top: Descriptor, depth: int
) -> ImageRecord:
    """The image a top-level descriptor means (walking indexes down to one manifest)."""
    if desc.media_type in mediatypes.MANIFEST_TYPES:
        return _manifest_record(store, desc, top if top is not desc else None)
    if desc.media_type not in mediatypes.INDEX_TYPES:
        raise ContentError(f"index.json entry {desc.digest} has media type {desc.media_type!r}")
    if depth >= _MAX_INDEX_DEPTH:
        raise ContentError(f"index {desc.digest}: indexes nested too deeply")
    _check_blob(store, desc)
    doc = _json(store.read(desc.digest), f"index {desc.digest}")
    entries = doc.get("manifests") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise ContentError(f"index {desc.digest} has no manifests list")
    present = [
        e
        for e in entries
        if isinstance(e, Mapping)
        and isinstance(e.get("digest"), str)
        and store.exists(Descriptor.from_json(e).digest)
    ]
    try:
        chosen = Descriptor.from_json(select_manifest({"manifests": present}, platform))
    except PlatformError as err:
        raise ContentError(f"index {desc.digest}: {err}") from None
    return _resolve(store, chosen, platform, top, depth + 1)


def _layer_descriptor(store: LocalStore, digest: str, diff_id: str, path: str) -> Descriptor:
    """The OCI descriptor of a legacy layer file, after checking it against its diff ID."""
    with store.open(digest) as handle:
        kind = detect_compression(handle.read(4))
    if kind == "none":
        uncompressed = digest
    else:
        try:
            with store.open(digest) as handle:
                reader, _ = open_uncompressed(handle)
                reader.drain()
                uncompressed = reader.digest
        except _DECOMPRESS_ERRORS as err:
            raise ContentError(f"layer {path!r} cannot be decompressed: {err}") from None
    if uncompressed != diff_id:
        raise ContentError(
            f"layer {path!r} does not match the image config: "
            f"its content is {uncompressed}, the config expects {diff_id}"
        )
    return Descriptor(_LAYER_TYPES[kind], digest, store.info(digest).size)


def _legacy_record(
    store: LocalStore,
    spooled: SpooledArchive,
    item: Mapping[str, Any],
    put: Callable[[bytes], Descriptor],
) -> ImageRecord:
    config_path, layer_paths = item.get("Config"), item.get("Layers")
    if not isinstance(config_path, str) or not isinstance(layer_paths, list):
        raise ContentError("manifest.json entry lacks Config or Layers")
    if not all(isinstance(p, str) for p in layer_paths):
        raise ContentError("manifest.json Layers must be paths")
    config_digest = spooled.digest_of(config_path)
    config_data = store.read(config_digest)
    diff_ids, _, _ = _config_fields(_json(config_data, "image config"), len(layer_paths))
    config = Descriptor(mediatypes.OCI_CONFIG, config_digest, len(config_data))
    layers = [
        _layer_descriptor(store, spooled.digest_of(path), diff_id, path)
        for path, diff_id in zip(layer_paths, diff_ids, strict=True)
    ]
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": config.to_json(),
        "layers": [layer.to_json() for layer in layers],
    }
    manifest = put(json.dumps(manifest_doc, separators=(",", ":")).encode())
    return _record(store, manifest, config, layers, None)


def _legacy_items(spooled: SpooledArchive) -> list[Mapping[str, Any]]:
    if "manifest.json" not in spooled.files:
        return []
    doc = _json(spooled.files["manifest.json"], "manifest.json")
    if not isinstance(doc, list) or not all(isinstance(i, Mapping) for i in doc):
        raise ContentError("manifest.json is not a list of images")
    return list(doc)


def _index_entries(spooled: SpooledArchive) -> list[Descriptor]:
    if "index.json" not in spooled.files:
        return []
    if "oci-layout" in spooled.files:
        layout = _json(spooled.files["oci-layout"], "oci-layout")
        if not isinstance(layout, Mapping) or layout.get("imageLayoutVersion") != "1.0.0":
            raise ContentError("oci-layout: unsupported imageLayoutVersion")
    doc = _json(spooled.files["index.json"], "index.json")
    entries = doc.get("manifests") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise ContentError("index.json has no manifests list")
    return [Descriptor.from_json(e) for e in entries]


def images_from_archive(
    store: LocalStore,
    spooled: SpooledArchive,
    put: Callable[[bytes], Descriptor],
    *,
    platform: Platform | None = None,
) -> list[ArchiveImage]:
    """Every image in the spooled archive, in archive order, each with its names.

    ``put`` stores a generated manifest (the caller protects it with its lease) and
    returns its descriptor. ``platform`` picks from indexes (default: the host's).
    Raises ``ContentError`` when the archive holds no image or any image is unusable.
    """
    entries, items = _index_entries(spooled), _legacy_items(spooled)
    if "index.json" not in spooled.files and "manifest.json" not in spooled.files:
        raise ContentError(
            "the archive is not an image archive: it has neither manifest.json nor index.json"
        )
    found: dict[str, _Found] = {}
    deferred: list[tuple[list[ImageReference], ContentError]] = []
    for desc in entries:
        names = _oci_names(desc)
        try:
            record = _resolve(store, desc, platform, desc, 0)
        except ContentError as err:
            if not items:
                raise
            deferred.append((names, err))
            continue
        found.setdefault(record.id, _Found(record)).add_names(names)
    for item in items:
        raw_tags = item.get("RepoTags") or []
        if not isinstance(raw_tags, list) or not all(isinstance(t, str) for t in raw_tags):
            raise ContentError("manifest.json RepoTags must be a list of names")
        names = [_tag_name(t, "manifest.json") for t in raw_tags]
        config_path = item.get("Config")
        known = found.get(spooled.digest_of(config_path)) if isinstance(config_path, str) else None
        if known is None:
            record = _legacy_record(store, spooled, item, put)
            known = found.setdefault(record.id, _Found(record))
        known.add_names(names)
    loaded = {n for f in found.values() for n in f.names}
    for names, problem in deferred:
        if not found or any(n not in loaded for n in names):
            raise problem
    if not found:
        raise ContentError("the archive holds no image")
    return [ArchiveImage(f.record, tuple(f.names)) for f in found.values()]
