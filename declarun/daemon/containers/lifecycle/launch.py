"""Turning a container record into a created runtime container: root, bundle, conmon.

:func:`launch` mounts the root filesystem, resolves the user inside it, asks the mount
resolver for volume directories, rewrites the daemon-managed /etc files, writes
``config.json`` with :func:`build_spec` and has conmon ``runc create`` it. The user process
does not run yet (``runc start`` is the caller's, after attach clients are connected).
Networking (:mod:`~declarun.daemon.containers.lifecycle.networking`) is set up first, when the
service has it: the namespace path goes into ``config.json``, the addresses and resolver
into the /etc files; a networking failure (a host port in use) fails the start with
dockerd's 500, and everything set up so far is released.

Failures become :class:`StartFailed`, carrying the exit code Docker records for them: 127
when the command does not exist, 126 when it cannot be executed (dockerd's
``translateContainerdStartErr``), 128 otherwise. Both first kinds, and a configuration
the container's root cannot satisfy (an unknown user), are the client's fault
(:class:`StartRefused`, an invalid argument); the rest are the daemon's
(:class:`StartBroken`, a system failure).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
from collections.abc import Callable
from pathlib import Path

from declarun.daemon.containers.config.errors import InvalidCreateRequest, UnknownUserError
from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.lifecycle.etcfiles import write_etc_files
from declarun.daemon.containers.lifecycle.networking import ContainerNetworking, NetworkSetup
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.rootfs.copyup import copy_image_content
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.containers.runtime.bundle import BundleInputs, build_spec, write_bundle
from declarun.daemon.containers.runtime.monitor import CreatedContainer, create_container
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.daemon.containers.runtime.syncpipe import MonitorError
from declarun.daemon.containers.runtime.users import resolve_user
from declarun.errdefs import ErrorKind, InvalidArgument, SystemFailure
from declarun.errors import DaemonError

__all__ = [
    "MountResolver",
    "StartBroken",
    "StartFailed",
    "StartRefused",
    "init_binary",
    "launch",
    "volume_mounts",
]

MountResolver = Callable[[MountSpec], Path]
_NOT_FOUND_HINTS = ("executable file not found", "no such file or directory")
_INIT_CANDIDATES = ("docker-init", "tini", "catatonit")


class StartFailed(DaemonError):
    """A container could not be started; ``exit_code`` is what its state records.

    Never raised itself: a start fails either as :class:`StartRefused` or
    :class:`StartBroken` (see :func:`start_failed`).
    """

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


class StartRefused(StartFailed, InvalidArgument):
    """The container's own configuration cannot start (no such command, unknown user)."""


class StartBroken(StartFailed, SystemFailure):
    """The runtime, networking or the host failed to start the container."""


def _classify(message: str) -> StartFailed:
    lowered = message.lower()
    text = f"failed to create task for container: {message}: unknown"
    if any(hint in lowered for hint in _NOT_FOUND_HINTS):
        return StartRefused(text, 127)
    if "permission denied" in lowered:
        return StartRefused(text, 126)
    return StartBroken(text, 128)


def init_binary() -> Path | None:
    """The host's tini-like init for ``--init`` (None when none is installed)."""
    for name in _INIT_CANDIDATES:
        found = shutil.which(name)
        if found:
            return Path(found)
    return None


def volume_mounts(rec: ContainerRecord) -> list[MountSpec]:
    """The ``volume`` mounts of ``rec`` with their names filled in (anonymous ones too).

    Image ``VOLUME``s and ``Config.Volumes`` not covered by another mount count as
    anonymous volumes, as in Docker.
    """
    specs = []
    targets = set()
    for mount in rec.host_config.mounts:
        targets.add(mount.target)
        if mount.type == "volume":
            name = mount.source or rec.volume_names.get(mount.target, "")
            specs.append(dataclasses.replace(mount, source=name))
    for target in rec.config.volumes:
        if target not in targets:
            specs.append(
                MountSpec(type="volume", target=target, source=rec.volume_names.get(target, ""))
            )
    return specs


