"""The volume service: what ``/volumes`` does, and volumes as container mounts.

One :class:`VolumeService` per daemon, over the local driver's
:class:`~declarun.daemon.volumes.store.VolumeStore`. It publishes the ``volume`` events
(``create``, ``destroy``, ``prune``) and holds dockerd's rules:

* **list** filters: ``name`` (a regular expression, so also a substring), ``driver``,
  ``label`` and ``dangling`` (used by no container);
* **prune** removes unused volumes -- only anonymous ones unless the ``all=true`` filter is
  given (API >= 1.42, as dockerd; the caller says which default its API version has) --
  narrowed by ``label`` and ``label!``;
* **mounts**: the container service resolves ``volume`` mounts through
  :meth:`VolumeService.resolve_mount`: a volume that does not exist yet is created, as
  ``docker run -v name:/x`` does, anonymous when its name is a generated one (the container
  service gives anonymous volumes a random 64-hex name at create); on container removal
  with ``v`` (``docker rm -v``, ``--rm``) :meth:`VolumeService.container_removed` removes
  the container's anonymous volumes that no other container uses.

Which containers use a volume is a query of the metadata database (the volumes the
container records mount), through the store.
Copy-up (Docker fills a new, empty volume with what the image has at the mount target) is
not done: the resolver runs before the container's root is mounted. Methods block (file
system, ``mount``): call them from a worker thread, except ``container_removed`` and
``resolve_mount``, which the container service calls where it needs them.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.events import EventBus
from declarun.daemon.filters import Filters
from declarun.daemon.volumes.store import ANONYMOUS_LABEL, Volume, VolumeStore, disk_usage
from declarun.errdefs import Conflict, InvalidArgument, NotFound, SystemFailure

__all__ = [
    "LIST_FILTERS",
    "PRUNE_FILTERS",
    "VolumePrune",
    "VolumeService",
    "bool_filter",
    "name_matches",
]

log = logging.getLogger("declarun.daemon.volumes")

LIST_FILTERS = ("name", "label", "dangling", "driver")
PRUNE_FILTERS = ("label", "label!", "all")
_GENERATED = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class VolumePrune:
    """What a prune removed: the volume names and the bytes they took."""

    deleted: list[str]
    space_reclaimed: int


def bool_filter(filters: Filters, name: str) -> bool | None:
    """A boolean filter (``dangling``, ``all``): None when absent, InvalidArgument if a value
    is not a boolean (values are a set: give one)."""
    values = filters.get(name)
    if not values:
        return None
    wanted: bool | None = None
    for value in values:
        if value.lower() in ("true", "1"):
            wanted = True
        elif value.lower() in ("false", "0"):
            wanted = False
        else:
            raise InvalidArgument(f"invalid filter '{name}={value}'")
    return wanted


def name_matches(filters: Filters, name: str) -> bool:
    """The ``name`` filter: dockerd matches names as regular expressions (and so substrings)."""
    values = filters.get("name")
    return not values or any(_search(v, name) for v in values)


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return pattern in text


def _labels_exclude(filters: Filters, labels: Mapping[str, str]) -> bool:
    """``label!`` filters: true when one of them matches (the volume is left alone)."""
    for value in filters.get("label!"):
        key, has_value, wanted = value.partition("=")
        if key in labels and (not has_value or labels[key] == wanted):
            return True
    return False


class VolumeService:
    """The daemon's volumes (see the module docstring)."""

    def __init__(self, store: VolumeStore, events: EventBus) -> None:
        self.store = store
        self.events = events

    # -- the /volumes operations ----------------------------------------------------------

    def get(self, name: str) -> Volume:
        """Volume ``name``; NotFound ``get NAME: no such volume``."""
        return self.store.get(name)

    def list(self, filters: Filters) -> list[Volume]:
        """The volumes ``docker volume ls`` shows with these filters, by name."""
        filters.validate(LIST_FILTERS)
        dangling = bool_filter(filters, "dangling")
        found = []
        for volume in self.store.list():
            if not name_matches(filters, volume.name):
                continue
            if not filters.exact_match("driver", volume.driver):
                continue
            if not filters.match_kv_list("label", dict(volume.labels)):
                continue
            if dangling is not None and bool(self.store.users(volume.name)) == dangling:
                continue
            found.append(volume)
        return found

    def create(
        self,
        name: str = "",
        *,
        driver: str = "local",
        options: Mapping[str, str] | None = None,
        labels: Mapping[str, str] | None = None,
    ) -> Volume:
        """Create a volume (a random name when ``name`` is empty); an existing one is
        returned unchanged, as dockerd does. Publishes ``create`` for a new one."""
        volume, new = self.store.create(name, driver=driver, options=options, labels=labels)
        if new:
            self._publish(volume.name, "create", volume.driver)
        return volume

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove a volume; Conflict while in use, NotFound if missing (unless ``force``)."""
        existed = self.store.find(name)
        self.store.remove(name, force=force)
        if existed is not None:
            self._publish(existed.name, "destroy", existed.driver)

    def prune(self, filters: Filters, *, all_by_default: bool) -> VolumePrune:
        """Remove unused volumes the filters select (anonymous ones only, unless ``all`` or
        ``all_by_default``); publishes ``destroy`` for each and ``prune``."""
        filters.validate(PRUNE_FILTERS)
        everything = bool_filter(filters, "all")
        if everything is None:
            everything = all_by_default
        deleted: list[str] = []
        reclaimed = 0
        for volume in self.store.list():
            if not everything and not volume.anonymous:
                continue
            labels = dict(volume.labels)
            if not filters.match_kv_list("label", labels) or _labels_exclude(filters, labels):
                continue
            if self.store.users(volume.name):
                continue
            size = disk_usage(volume)
            try:
                self.store.remove(volume.name)
            except (Conflict, NotFound):  # taken into use or removed meanwhile: leave it
                continue
            except SystemFailure as exc:  # one volume the host cannot delete: prune the rest
                log.warning("pruning volume %s: %s", volume.name, exc)
                continue
            deleted.append(volume.name)
            reclaimed += size
            self._publish(volume.name, "destroy", volume.driver)
        self.events.publish("volume", "prune", "", {"reclaimed": str(reclaimed)})
        return VolumePrune(deleted, reclaimed)

    def usage(self, volume: Volume) -> tuple[int, int]:
        """``/system/df``'s ``UsageData`` of a volume: bytes on disk and containers using it."""
        return disk_usage(volume), len(self.store.users(volume.name))

    # -- volumes as container mounts -------------------------------------------------------

    def resolve_mount(self, spec: MountSpec) -> Path:
        """The host directory of a ``volume`` mount, creating the volume on first use."""
        name = spec.source
        if not name:
            raise SystemFailure("a volume mount without a volume name")
        try:
            self.store.get(name)
        except NotFound:
            labels = dict(spec.volume_labels)
            if _GENERATED.fullmatch(name):
                labels.setdefault(ANONYMOUS_LABEL, "")
            self.store.create(name, options=dict(spec.volume_options), labels=labels)
            self._publish(name, "create", "local")
        return self.store.mount(name, spec.subpath)

    def container_removed(self, record: ContainerRecord, remove_volumes: bool) -> None:
        """After ``docker rm -v``: remove the container's anonymous volumes nobody else uses."""
        if not remove_volumes:
            return
        for name in dict(record.volume_names).values():
            try:
                volume = self.store.get(name)
                if volume.anonymous and not self.store.users(name):
                    self.store.remove(name)
                    self._publish(name, "destroy", "local")
            except (NotFound, Conflict):  # gone already, or another container took it up
                continue
            except SystemFailure as exc:  # the container is gone either way
                log.warning("removing volume %s of container %s: %s", name, record.id[:12], exc)

    def _publish(self, name: str, action: str, driver: str) -> None:
        self.events.publish("volume", action, name, {"driver": driver})
