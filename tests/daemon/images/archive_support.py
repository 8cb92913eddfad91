"""Helpers for the save/load tests: a store holding busybox images, and tar builders."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.images.content import Descriptor, LocalStore, import_layout
from declarun.daemon.images.platform import Platform
from declarun.daemon.metadata import ImageLayer, ImageRecord, Metadata
from declarun.daemon.snapshots.chain import chain_ids
from tests.support.images import OciImage, build_busybox_layout

__all__ = [
    "Daemon",
    "TarEntry",
    "add_busybox",
    "digest_of",
    "legacy_entries",
    "make_daemon",
    "record_for",
    "tar_bytes",
]


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class Daemon:
    """The two stores a daemon has: content and metadata."""

    store: LocalStore
    metadata: Metadata
    root: Path


def make_daemon(root: Path) -> Daemon:
    """A fresh content store and metadata database under ``root``."""
    root.mkdir(parents=True, exist_ok=True)
    store = LocalStore(root / "content")
    metadata = Metadata(root / "metadata.db")
    metadata.subscribe(lambda: store.write_index(metadata.oci_index()))
    return Daemon(store, metadata, root)


def record_for(image: OciImage) -> ImageRecord:
    """The metadata record of an image built by ``build_busybox_layout``."""
    chains = chain_ids(image.diff_ids)
    return ImageRecord(
        id=image.config.digest,
        manifest=Descriptor(image.manifest.media_type, image.manifest.digest, image.manifest.size),
        config=Descriptor(image.config.media_type, image.config.digest, image.config.size),
        layers=tuple(
            ImageLayer(Descriptor(b.media_type, b.digest, b.size), diff, chain)
            for b, diff, chain in zip(image.layers, image.diff_ids, chains, strict=True)
        ),
        platform=Platform("linux", image.architecture, image.variant),
        created="2023-11-14T22:13:20Z",
        size=sum(b.size for b in image.layers),
    )


def add_busybox(
    daemon: Daemon, layout: Path, names: tuple[str, ...], *, extra_layers: int = 0
) -> OciImage:
    """Build a busybox layout, import it into the daemon's stores, and tag it."""
    image = build_busybox_layout(layout, extra_layers=extra_layers)
    import_layout(daemon.store, layout)
    daemon.metadata.put_image(record_for(image), names=names)
    return image


@dataclass(frozen=True)
class TarEntry:
    """One member of a hand-made archive."""

    name: str
    data: bytes = b""
    kind: bytes = tarfile.REGTYPE
    linkname: str = ""


def tar_bytes(entries: list[TarEntry], *, fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A tar archive of ``entries``, built with ``tarfile`` (names are not checked)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as tar:
        for entry in entries:
            info = tarfile.TarInfo(entry.name)
            info.type = entry.kind
            info.linkname = entry.linkname
            info.size = len(entry.data) if entry.kind == tarfile.REGTYPE else 0
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(entry.data) if info.size else None)
    return buffer.getvalue()


def legacy_entries(image: OciImage, tags: list[str]) -> list[TarEntry]:
    """A pre-25 ``docker save`` layout: ``<id>/layer.tar`` (uncompressed) and ``<hex>.json``.

    The second image layer (if any) is stored once and linked from a second directory,
    as Docker 20.10 does for layers shared between v1 IDs.
    """
    config = image.config.data
    entries = [TarEntry(f"{image.config.digest[7:]}.json", config)]
    layer_paths = []
    for number, layer in enumerate(image.layers):
        directory = f"{number:064x}"
        entries.append(TarEntry(f"{directory}/", kind=tarfile.DIRTYPE))
        entries.append(TarEntry(f"{directory}/VERSION", b"1.0"))
        entries.append(TarEntry(f"{directory}/json", b"{}"))
        entries.append(TarEntry(f"{directory}/layer.tar", gzip.decompress(layer.data)))
        layer_paths.append(f"{directory}/layer.tar")
    # A symlinked alias of the first layer, used by the manifest instead of the original.
    alias_dir = "f" * 64
    entries.append(TarEntry(f"{alias_dir}/", kind=tarfile.DIRTYPE))
    entries.append(
        TarEntry(f"{alias_dir}/layer.tar", kind=tarfile.SYMTYPE, linkname=f"../{0:064x}/layer.tar")
    )
    layer_paths[0] = f"{alias_dir}/layer.tar"
    manifest = [
        {"Config": f"{image.config.digest[7:]}.json", "RepoTags": tags, "Layers": layer_paths}
    ]
    entries.append(TarEntry("manifest.json", json.dumps(manifest).encode()))
    return entries
