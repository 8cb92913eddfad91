"""Container records in memory and in the metadata database, and finding one by reference.

Each change is one transaction of :class:`~declarun.daemon.metadata.Metadata` (the record is
written whole), so a daemon killed at any moment restarts with every container exactly as
last recorded. The database's unique ``name`` column is the final word on name conflicts.

References resolve as dockerd's ``GetContainer``: a full id, then a name (with or without
its leading ``/``), then an unambiguous id prefix. Each is an index lookup, not a scan of
every record: ids and names are dict keys, and the sorted id list answers a prefix by
bisection (``docker inspect 3f2a`` costs the same with 10 or 10,000 containers). The
oldest-first order of :meth:`RecordStore.all` is kept and rebuilt only after a container
was added or deleted.

On disk, under the data root::

    containers/<id>/      the bundle: config.json, conmon's files, container.log, /etc files
    exits/<id>            conmon's exit file (one inotify watch for all)
    runtime/<name>/       the OCI runtime's state root
"""

from __future__ import annotations

import bisect
import logging
import os
from collections.abc import Callable
from pathlib import Path

from declarun.daemon.containers.lifecycle.record import ContainerRecord, record_from_json
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import DEFAULT_RUNTIMES, OciRuntime
from declarun.daemon.metadata import Container, Metadata, MetadataError
from declarun.errdefs import Conflict, InvalidArgument, NotFound
from declarun.errors import DaemonError

__all__ = ["RecordStore", "name_conflict"]

log = logging.getLogger("declarun.daemon.containers")


def name_conflict(name: str, owner: str) -> Conflict:
    """Docker's error for a name that is in use."""
    return Conflict(
        f'Conflict. The container name "/{name}" is already in use by container "{owner}". '
        "You have to remove (or rename) that container to be able to reuse that name."
    )


