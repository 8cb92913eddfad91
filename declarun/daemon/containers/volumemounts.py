"""Volumes as container mounts: the volume store hooked to the container service.

:func:`volume_store` opens the :class:`~declarun.daemon.volumes.VolumeStore` under
``<data-root>/volumes``; :func:`connect_volume_store` (idempotent; called when the
container service is opened, before its containers are restored) hooks it to the service:

* registers the mount resolver: a ``volume`` mount names its volume (the service gives
  anonymous ones a generated 64-hex name at create); a volume that does not exist yet is
  created, as ``docker run -v name:/x`` does, anonymous when its name is such a generated
  one (it then carries :data:`~declarun.daemon.volumes.ANONYMOUS_LABEL`);
* tells the store which containers use a volume (``rec.volume_names`` of every record);
* on container removal with ``v`` (``docker rm -v``, ``--rm``), removes the container's
  anonymous volumes that no other container uses, as dockerd does.

Copy-up (Docker fills a new, empty volume with what the image has at the mount target)
is not done: the resolver runs before the container's root is mounted.
"""

from __future__ import annotations

import contextlib
import logging
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from declarun.daemon.containers.mountspec import MountSpec
from declarun.daemon.context import DaemonContext
from declarun.daemon.volumes import ANONYMOUS_LABEL, VolumeStore
from declarun.errdefs import Conflict, NotFound, SystemFailure

if TYPE_CHECKING:
    from declarun.daemon.containers.service import ContainerService

__all__ = ["connect_volume_store", "volume_store"]

log = logging.getLogger("declarun.daemon.volumes")

_GENERATED = re.compile(r"[0-9a-f]{64}")
_STORE_ATTR = "_declarun_volume_store"
_HOOKED_ATTR = "_declarun_volumes_hooked"


def volume_store(ctx: DaemonContext) -> VolumeStore:
    """The daemon's volume store (opened on first use)."""
    store: VolumeStore | None = getattr(ctx, _STORE_ATTR, None)
    if store is None:
        store = VolumeStore(ctx.data_root / "volumes")
        setattr(ctx, _STORE_ATTR, store)
    return store


def connect_volume_store(ctx: DaemonContext, service: ContainerService) -> VolumeStore:
    """Open the store and connect it with ``service`` (see module docstring)."""
    store = volume_store(ctx)
    if getattr(ctx, _HOOKED_ATTR, False):
        return store
    setattr(ctx, _HOOKED_ATTR, True)

    def resolve(spec: MountSpec) -> Path:
        name = spec.source
        if not name:
            raise SystemFailure("a volume mount without a volume name")
        try:
            store.get(name)
        except NotFound:
            labels = dict(spec.volume_labels)
            if _GENERATED.fullmatch(name):
                labels.setdefault(ANONYMOUS_LABEL, "")
            store.create(name, options=dict(spec.volume_options), labels=labels)
            ctx.events.publish("volume", "create", name, {"driver": "local"})
        return store.mount(name, spec.subpath)

    def users(name: str) -> list[str]:
        return [rec.id for rec in service.list() if name in dict(rec.volume_names).values()]

    def removed(record: Any, remove_volumes: bool) -> None:
        if not remove_volumes:
            return
        for name in dict(record.volume_names).values():
            with contextlib.suppress(NotFound, Conflict, SystemFailure):
                volume = store.get(name)
                if volume.anonymous and not users(name):
                    store.remove(name)
                    ctx.events.publish("volume", "destroy", name, {"driver": "local"})

    service.register_mount_resolver(resolve)
    store.set_users(users)
    service.add_remove_listener(removed)
    return store
