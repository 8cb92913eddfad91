"""A container as the daemon keeps it: its configuration, its state, where its files are.

:class:`ContainerRecord` is mutable and lives in the service's memory; :meth:`to_json` is
what the metadata database stores (the ``record`` column) and :func:`record_from_json`
rebuilds it after a daemon restart. The configuration is stored as the create request was
sent plus the image's config, and parsed again on load, so the stored form never drifts
from what ``parse_create_request`` and ``merge_image_config`` mean.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from declarun.daemon.containers.config.hostconfig import HostConfig
from declarun.daemon.containers.config.imageconfig import ImageConfig, merge_image_config
from declarun.daemon.containers.config.mountspec import parse_mounts
from declarun.daemon.containers.config.request import ContainerConfig, parse_create_request
from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import OciRuntime

__all__ = [
    "RECORD_VERSION",
    "ContainerRecord",
    "ContainerState",
    "format_time",
    "record_from_json",
]

RECORD_VERSION = 1
_ZERO_TIME = "0001-01-01T00:00:00Z"
# Bounds only the NanoCpus check when a stored request is parsed again on another machine.
_ANY_CPU_COUNT = 1 << 16


def format_time(time_ns: int) -> str:
    """Go's RFC3339Nano in UTC (trailing zeros of the fraction dropped); 0 is Go's zero time."""
    if time_ns <= 0:
        return _ZERO_TIME
    seconds, nanos = divmod(time_ns, 1_000_000_000)
    base = datetime.fromtimestamp(seconds, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S")
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{base}.{fraction}Z" if fraction else f"{base}Z"


@dataclass
class ContainerState:
    """Docker's ``State`` of a container. Times are nanoseconds since the epoch (0: never).

    ``status`` is derived the way dockerd's ``StateString`` derives it.
    """

    running: bool = False
    paused: bool = False
    restarting: bool = False
    oom_killed: bool = False
    dead: bool = False
    removal_in_progress: bool = False
    pid: int = 0
    conmon_pid: int = 0
    exit_code: int = 0
    error: str = ""
    started_at: int = 0
    finished_at: int = 0
    #: ``State.Health`` as JSON (Status, FailingStreak, Log), owned by the health checker.
    health: dict[str, Any] | None = None
    #: Stopped by the user (``unless-stopped`` and ``always`` do not restart it).
    manually_stopped: bool = False
    restart_count: int = 0

    @property
    def status(self) -> str:
        """``created``, ``running``, ``paused``, ``restarting``, ``removing``, ``exited``, ``dead``.

        During a restart policy's back-off the state is ``restarting`` with ``running``
        false (dockerd keeps ``Running`` true then; ``Status`` is the same).
        """
        if self.restarting:
            return "restarting"
        if self.running:
            return "paused" if self.paused else "running"
        if self.removal_in_progress:
            return "removing"
        if self.dead:
            return "dead"
        return "created" if self.started_at == 0 else "exited"

    @property
    def listed(self) -> bool:
        """Whether ``docker ps`` without ``--all`` shows it (running, or restarting)."""
        return self.running or self.restarting

    # -- transitions (dockerd's SetRunning, SetStopped, ...); the caller persists ------

    def set_running(self, pid: int, conmon_pid: int, started_at: int) -> None:
        """The user process runs: clears the last exit, the error and the user's stop."""
        self.running, self.paused, self.restarting = True, False, False
        self.pid, self.conmon_pid = pid, conmon_pid
        self.started_at, self.exit_code, self.error = started_at, 0, ""
        self.oom_killed = self.manually_stopped = False

    def set_exited(self, exit_code: int, finished_at: int, oom_killed: bool) -> None:
        """The run ended (``finished_at`` never before ``started_at``: exit files' mtimes
        are coarse)."""
        self.running = self.paused = self.restarting = False
        self.pid = self.conmon_pid = 0
        self.exit_code = exit_code
        self.finished_at = max(finished_at, self.started_at)
        self.oom_killed = oom_killed

    def set_start_failed(self, error: str, exit_code: int) -> None:
        """A start failed: the error and the exit code Docker records for it."""
        self.error, self.exit_code = error, exit_code

    def set_stopped_by_user(self) -> None:
        """``docker stop``/``kill``: no restart policy brings it back, none is pending."""
        self.manually_stopped = True
        self.restarting = False

    def to_json(self) -> dict[str, Any]:
        """The stored form (field names as in this class)."""
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, doc: dict[str, Any]) -> ContainerState:
        """Read the stored form, ignoring fields a newer daemon may have added."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in doc.items() if k in names})

    def to_inspect(self) -> dict[str, Any]:
        """``State`` of ``GET /containers/{id}/json``."""
        out: dict[str, Any] = {
            "Status": self.status,
            "Running": self.running,
            "Paused": self.paused,
            "Restarting": self.restarting,
            "OOMKilled": self.oom_killed,
            "Dead": self.dead,
            "Pid": self.pid,
            "ExitCode": self.exit_code,
            "Error": self.error,
            "StartedAt": format_time(self.started_at),
            "FinishedAt": format_time(self.finished_at),
        }
        if self.health is not None:
            out["Health"] = self.health
        return out


@dataclass
class ContainerRecord:
    """One container: identity, configuration, state and file locations."""

    id: str
    name: str
    created_ns: int
    image_id: str
    #: The chain ID of the image's top layer (None for an image without layers).
    chain_id: str | None
    #: The create request body as sent and the image's ``config`` object.
    request: dict[str, Any]
    image_config: dict[str, Any]
    config: ContainerConfig
    host_config: HostConfig
    layout: MonitorLayout
    runtime: OciRuntime
    state: ContainerState = field(default_factory=ContainerState)
    #: Target path -> volume name, for every ``volume`` mount (anonymous ones named at create).
    volume_names: dict[str, str] = field(default_factory=dict)
    #: Target path -> host directory the mount resolver gave at the last start.
    volume_paths: dict[str, str] = field(default_factory=dict)
    #: Mounts taken over from the ``VolumesFrom`` containers at create, as ``Mounts``
    #: objects (the sources may be gone since; the mounts stay, as in Docker).
    inherited_mounts: list[dict[str, Any]] = field(default_factory=list)
    #: Networks the container was disconnected from although its ``NetworkMode`` names
    #: them (IDs): it stays off them, at later starts too, until connected again.
    detached_networks: list[str] = field(default_factory=list)
    #: The mounted root filesystem while the container runs (None otherwise).
    rootfs_path: Path | None = None
    #: Exec sessions of this container (kept by the exec area; not persisted).
    exec_ids: list[str] = field(default_factory=list)

    @property
    def bundle_dir(self) -> Path:
        """The OCI bundle: ``config.json``, conmon's files, the log, the /etc files."""
        return self.layout.bundle

    @property
    def short_id(self) -> str:
        """The first 12 hex digits of the id."""
        return self.id[:12]

    @property
    def image_ref(self) -> str:
        """The image as the create request named it (``Config.Image``)."""
        return self.config.image

    def etc_file(self, name: str) -> Path:
        """A daemon-managed file (``hosts``, ``resolv.conf``, ``hostname``) in the bundle."""
        return self.bundle_dir / name

    def to_json(self) -> dict[str, Any]:
        """The ``record`` column of the metadata database."""
        return {
            "version": RECORD_VERSION,
            "id": self.id,
            "name": self.name,
            "created_ns": self.created_ns,
            "image_id": self.image_id,
            "chain_id": self.chain_id,
            "request": self.request,
            "image_config": self.image_config,
            "runtime": self.runtime.name,
            "state": self.state.to_json(),
            "volume_names": self.volume_names,
            "volume_paths": self.volume_paths,
            "inherited_mounts": self.inherited_mounts,
            "detached_networks": self.detached_networks,
        }