def _resolve_volumes(
    rec: ContainerRecord, resolver: MountResolver | None
) -> tuple[dict[str, Path], list[MountSpec]]:
    paths: dict[str, Path] = {}
    extra: list[MountSpec] = []
    explicit = {m.target for m in rec.host_config.mounts if m.type == "volume"}
    for spec in volume_mounts(rec):
        if resolver is None:
            if spec.target in explicit:
                raise StartRefused("volume support not available", 128)
            continue  # image VOLUMEs stay plain directories of the root until volumes exist
        paths[spec.target] = Path(resolver(spec))
        if spec.target not in explicit:
            extra.append(spec)
    return paths, extra


def _prepare_bundle(
    rec: ContainerRecord, rootfs: Path, resolver: MountResolver | None, network: NetworkSetup
) -> None:
    """Blocking part of a launch: user, volumes, /etc files, config.json."""
    hc = rec.host_config
    try:
        user = resolve_user(rootfs, rec.config.user, hc.group_add)
    except UnknownUserError as exc:
        raise StartRefused(str(exc), 128) from None
    volume_paths, extra = _resolve_volumes(rec, resolver)
    for mount in volume_mounts(rec):
        if not mount.no_copy and mount.target in volume_paths:
            copy_image_content(rootfs, mount.target, volume_paths[mount.target])
    rec.volume_paths = {target: str(path) for target, path in volume_paths.items()}
    if extra:
        hc = dataclasses.replace(hc, mounts=hc.mounts + tuple(extra))
    etc = write_etc_files(rec.bundle_dir, rec.config.hostname, hc, network)
    config = rec.config
    if network.link_env:  # dockerd puts the links' variables before the container's own
        config = dataclasses.replace(config, env=network.link_env + config.env)
    inputs = BundleInputs(
        container_id=rec.id,
        rootfs=rootfs,
        config=config,
        host_config=hc,
        user=user,
        hostname=rec.config.hostname,
        volume_paths=volume_paths,
        etc_files=etc,
        init_binary=init_binary() if hc.init else None,
        network_namespace=network.netns,
    )
    try:
        spec = build_spec(inputs)
    except InvalidCreateRequest as exc:
        raise StartRefused(str(exc), 128) from None
    write_bundle(rec.bundle_dir, spec)


async def launch(
    rec: ContainerRecord,
    rootfs: RootfsManager,
    resolver: MountResolver | None,
    networking: ContainerNetworking | None = None,
) -> CreatedContainer:
    """Mount, attach networks, write the bundle and create the container under conmon (not
    started yet).

    On failure nothing stays mounted, attached or created.
    """
    root = await asyncio.to_thread(rootfs.mount, rec.chain_id, rec.id)
    try:
        try:
            network = await networking.setup(rec) if networking is not None else NetworkSetup()
        except ErrorKind:  # the request's own fault (no such network, a stopped peer)
            raise
        except DaemonError as exc:  # the host failed (a port in use, a CNI plugin)
            raise StartBroken(str(exc), 128) from None
        try:
            await asyncio.to_thread(_prepare_bundle, rec, root, resolver, network)
            rec.rootfs_path = root
            # A runtime container left by an earlier run (daemon killed mid-start) blocks the
            # id. Only then is `runc delete --force` run: a process per start otherwise.
            if rec.runtime.has_state(rec.id):
                await rec.runtime.delete(rec.id, force=True)
            try:
                return await create_container(
                    rec.runtime,
                    rec.layout,
                    rec.id,
                    name=rec.name,
                    terminal=rec.config.tty,
                    stdin=rec.config.open_stdin,
                    leave_stdin_open=rec.config.open_stdin and not rec.config.stdin_once,
                )
            except (MonitorError, OciRuntimeError) as exc:
                message = str(exc).removeprefix(f"cannot create container {rec.id}: ")
                raise _classify(message) from None
        except BaseException:
            if networking is not None:
                await networking.teardown(rec)
            raise
    except BaseException:
        rec.rootfs_path = None
        await asyncio.to_thread(rootfs.release_mount, rec.id)
        raise
