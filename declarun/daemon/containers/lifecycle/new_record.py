"""``POST /containers/create`` up to a record: validate, find the image, merge, name.

:func:`new_record` is the part of a create that touches nothing on disk; the service then
prepares the writable layer and stores the record. ``NetworkMode`` is checked here for its
form only (``bridge``, ``host``, ``none``, ``container:<id>`` or a network name); whether
the network or container exists is the networking's check
(:meth:`~declarun.daemon.containers.lifecycle.networking.ContainerNetworking.validate`).
"""

from __future__ import annotations

import copy
import secrets
import socket
import time
from collections.abc import Mapping
from typing import Any, Protocol

from declarun.daemon.containers.config.hostconfig import HostConfig
from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.config.request import parse_create_request
from declarun.daemon.containers.lifecycle.record import ContainerRecord, effective_config
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.metadata import Image
from declarun.errdefs import InvalidArgument, NotFound

__all__ = ["BUILTIN_NETWORK_MODES", "ImageSource", "inherited_mounts", "new_record"]

BUILTIN_NETWORK_MODES = ("none", "host", "bridge", "default")


class ImageSource(Protocol):
    """What the container service needs from the image service."""

    def resolve(self, name: str) -> Image:
        """The image ``name`` refers to; NotFound ``No such image: name`` otherwise."""
        ...

    def config_document(self, image: Image) -> dict[str, Any]:
        """The image's config JSON."""
        ...

    def ensure_snapshot(self, image: Image) -> None:
        """Make sure the image's layers are applied as snapshots (blocking)."""
        ...

    def size_of(self, image_id: str) -> int:
        """Bytes of the image ``image_id`` (0 when there is no such image)."""
        ...


def _with_runtime(body: Mapping[str, Any], default_runtime: str) -> dict[str, Any]:
    request: dict[str, Any] = copy.deepcopy(dict(body))
    host = request.get("HostConfig")
    if not isinstance(host, dict):
        host = {}
        request["HostConfig"] = host
    if not host.get("Runtime"):
        host["Runtime"] = default_runtime
    return request


def _network_mode_from_endpoints(request: dict[str, Any]) -> None:
    """Without a ``NetworkMode``, a container named in ``EndpointsConfig`` joins those only.

    Docker attaches such a container to the listed networks and not to its default bridge;
    making the first listed network the mode gives the same attachments (the primary one,
    which carries the published ports, being the first listed), and keeps the choice in
    the stored request, so a later ``network connect`` does not change it.
    """
    host = request["HostConfig"]
    if host.get("NetworkMode") not in (None, "", "default"):
        return
    networking = request.get("NetworkingConfig")
    endpoints = networking.get("EndpointsConfig") if isinstance(networking, dict) else None
    if isinstance(endpoints, dict) and endpoints:
        host["NetworkMode"] = next(iter(endpoints))


def new_record(
    body: Any,
    *,
    name: str,
    cid: str,
    images: ImageSource,
    store: RecordStore,
    default_runtime: str,
) -> tuple[ContainerRecord, Image]:
    """A record for a validated create request (nothing stored yet).

    Raises :class:`InvalidCreateRequest` for a bad request, NotFound for a missing image.
    """
    parsed = parse_create_request(body, name=name)
    network_mode = parsed.host_config.network_mode
    if network_mode.startswith("container:") and not network_mode.partition(":")[2]:
        raise InvalidArgument("invalid network mode: container: needs a container name or id")
    image = images.resolve(parsed.config.image)
    document = images.config_document(image)
    image_config = document.get("config") if isinstance(document.get("config"), dict) else {}
    request = _with_runtime(body, default_runtime)
    _network_mode_from_endpoints(request)
    runtime = store.runtime(str(request["HostConfig"]["Runtime"]))
    inherited = inherited_mounts(parsed.host_config, store)
    config, host_config = effective_config(cid, parsed.name, request, image_config or {}, inherited)
    if host_config.network_mode == "host" and not parsed.config.hostname:
        config = config.with_hostname(socket.gethostname())
    layers = image.record.layers
    rec = ContainerRecord(
        id=cid,
        name=parsed.name,
        created_ns=time.time_ns(),
        image_id=image.id,
        chain_id=layers[-1].chain_id if layers else None,
        request=request,
        image_config=image_config or {},
        config=config,
        host_config=host_config,
        layout=store.layout_for(cid),
        runtime=runtime,
        inherited_mounts=inherited,
    )
    _name_anonymous_volumes(rec)
    return rec, image


def inherited_mounts(host_config: HostConfig, store: RecordStore) -> list[dict[str, Any]]:
    """The mounts ``VolumesFrom`` takes over, as ``Mounts`` objects (Docker's rules).

    Every volume and bind mount of each named container (its image volumes too), in order,
    except where this container already mounts something, or an earlier entry did; the
    mode (``ro``/``rw``) overrides the source's when given. An unknown container is a bad
    parameter (400 ``No such container: x``), as dockerd answers.
    """
    taken = {mount.target for mount in host_config.mounts}
    out: list[dict[str, Any]] = []
    for entry in host_config.volumes_from:
        ref, _, mode = entry.partition(":")
        try:
            source = store.lookup(ref)
        except NotFound as exc:  # dockerd answers this one as a bad parameter
            raise InvalidArgument(str(exc)) from None
        modes = set(mode.split(",")) if mode else set()
        for target, mount in _source_mounts(source):
            if target in taken:
                continue
            taken.add(target)
            read_only = "ro" in modes if modes & {"ro", "rw"} else mount.read_only
            if mount.type == "bind":
                out.append({"Type": "bind", "Source": mount.source, "Target": target,
                            "ReadOnly": read_only,
                            "BindOptions": {"Propagation": mount.propagation}})  # fmt: skip
            else:
                name = source.volume_names.get(target) or mount.source
                out.append({"Type": "volume", "Source": name, "Target": target,
                            "ReadOnly": read_only})  # fmt: skip
    return out


def _source_mounts(source: ContainerRecord) -> list[tuple[str, MountSpec]]:
    mounts = [(m.target, m) for m in source.host_config.mounts if m.type != "tmpfs"]
    covered = {target for target, _ in mounts}
    for target in source.config.volumes:
        if target not in covered:
            mounts.append((target, MountSpec(type="volume", target=target)))
    return mounts


def _name_anonymous_volumes(rec: ContainerRecord) -> None:
    """Give every anonymous volume (and image VOLUME) a fixed random name now."""
    covered = set()
    for mount in rec.host_config.mounts:
        covered.add(mount.target)
        if mount.type == "volume":
            rec.volume_names[mount.target] = mount.source or secrets.token_hex(32)
    for target in rec.config.volumes:
        if target not in covered:
            rec.volume_names[target] = secrets.token_hex(32)