def effective_config(
    cid: str,
    name: str,
    request: dict[str, Any],
    image_config: dict[str, Any],
    inherited_mounts: list[dict[str, Any]] | None = None,
) -> tuple[ContainerConfig, HostConfig]:
    """The merged configuration of a stored request (hostname defaulted to the short id),
    with the mounts ``VolumesFrom`` gave at create after the container's own.

    Bind sources are not checked again: a stored container stays loadable even when a host
    directory it binds was removed meanwhile (its start then fails, as Docker's does).
    """
    del name  # checked at create and rename; a stored record must stay loadable
    parsed = parse_create_request(request, path_exists=lambda _path: True, cpu_count=_ANY_CPU_COUNT)
    config = merge_image_config(parsed.config, ImageConfig.from_json(image_config))
    if not config.hostname:
        config = config.with_hostname(cid[:12])
    host_config = parsed.host_config
    if inherited_mounts:
        extra = parse_mounts(inherited_mounts, path_exists=lambda _path: True)
        host_config = dataclasses.replace(host_config, mounts=host_config.mounts + tuple(extra))
    return config, host_config


def record_from_json(
    doc: dict[str, Any], *, layout: MonitorLayout, runtime: OciRuntime
) -> ContainerRecord:
    """Rebuild a record from its stored form (``KeyError``/``ValueError`` if damaged)."""
    cid, name = str(doc["id"]), str(doc["name"])
    request = dict(doc["request"])
    image_config = dict(doc.get("image_config") or {})
    inherited = list(doc.get("inherited_mounts") or [])
    config, host_config = effective_config(cid, name, request, image_config, inherited)
    return ContainerRecord(
        id=cid,
        name=name,
        created_ns=int(doc["created_ns"]),
        image_id=str(doc["image_id"]),
        chain_id=doc.get("chain_id"),
        request=request,
        image_config=image_config,
        config=config,
        host_config=host_config,
        layout=layout,
        runtime=runtime,
        state=ContainerState.from_json(dict(doc.get("state") or {})),
        volume_names=dict(doc.get("volume_names") or {}),
        volume_paths=dict(doc.get("volume_paths") or {}),
        inherited_mounts=inherited,
        detached_networks=list(doc.get("detached_networks") or []),
    )
