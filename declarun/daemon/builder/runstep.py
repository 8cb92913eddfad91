"""A ``RUN`` step: a container on the previous step's image, through the container service.

The container is created like any other (``docker ps -a`` shows it while it exists), with
Docker's default confinement, the build's network (``networkmode``, or the step's
``--network``), its resource limits, extra hosts and ``/dev/shm`` size, and the step's
mounts (:mod:`.runmounts`). Its config is dockerd's for a ``RUN``: the command as ``Cmd``
with an empty ``Entrypoint``, the step's environment, user and working directory, no
health check. Its output is read from the container's log as it is written and streamed
(standard error marked as dockerd marks it).

:func:`run_container` returns once the command exited 0, leaving the stopped container for
the caller to commit and remove; a non-zero exit is :class:`RunStepFailed`. Cancelled (the
client went away) or failed, :func:`discard_container` kills and removes it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from declarun.daemon.builder.errors import RunStepFailed
from declarun.daemon.builder.options import BuildOptions
from declarun.daemon.builder.output import CommandOutput
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.rootfs.changes import CHANGE_DELETED, Change, mount_targets
from declarun.daemon.containers.runtime.logfile import parse_line
from declarun.dockerfile import RunSpec
from declarun.errdefs import InvalidArgument, NotFound
from declarun.errors import DeclarunError

__all__ = [
    "container_body",
    "discard_container",
    "follow_output",
    "run_container",
    "without_mount_stubs",
]

log = logging.getLogger("declarun.daemon.builder")

_POLL = 0.05
_CHUNK = 1 << 16


def container_body(
    image_id: str,
    spec: RunSpec,
    argv: list[str],
    mounts: list[dict[str, Any]],
    options: BuildOptions,
) -> dict[str, Any]:
    """The ``POST /containers/create`` body of a ``RUN`` step (dockerd's run config)."""
    if spec.security not in ("", "sandbox"):
        raise InvalidArgument(f"RUN --security={spec.security} is not allowed by declarund")
    network = options.network_mode or "default"
    if spec.network in ("none", "host"):
        network = spec.network
    limits = options.resources
    host: dict[str, Any] = {
        "NetworkMode": network,
        "Mounts": mounts,
        "ExtraHosts": list(options.extra_hosts) or None,
        "Memory": limits.memory,
        "MemorySwap": limits.memory_swap,
        "CpuShares": limits.cpu_shares,
        "CpusetCpus": limits.cpuset_cpus,
        "CpuPeriod": limits.cpu_period,
        "CpuQuota": limits.cpu_quota,
    }
    if limits.shm_size:
        host["ShmSize"] = limits.shm_size
    return {
        "Image": image_id,
        "Cmd": argv,
        "Entrypoint": [""],
        "Env": list(spec.env),
        "User": spec.user,
        "WorkingDir": spec.working_dir,
        "Healthcheck": {"Test": ["NONE"]},
        "AttachStdout": True,
        "AttachStderr": True,
        "HostConfig": host,
    }


class _LogReader:
    """Reads the container's log file from where it stopped last time."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0
        self._pending = b""

    def read(self) -> list[bytes]:
        try:
            with open(self.path, "rb") as handle:
                handle.seek(self._offset)
                data = handle.read()
        except FileNotFoundError:
            return []
        self._offset += len(data)
        lines = (self._pending + data).split(b"\n")
        self._pending = lines.pop()
        return [line + b"\n" for line in lines]


async def follow_output(log_file: Path, sink: CommandOutput, stopped: asyncio.Event) -> None:
    """Stream the container's output until ``stopped`` is set and the log is drained."""
    reader = _LogReader(log_file)
    while True:
        done = stopped.is_set()
        for line in await asyncio.to_thread(reader.read):
            record = parse_line(line)
            if record is not None:
                sink.write(record.stream, record.data)
        if done:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopped.wait(), _POLL)


async def run_container(
    containers: ContainerService, record: ContainerRecord, sink: CommandOutput, command: str
) -> None:
    """Start ``record`` and stream its output until it exits; non-zero is RunStepFailed."""
    stopped = asyncio.Event()
    follower = asyncio.create_task(follow_output(record.layout.log_file, sink, stopped))
    try:
        await containers.start(record.id)
        status = await containers.wait_exit(record.id)
    finally:
        stopped.set()
        with contextlib.suppress(Exception):
            await asyncio.shield(follower)
    code = status.code if status is not None else containers.get(record.id).state.exit_code
    if code != 0:
        raise RunStepFailed(command, code, sink.tail())


async def discard_container(containers: ContainerService, container_id: str) -> None:
    """Kill (if running) and remove a step's container and its anonymous volumes."""
    try:
        record = containers.get(container_id)
    except NotFound:
        return
    if record.state.running:
        with contextlib.suppress(DeclarunError):
            await containers.kill(container_id)
        with contextlib.suppress(DeclarunError):
            await containers.wait_exit(container_id)
    try:
        await containers.remove(container_id, force=True, volumes=True)
    except NotFound:
        pass
    except DeclarunError as exc:
        log.warning("removing build container %s: %s", container_id[:12], exc)


def without_mount_stubs(changes: Iterable[Change], bundle_dir: Path) -> list[Change]:
    """Changes minus the directories the runtime made only to mount something on.

    ``container_changes`` drops mount points; a directory created for one (``/run/secrets``
    for a secret, ``/etc`` in an image without one) would still land in the layer, empty,
    as BuildKit's stub cleaner avoids.
    """
    listed = list(changes)
    targets = mount_targets(bundle_dir)
    ancestors = set()
    for target in targets:
        parts = target.strip("/").split("/")
        for depth in range(1, len(parts)):
            ancestors.add("/" + "/".join(parts[:depth]))
    kept_paths = {c.path for c in listed}

    def has_real_child(path: str) -> bool:
        prefix = path + "/"
        return any(p.startswith(prefix) and p not in ancestors for p in kept_paths)

    out = []
    for change in listed:
        if (
            change.path in ancestors
            and change.kind != CHANGE_DELETED
            and not has_real_child(change.path)
        ):
            continue
        out.append(change)
    return out
