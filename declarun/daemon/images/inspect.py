"""The JSON documents of the image API: ``ImageSummary``, ``ImageInspect``, history.

Shapes follow the Swagger definitions of API v1.45. Values come from the metadata record
and the image config (read from the content store, so these functions block: call them
from a worker thread). Names are shown in their familiar form (``busybox:latest``), as
dockerd shows them.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from declarun.daemon.images.service import ImageService, familiar
from declarun.daemon.metadata import Image
from declarun.errors import ContentError

__all__ = [
    "ZERO_TIME",
    "created_unix",
    "history_document",
    "image_config",
    "inspect_document",
    "legacy_container_fields",
    "summary_document",
    "with_null_fields",
]

ZERO_TIME = "0001-01-01T00:00:00Z"
# Container-config fields an image config may carry, copied when present.
_CONFIG_FIELDS = (
    "User",
    "ExposedPorts",
    "Env",
    "Cmd",
    "Healthcheck",
    "ArgsEscaped",
    "Volumes",
    "WorkingDir",
    "Entrypoint",
    "OnBuild",
    "Labels",
    "StopSignal",
    "StopTimeout",
    "Shell",
)


def image_config(service: ImageService, image: Image) -> dict[str, Any]:
    """The image's config JSON (``{}`` if it cannot be read)."""
    try:
        doc = json.loads(service.store.read(image.record.config.digest))
    except (ContentError, ValueError):
        return {}
    return doc if isinstance(doc, dict) else {}


def _parse_time(text: Any) -> datetime | None:
    if not isinstance(text, str) or not text:
        return None
    value = text.strip()
    if value.endswith("Z"):
        value = value[:-1] + "+00:00"
    # Go writes nanoseconds; Python parses at most microseconds.
    if "." in value:
        head, _, rest = value.partition(".")
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6]}{zone}"
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def created_unix(image: Image, config: dict[str, Any] | None = None) -> int:
    """The image's creation time in Unix seconds (0 when unknown)."""
    parsed = _parse_time(image.record.created or (config or {}).get("created"))
    return int(parsed.timestamp()) if parsed is not None else 0


def _rfc3339(text: Any) -> str:
    parsed = _parse_time(text)
    if parsed is None:
        return ZERO_TIME
    return parsed.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace(".000000Z", "Z")


def _repo_digests(image: Image) -> list[str]:
    return [familiar(name) for name in image.digests]


def summary_document(image: Image, config: dict[str, Any], parent: str = "") -> dict[str, Any]:
    """One entry of ``GET /images/json`` (Swagger ``ImageSummary``); ``parent`` is the image
    it was built on (``ParentId``), for an image the builder made."""
    labels = (config.get("config") or {}).get("Labels")
    return {
        "Id": image.id,
        "ParentId": parent,
        "RepoTags": [familiar(name) for name in image.tags],
        "RepoDigests": _repo_digests(image),
        "Created": created_unix(image, config),
        "Size": image.record.size,
        "SharedSize": -1,
        "Labels": labels if isinstance(labels, dict) else {},
        "Containers": -1,
    }


def _container_config(config: dict[str, Any]) -> dict[str, Any]:
    raw = config.get("config")
    raw = raw if isinstance(raw, dict) else {}
    out: dict[str, Any] = {
        "Hostname": "",
        "Domainname": "",
        "User": "",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Image": "",
        "WorkingDir": "",
    }
    for name in _CONFIG_FIELDS:
        value = raw.get(name)
        if value is not None:
            out[name] = value
    return out


def with_null_fields(config: dict[str, Any]) -> dict[str, Any]:
    """``config`` with dockerd's ``null`` for the fields the image has none of (the Swagger
    file of API 1.45 documents them as objects, so they are set for older clients only)."""
    for name in ("Volumes", "Entrypoint", "OnBuild", "Labels"):
        config.setdefault(name, None)
    return config


def legacy_container_fields(service: ImageService, image: Image) -> dict[str, Any]:
    """``Container`` and ``ContainerConfig`` of the image (shown before API 1.45): the
    container a commit was made from and its config, else empty ones as dockerd shows."""
    config = image_config(service, image)
    container = config.get("container")
    container_config = config.get("container_config")
    raw = container_config if isinstance(container_config, dict) else {}
    shown = with_null_fields(_container_config({"config": raw}))
    for name in ("Env", "Cmd"):
        shown.setdefault(name, None)
    return {"Container": container if isinstance(container, str) else "", "ContainerConfig": shown}


def _graph_driver(service: ImageService, image: Image) -> dict[str, Any]:
    layers = image.record.layers
    if not layers:
        return {"Name": service.driver_name, "Data": {}}
    root = service.snapshotter.root
    dirs = [str(root / layer.chain_id.removeprefix("sha256:") / "fs") for layer in layers]
    if service.snapshotter.driver == "overlay":
        data = {"UpperDir": dirs[-1]}
        if len(dirs) > 1:
            data["LowerDir"] = ":".join(reversed(dirs[:-1]))
    else:
        data = {"Dir": dirs[-1]}
    return {"Name": service.driver_name, "Data": data}


def inspect_document(service: ImageService, image: Image) -> dict[str, Any]:
    """``GET /images/{name}/json`` (Swagger ``ImageInspect``)."""
    config = image_config(service, image)
    record = image.record
    doc: dict[str, Any] = {
        "Id": image.id,
        "RepoTags": [familiar(name) for name in image.tags],
        "RepoDigests": _repo_digests(image),
        "Parent": service.metadata.image_parent(image.id) or "",
        "Comment": config.get("comment") if isinstance(config.get("comment"), str) else "",
        "Created": _rfc3339(record.created or config.get("created")),
        "DockerVersion": str(config.get("docker_version") or ""),
        "Author": str(config.get("author") or ""),
        "Config": _container_config(config),
        "Architecture": record.platform.architecture,
        "Os": record.platform.os,
        "Size": record.size,
        "GraphDriver": _graph_driver(service, image),
        "RootFS": {"Type": "layers", "Layers": [layer.diff_id for layer in record.layers]},
        "Metadata": {"LastTagTime": ZERO_TIME},
    }
    if record.platform.variant:
        doc["Variant"] = record.platform.variant
    if isinstance(config.get("os.version"), str):
        doc["OsVersion"] = config["os.version"]
    return doc


def history_document(service: ImageService, image: Image) -> list[dict[str, Any]]:
    """``GET /images/{name}/history``: newest entry first, as ``docker history`` shows."""
    config = image_config(service, image)
    layers = list(image.record.layers)
    sizes = []
    for layer in layers:
        row = service.metadata.get_layer(layer.chain_id)
        sizes.append(row.size if row is not None else layer.blob.size)
    raw_history = config.get("history")
    history = (
        [h for h in raw_history if isinstance(h, dict)] if isinstance(raw_history, list) else []
    )
    if not history:
        history = [{"created": config.get("created")} for _ in layers] or [{}]
    items: list[dict[str, Any]] = []
    layer_index = 0
    for entry in history:
        size = 0
        if not entry.get("empty_layer") and layer_index < len(sizes):
            size = sizes[layer_index]
            layer_index += 1
        created = _parse_time(entry.get("created"))
        items.append(
            {
                "Id": "<missing>",
                "Created": int(created.timestamp()) if created else 0,
                "CreatedBy": str(entry.get("created_by") or ""),
                "Tags": [],
                "Size": size,
                "Comment": str(entry.get("comment") or ""),
            }
        )
    items.reverse()
    items[0]["Id"] = image.id
    items[0]["Tags"] = [familiar(name) for name in image.tags]
    return items
