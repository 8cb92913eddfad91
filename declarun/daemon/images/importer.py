"""``docker import``: a root-filesystem tarball becomes a one-layer image.

The request body (a tar, plain or gzip/zstd/bzip2/xz compressed) streams into the
content store as the layer blob -- gzip and zstd as they come, bzip2 and xz decompressed
on the way, since OCI has no media type for them. The layer is unpacked into a snapshot
(which computes its diff ID), then an OCI config and manifest are written and the image
registered, all under one lease. ``changes`` are Dockerfile instructions applied to the
config (``CMD ["sh"]``, ``ENV A=b``, ``WORKDIR /x``, ``ENTRYPOINT``, ``LABEL``,
``EXPOSE``, ``USER``, ``VOLUME``, ``STOPSIGNAL``, ``ONBUILD``, ``HEALTHCHECK``).
"""

from __future__ import annotations

import asyncio
import bz2
import json
import lzma
import shlex
import time
import uuid
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from declarun.daemon.images import mediatypes
from declarun.daemon.images.content import Descriptor
from declarun.daemon.images.layerstream import GZIP_MAGIC, ZSTD_MAGIC
from declarun.daemon.images.platform import Platform, host_platform
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import ImageLayer, ImageRecord, Layer, LeaseResource
from declarun.errdefs import InvalidArgument
from declarun.reference import ImageReference

__all__ = ["ImportRequest", "apply_changes", "import_image"]

_BZIP2_MAGIC = b"BZh"
_XZ_MAGIC = b"\xfd7zXZ\x00"
_LEASE_TTL = 24 * 3600.0


@dataclass(frozen=True)
class ImportRequest:
    """What ``POST /images/create?fromSrc=-`` asked for."""

    name: ImageReference | None
    changes: tuple[str, ...] = ()
    message: str = ""
    platform: Platform | None = None


def _json_or_shell(rest: str, keyword: str) -> list[str]:
    text = rest.strip()
    if text.startswith("["):
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):
            value = None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return list(value)
    if not text:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    return ["/bin/sh", "-c", text]


def _pairs(rest: str, keyword: str) -> list[tuple[str, str]]:
    try:
        words = shlex.split(rest)
    except ValueError as exc:
        raise InvalidArgument(f"{keyword}: {exc}") from None
    if not words:
        raise InvalidArgument(f"{keyword} requires at least one argument")
    if "=" not in words[0]:
        # Legacy form: ``ENV NAME value with spaces``.
        key, _, value = rest.strip().partition(" ")
        return [(key, value.strip())]
    pairs = []
    for word in words:
        key, sep, value = word.partition("=")
        if not sep or not key:
            raise InvalidArgument(f"{keyword} names must be NAME=value, not {word!r}")
        pairs.append((key, value))
    return pairs


def apply_changes(config: dict[str, Any], changes: Iterable[str]) -> dict[str, Any]:
    """Apply Dockerfile instructions to a container config (400 for anything else)."""
    out = dict(config)
    for change in changes:
        for line in change.splitlines():
            if not line.strip():
                continue
            keyword, _, rest = line.strip().partition(" ")
            keyword = keyword.upper()
            if keyword in ("CMD", "ENTRYPOINT", "SHELL"):
                out[{"CMD": "Cmd", "ENTRYPOINT": "Entrypoint", "SHELL": "Shell"}[keyword]] = (
                    _json_or_shell(rest, keyword)
                )
            elif keyword == "ENV":
                env = [e for e in out.get("Env", []) if isinstance(e, str)]
                for key, value in _pairs(rest, keyword):
                    env = [e for e in env if e.split("=", 1)[0] != key] + [f"{key}={value}"]
                out["Env"] = env
            elif keyword == "LABEL":
                labels = dict(out.get("Labels") or {})
                labels.update(_pairs(rest, keyword))
                out["Labels"] = labels
            elif keyword == "EXPOSE":
                ports = dict(out.get("ExposedPorts") or {})
                for port in rest.split():
                    ports[port if "/" in port else f"{port}/tcp"] = {}
                out["ExposedPorts"] = ports
            elif keyword == "VOLUME":
                volumes = dict(out.get("Volumes") or {})
                paths = (
                    _json_or_shell(rest, keyword) if rest.strip().startswith("[") else rest.split()
                )
                volumes.update({p: {} for p in paths})
                out["Volumes"] = volumes
            elif keyword in ("WORKDIR", "USER", "STOPSIGNAL"):
                if not rest.strip():
                    raise InvalidArgument(f"{keyword} requires exactly one argument")
                fields = {"WORKDIR": "WorkingDir", "USER": "User", "STOPSIGNAL": "StopSignal"}
                out[fields[keyword]] = rest.strip()
            elif keyword == "ONBUILD":
                out["OnBuild"] = [*(out.get("OnBuild") or []), rest.strip()]
            elif keyword == "HEALTHCHECK":
                out["Healthcheck"] = _healthcheck(rest)
            else:
                raise InvalidArgument(f"{keyword} is not a valid change command")
    return out