class RecordStore:
    """The containers of one daemon, keyed by id and by name."""

    def __init__(self, metadata: Metadata, data_root: Path) -> None:
        self.metadata = metadata
        self.data_root = data_root
        self.bundles_dir = data_root / "containers"
        self.exit_dir = data_root / "exits"
        self.bundles_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self.exit_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        self._records: dict[str, ContainerRecord] = {}
        self._names: dict[str, str] = {}
        #: Every id, sorted: an id prefix is a range of it (found by bisection).
        self._sorted_ids: list[str] = []
        #: :meth:`all`'s answer, until a record is added or deleted.
        self._ordered: list[ContainerRecord] | None = None
        self._runtimes: dict[str, OciRuntime] = {}
        #: Called after every save: state changes that happen without an exit (a stop
        #: during a restart back-off) wake ``wait?condition=not-running`` through them.
        self.save_listeners: list[Callable[[ContainerRecord], None]] = []

    # -- places --------------------------------------------------------------------

    def layout_for(self, cid: str) -> MonitorLayout:
        """Where the bundle and exit file of container ``cid`` are."""
        return MonitorLayout(bundle=self.bundles_dir / cid, exit_dir=self.exit_dir)

    def runtime(self, name: str) -> OciRuntime:
        """The OCI runtime ``name`` with its state under the data root (400 if unknown)."""
        found = self._runtimes.get(name)
        if found is None:
            if name not in DEFAULT_RUNTIMES:
                raise InvalidArgument(f"Unknown runtime specified {name}")
            found = OciRuntime.for_data_root(self.data_root, name)
            self._runtimes[name] = found
        return found

    def runtimes(self) -> list[OciRuntime]:
        """Every runtime a container could have used."""
        return [self.runtime(name) for name in DEFAULT_RUNTIMES]

    # -- lookups -------------------------------------------------------------------

    def lookup(self, ref: str) -> ContainerRecord:
        """The container ``ref`` names; NotFound (404) or InvalidArgument (ambiguous prefix)."""
        found = self._records.get(ref)
        if found is not None:
            return found
        name = ref.removeprefix("/")
        cid = self._names.get(name)
        if cid is not None:
            return self._records[cid]
        if ref and all(c in "0123456789abcdef" for c in ref):
            # The ids starting with ref are consecutive in the sorted list: look at two.
            start = bisect.bisect_left(self._sorted_ids, ref)
            matches = [i for i in self._sorted_ids[start : start + 2] if i.startswith(ref)]
            if len(matches) == 1:
                return self._records[matches[0]]
            if len(matches) > 1:
                raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def all(self) -> list[ContainerRecord]:
        """Every record, oldest first (a new list: the caller may change it)."""
        if self._ordered is None:
            self._ordered = sorted(self._records.values(), key=lambda r: (r.created_ns, r.id))
        return list(self._ordered)

    def contains(self, cid: str) -> bool:
        """Whether a container with this exact id exists."""
        return cid in self._records

    def name_owner(self, name: str) -> str | None:
        """The id of the container called ``name`` (no leading slash), if any."""
        return self._names.get(name)

    # -- changes -------------------------------------------------------------------

    def _row(self, rec: ContainerRecord) -> Container:
        return Container(
            id=rec.id,
            name=rec.name,
            image_id=rec.image_id,
            snapshot_key=rec.chain_id,
            created=rec.created_ns / 1e9,
            record=rec.to_json(),
            volumes=dict(rec.volume_names),
        )

    def add(self, rec: ContainerRecord) -> None:
        """Insert a new record; Conflict when its name is taken."""
        owner = self._names.get(rec.name)
        if owner is not None:
            raise name_conflict(rec.name, owner)
        try:
            self.metadata.put_container(self._row(rec))
        except MetadataError as exc:
            if "UNIQUE" in str(exc) and "name" in str(exc):
                raise name_conflict(rec.name, "unknown") from None
            raise DaemonError(f"cannot store container: {exc}") from None
        self._index(rec)

    def _index(self, rec: ContainerRecord) -> None:
        if rec.id not in self._records:
            bisect.insort(self._sorted_ids, rec.id)
        self._records[rec.id] = rec
        self._names[rec.name] = rec.id
        self._ordered = None

    def save(self, rec: ContainerRecord) -> None:
        """Persist the current record of an existing container."""
        if rec.id in self._records:
            self.metadata.put_container(self._row(rec))
            for listener in self.save_listeners:
                listener(rec)

    def rename(self, rec: ContainerRecord, new_name: str) -> None:
        """Give ``rec`` a new name (Conflict if taken), persisted."""
        owner = self._names.get(new_name)
        if owner is not None and owner != rec.id:
            raise name_conflict(new_name, owner)
        old = rec.name
        rec.name = new_name
        try:
            self.metadata.put_container(self._row(rec))
        except MetadataError:
            rec.name = old
            raise
        self._names.pop(old, None)
        self._names[new_name] = rec.id

    def delete(self, rec: ContainerRecord) -> None:
        """Forget a container (its files are the caller's to remove first)."""
        self.metadata.delete_container(rec.id)
        if self._records.pop(rec.id, None) is not None:
            at = bisect.bisect_left(self._sorted_ids, rec.id)
            if at < len(self._sorted_ids) and self._sorted_ids[at] == rec.id:
                del self._sorted_ids[at]
            self._ordered = None
        if self._names.get(rec.name) == rec.id:
            self._names.pop(rec.name, None)

    # -- start-up ------------------------------------------------------------------

    def load(self) -> list[ContainerRecord]:
        """Read every stored container into memory; damaged rows are logged and skipped."""
        loaded = []
        for row in self.metadata.list_containers():
            try:
                doc = dict(row.record)
                runtime = self.runtime(str(doc.get("runtime") or "runc"))
                rec = record_from_json(doc, layout=self.layout_for(row.id), runtime=runtime)
            except (KeyError, ValueError, TypeError, DaemonError) as exc:
                log.error("container %s has a damaged record, skipped: %s", row.id, exc)
                continue
            self._index(rec)
            loaded.append(rec)
        return loaded

    def orphan_bundles(self) -> list[str]:
        """Bundle directories with no record (a create interrupted by a crash)."""
        try:
            names = os.listdir(self.bundles_dir)
        except FileNotFoundError:
            return []
        return [n for n in names if n not in self._records and not n.startswith(".")]
