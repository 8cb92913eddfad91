"""The parts of a data root a check looks at, for a running daemon or a stopped one.

:class:`CheckContext` is built either from the services of the running daemon
(:meth:`CheckContext.online`: the records in memory, the daemon's own image service,
whose GC lock the storage checks take) or over a data root nobody serves
(:func:`offline_context`, which the caller must run under the data-root lock: the stores
are opened without any start-up sweep, so the check sees exactly what a crash left).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from declarun.daemon.check.host import HostFacts
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.lifecycle.store import RecordStore
from declarun.daemon.events import EventBus
from declarun.daemon.images.content import LocalStore
from declarun.daemon.images.registry import RegistryConfig
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import Metadata
from declarun.daemon.networks.cni import CniDriver
from declarun.daemon.networks.cniconf import cni_network_name
from declarun.daemon.networks.store import NetworkStore
from declarun.daemon.networks.wiring import ContainerNetworking
from declarun.daemon.snapshots import open_data_root_snapshotter
from declarun.errors import DaemonError

__all__ = ["CheckContext", "offline_context"]


@dataclass
class CheckContext:
    """What one check runs over (see the module docstring)."""

    data_root: Path
    images: ImageService
    records: RecordStore
    network_store: NetworkStore
    cni: CniDriver
    #: The running daemon's container service and networking (None: the daemon is stopped).
    containers: ContainerService | None = None
    networking: ContainerNetworking | None = None
    host: HostFacts | None = field(default=None)

    @property
    def online(self) -> bool:
        """True when the daemon that owns the data root runs this check."""
        return self.containers is not None

    @property
    def metadata(self) -> Metadata:
        """The metadata database."""
        return self.images.metadata

    @property
    def network_dir(self) -> Path:
        """``<data-root>/network``: namespaces, the CNI cache, host-local's leases."""
        return self.network_store.state_dir

    @property
    def volumes_dir(self) -> Path:
        """``<data-root>/volumes``."""
        return self.data_root / "volumes"

    def container_records(self) -> list[ContainerRecord]:
        """Every container record (the daemon's, or read from the database)."""
        return self.records.all()

    def running_ids(self) -> frozenset[str]:
        """Containers whose record says they run (paused ones included)."""
        return frozenset(r.id for r in self.container_records() if r.state.running)

    def cni_networks(self) -> frozenset[str]:
        """The CNI network names of this data root's networks (``declarun-<id>``)."""
        return frozenset(cni_network_name(r.id) for r in self.network_store.load_networks())

    @classmethod
    def of_daemon(
        cls,
        data_root: Path,
        images: ImageService,
        containers: ContainerService,
        networking: ContainerNetworking,
    ) -> CheckContext:
        """The context of the running daemon."""
        networks = networking.networks
        return cls(
            data_root=data_root,
            images=images,
            records=containers.store,
            network_store=networks.store,
            cni=networks.cni,
            containers=containers,
            networking=networking,
        )


@contextlib.contextmanager
def offline_context(data_root: Path) -> Iterator[CheckContext]:
    """The context of a data root no daemon serves (hold the data-root lock around it)."""
    if not (data_root / "metadata.db").is_file():
        raise DaemonError(f"{data_root} is not a declarund data root (no metadata.db)")
    metadata = Metadata(data_root / "metadata.db")
    try:
        images = ImageService(
            metadata,
            LocalStore(data_root / "content"),
            open_data_root_snapshotter(data_root, sweep=False),
            EventBus(),
            registry_config=RegistryConfig(),
            max_concurrent_downloads=1,
            scratch_dir=data_root,
        )
        records = RecordStore(metadata, data_root)
        records.load()
        state_dir = data_root / "network"
        yield CheckContext(
            data_root=data_root,
            images=images,
            records=records,
            network_store=NetworkStore(metadata, state_dir),
            cni=CniDriver(state_dir),
        )
    finally:
        metadata.close()