def _healthcheck(rest: str) -> dict[str, Any]:
    text = rest.strip()
    if text.upper() == "NONE":
        return {"Test": ["NONE"]}
    keyword, _, command = text.partition(" ")
    if keyword.upper() != "CMD" or not command.strip():
        raise InvalidArgument("HEALTHCHECK must be NONE or CMD <command>")
    args = _json_or_shell(command, "HEALTHCHECK")
    if command.strip().startswith("["):
        return {"Test": ["CMD", *args]}
    return {"Test": ["CMD-SHELL", command.strip()]}


class _Decoder:
    """Turns the body's first bytes into a choice: keep as is, or decompress (bz2, xz)."""

    def __init__(self, head: bytes) -> None:
        self.media_type = mediatypes.OCI_LAYER
        self._inflate: Any = None
        if head.startswith(GZIP_MAGIC):
            self.media_type = mediatypes.OCI_LAYER_GZIP
        elif head.startswith(ZSTD_MAGIC):
            self.media_type = mediatypes.OCI_LAYER_ZSTD
        elif head.startswith(_BZIP2_MAGIC):
            self._inflate = bz2.BZ2Decompressor()
        elif head.startswith(_XZ_MAGIC):
            self._inflate = lzma.LZMADecompressor()

    def feed(self, chunk: bytes) -> bytes:
        if self._inflate is None:
            return chunk
        try:
            return bytes(self._inflate.decompress(chunk))
        except (OSError, EOFError, lzma.LZMAError) as exc:
            raise InvalidArgument(f"the imported archive is corrupt: {exc}") from None


async def import_image(
    service: ImageService, body: AsyncIterator[bytes], request: ImportRequest
) -> ImageRecord:
    """Store ``body`` as a layer and register the image (see the module docstring)."""
    svc, meta = service, service.metadata
    lease = await asyncio.to_thread(meta.create_lease, _LEASE_TTL)
    try:
        ref = f"import-{uuid.uuid4().hex}"
        await asyncio.to_thread(meta.add_lease_resources, lease.id, [LeaseResource("ingest", ref)])
        writer = await asyncio.to_thread(svc.store.writer, ref)
        try:
            decoder: _Decoder | None = None
            async for chunk in body:
                if decoder is None:
                    decoder = _Decoder(chunk)
                data = decoder.feed(chunk)
                if data:
                    writer.write(data)
            if decoder is None or writer.offset == 0:
                raise InvalidArgument("the imported archive is empty")
            digest = f"sha256:{writer.hasher().hexdigest()}"
            await asyncio.to_thread(
                meta.add_lease_resources, lease.id, [LeaseResource("content", digest)]
            )
            info = await asyncio.to_thread(writer.commit)
            media_type = decoder.media_type
        finally:
            writer.close()
            await asyncio.to_thread(svc.store.abort, ref, wait=False)
        return await asyncio.shield(
            asyncio.to_thread(_register, svc, lease.id, info.digest, info.size, media_type, request)
        )
    finally:
        await asyncio.shield(asyncio.to_thread(meta.delete_lease, lease.id))


def _register(
    svc: ImageService,
    lease_id: str,
    digest: str,
    size: int,
    media_type: str,
    request: ImportRequest,
) -> ImageRecord:
    with svc.store.open(digest) as blob:
        applied = svc.snapshotter.apply_layer(None, blob)
    snapshot = applied.snapshot
    svc.metadata.add_lease_resources(lease_id, [LeaseResource("snapshot", snapshot.chain_id)])
    svc.metadata.put_layer(
        Layer(snapshot.chain_id, snapshot.diff_id, None, snapshot.size, time.time())
    )
    platform = (request.platform or host_platform()).normalized()
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    config: dict[str, Any] = {
        "architecture": platform.architecture,
        "os": platform.os,
        "created": now,
        "config": apply_changes({}, request.changes),
        "rootfs": {"type": "layers", "diff_ids": [snapshot.diff_id]},
        "history": [{"created": now, "comment": request.message or "Imported from -"}],
    }
    if platform.variant:
        config["variant"] = platform.variant
    config_data = json.dumps(config, separators=(",", ":")).encode()
    config_info = svc.store.put(config_data)
    layer_desc = Descriptor(media_type, digest, size)
    manifest = {
        "schemaVersion": 2,
        "mediaType": mediatypes.OCI_MANIFEST,
        "config": {
            "mediaType": mediatypes.OCI_CONFIG,
            "digest": config_info.digest,
            "size": config_info.size,
        },
        "layers": [layer_desc.to_json()],
    }
    manifest_data = json.dumps(manifest, separators=(",", ":")).encode()
    manifest_info = svc.store.put(manifest_data)
    svc.metadata.add_lease_resources(
        lease_id,
        [
            LeaseResource("content", config_info.digest),
            LeaseResource("content", manifest_info.digest),
        ],
    )
    record = ImageRecord(
        id=config_info.digest,
        manifest=Descriptor(mediatypes.OCI_MANIFEST, manifest_info.digest, manifest_info.size),
        config=Descriptor(mediatypes.OCI_CONFIG, config_info.digest, config_info.size),
        layers=(ImageLayer(layer_desc, snapshot.diff_id, snapshot.chain_id),),
        platform=platform,
        created=now,
        size=snapshot.size,
    )
    names = [str(request.name)] if request.name is not None else []
    svc.metadata.put_image(record, names=names)
    svc.events.publish(
        "image", "import", record.id, {"name": request.name.familiar() if request.name else ""}
    )
    return record
