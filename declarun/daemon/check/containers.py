"""Checks of containers: records against the runtime and conmon, what a container leaves on
disk (bundle, exit file, writable layer), mounts under the data root, and logs.

Offline (the daemon stopped) a container recorded running whose process ended meanwhile
is no problem: its exit is in its exit file, or the runtime says it stopped, and the
daemon records it at its next start (see ``containers/lifecycle/restore.py``). What no
start can explain is reported: runtime containers and conmon processes no record owns, a
container running while its record says stopped, a running container without its conmon.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from datetime import UTC, datetime
from pathlib import Path

from declarun.daemon.check.context import CheckContext
from declarun.daemon.check.host import HostFacts, RuntimeContainer
from declarun.daemon.check.model import Finding, RepairAction
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.rootfs.mounts import RootfsManager
from declarun.daemon.containers.runtime.exitwatch import ExitStatus, read_exit_file
from declarun.daemon.containers.runtime.logfile import parse_line
from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.networks.netns import NETNS_DIRNAME, list_netns, release_netns_dir

__all__ = ["check_containers", "check_logs", "check_mounts", "lazy_unmount"]

# Logs are read whole up to this size; past it, only the first and the last bytes.
_LOG_READ_LIMIT = 64 << 20
_LOG_EDGE = 1 << 20


def _label(rec: ContainerRecord) -> str:
    return f"container {rec.name} ({rec.id[:12]})"


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def _runtime_delete(found: RuntimeContainer) -> RepairAction:
    async def action() -> None:
        await asyncio.to_thread(
            subprocess.run,
            [found.binary, f"--root={found.root}", "delete", "--force", found.id],
            capture_output=True,
            check=False,
        )

    return action


def _kill(pid: int) -> RepairAction:
    async def action() -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return
        for _ in range(100):
            if not _alive(pid):
                return
            await asyncio.sleep(0.02)

    return action


def _record_exit(ctx: CheckContext, rec: ContainerRecord) -> RepairAction:
    """Record an unknown exit (255) of a container whose process is gone or was killed."""

    async def action() -> None:
        status = ExitStatus(255, datetime.now(UTC))
        if ctx.containers is not None:
            await ctx.containers.record_recovered_exit(rec, status)
        else:
            rec.state.set_exited(255, time.time_ns(), False)
            rec.rootfs_path = None
            await asyncio.to_thread(ctx.records.save, rec)

    return action


def _then(*actions: RepairAction) -> RepairAction:
    async def action() -> None:
        for each in actions:
            await each()

    return action


def check_containers(ctx: CheckContext, host: HostFacts) -> list[Finding]:
    """Records against the runtime and conmon; bundles, exit files, writable layers."""
    found: list[Finding] = []
    records = {r.id: r for r in ctx.container_records()}
    runtime = {c.id: c for c in host.runtime}
    conmons = [c for c in host.conmons if not c.exec_session]
    for listed in host.runtime:
        rec = records.get(listed.id)
        if rec is None:
            found.append(
                Finding(
                    "runtime",
                    f"container {listed.id[:12]}",
                    f"{listed.runtime} has it ({listed.status}) but no container record does",
                    repair=f"{listed.runtime} delete --force",
                    action=_runtime_delete(listed),
                )
            )
        elif not rec.state.running and listed.status in ("running", "paused"):
            found.append(
                Finding(
                    "runtime",
                    _label(rec),
                    f"its record says it is stopped but {listed.runtime} has it {listed.status}",
                    repair=f"{listed.runtime} delete --force (the record stays as it is)",
                    action=_runtime_delete(listed),
                )
            )
    for proc in host.conmons:
        rec = records.get(proc.container_id)
        what = "an exec session of " if proc.exec_session else ""
        if rec is None:
            problem = f"conmon pid {proc.pid} monitors {what}a container no record has"
        elif not rec.state.running:
            problem = f"conmon pid {proc.pid} monitors {what}it, but its record says stopped"
        else:
            continue
        subject = _label(rec) if rec is not None else f"container {proc.container_id[:12]}"
        found.append(
            Finding(
                "conmon",
                subject,
                problem,
                repair=f"kill conmon pid {proc.pid}",
                action=_kill(proc.pid),
            )
        )
    for rec in records.values():
        if not rec.state.running:
            continue
        item = runtime.get(rec.id)
        exited = read_exit_file(rec.layout.exit_file(rec.id)) is not None
        if item is None or item.status == "stopped":
            if ctx.online and not exited:
                where = "no such container" if item is None else "it stopped"
                found.append(
                    Finding(
                        "containers",
                        _label(rec),
                        f"recorded running, but {rec.runtime.name} says {where} and no exit "
                        "was recorded",
                        repair="record an unknown exit (255)",
                        action=_record_exit(ctx, rec),
                    )
                )
            continue
        if rec.state.paused != (item.status == "paused"):
            found.append(
                Finding(
                    "containers",
                    _label(rec),
                    f"recorded {'paused' if rec.state.paused else 'running'}, but "
                    f"{item.runtime} has it {item.status}",
                    advice="docker pause/unpause it",
                )
            )
        supervised = any(c.container_id == rec.id for c in conmons) or (
            rec.state.conmon_pid > 0 and _alive(rec.state.conmon_pid)
        )
        if not supervised:
            found.append(
                Finding(
                    "conmon",
                    _label(rec),
                    "it runs without its conmon: nobody collects its output or exit status",
                    repair="kill it and record an unknown exit (255), as at a daemon start",
                    action=_then(_runtime_delete(item), _record_exit(ctx, rec)),
                )
            )
    found += _leftovers(ctx, records)
    return found


def _leftovers(ctx: CheckContext, records: dict[str, ContainerRecord]) -> list[Finding]:
    found: list[Finding] = []
    bundles = ctx.records.bundles_dir
    for name in sorted(os.listdir(bundles)) if bundles.is_dir() else []:
        if name.startswith(".") or name in records:
            continue
        path = bundles / name

        async def remove_bundle(path: Path = path) -> None:
            await asyncio.to_thread(remove_tree, path)

        found.append(
            Finding(
                "containers",
                f"bundle {path}",
                "no container record owns it (a create or removal cut short)",
                repair="delete it",
                action=remove_bundle,
            )
        )
    exits = ctx.records.exit_dir
    for name in sorted(os.listdir(exits)) if exits.is_dir() else []:
        if name.startswith(".") or name in records:
            continue
        exit_file = exits / name

        async def remove_exit(path: Path = exit_file) -> None:
            path.unlink(missing_ok=True)

        found.append(
            Finding(
                "containers",
                f"exit file {exit_file}",
                "no container record owns it",
                repair="delete it",
                action=remove_exit,
            )
        )
    rootfs = _rootfs(ctx)
    for cid in sorted(rootfs.known_layers()):
        if cid in records:
            continue

        async def remove_layer(cid: str = cid) -> None:
            await asyncio.to_thread(rootfs.remove, cid)

        found.append(
            Finding(
                "snapshots",
                f"writable layer {cid[:12]}",
                "no container record owns it",
                repair="unmount and delete it",
                action=remove_layer,
            )
        )
    for rec in records.values():
        if rec.chain_id is not None and not ctx.images.snapshotter.exists(rec.chain_id):
            found.append(
                Finding(
                    "snapshots",
                    _label(rec),
                    f"the image snapshot it sits on ({rec.chain_id}) is missing",
                    advice="pull or load its image again, then recreate the container",
                )
            )
    return found


def _rootfs(ctx: CheckContext) -> RootfsManager:
    if ctx.containers is not None:
        return ctx.containers.rootfs
    return RootfsManager(ctx.images.snapshotter)


def lazy_unmount(path: Path) -> RepairAction:
    """A repair that detaches the mount at ``path`` (``umount -l``)."""

    async def action() -> None:
        await asyncio.to_thread(
            subprocess.run, ["umount", "-l", str(path)], capture_output=True, check=False
        )

    return action


def check_mounts(ctx: CheckContext, host: HostFacts) -> list[Finding]:
    """Every mount under the data root must belong to something alive."""
    found: list[Finding] = []
    root = ctx.data_root
    running = ctx.running_ids()
    rootfs = _rootfs(ctx)
    volumes = {v.name for v in ctx.metadata.list_volumes()}
    netns_dir = ctx.network_dir / NETNS_DIRNAME
    for point in host.mounts:
        parts = point.relative_to(root).parts
        if parts[:2] == ("snapshots", "containers") and len(parts) == 4:
            cid = parts[2]
            if cid in running or rootfs.in_use(cid):
                continue

            async def unmount_root(cid: str = cid) -> None:
                await asyncio.to_thread(rootfs.force_unmount, cid)

            found.append(
                Finding(
                    "mounts",
                    str(point),
                    "the root of a container that does not run is still mounted",
                    repair="unmount it",
                    action=unmount_root,
                )
            )
        elif point == netns_dir:
            if list_netns(ctx.network_dir):
                continue

            async def release() -> None:
                await asyncio.to_thread(release_netns_dir, ctx.network_dir)

            found.append(
                Finding(
                    "mounts",
                    str(point),
                    "the namespace directory is mounted with no namespace in it",
                    repair="unmount it",
                    action=release,
                )
            )
        elif point.parent == netns_dir:
            continue  # a namespace: the network checks own these
        elif parts[:1] == ("volumes",) and len(parts) == 3 and parts[2] == "_data":
            if parts[1] not in volumes:
                found.append(
                    Finding(
                        "mounts",
                        str(point),
                        "a volume no record has is mounted",
                        repair="unmount it",
                        action=lazy_unmount(point),
                    )
                )
        elif parts[:1] == ("containers",) and len(parts) >= 2 and parts[1] in running:
            continue  # a running container's own mounts (its /dev/shm...)
        elif parts[:1] == ("builder",) and ctx.online:
            continue  # a build in progress
        else:
            found.append(
                Finding(
                    "mounts",
                    str(point),
                    "nothing running owns this mount",
                    repair="unmount it",
                    action=lazy_unmount(point),
                )
            )
    return found


def check_logs(ctx: CheckContext) -> list[Finding]:
    """Each container's log is there once it ran, and every line of it is a log record."""
    found: list[Finding] = []
    for rec in ctx.container_records():
        path = rec.layout.log_file
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            if rec.state.started_at and rec.state.running:
                found.append(
                    Finding(
                        "logs",
                        _label(rec),
                        f"its log {path} is missing",
                        advice="its output so far is lost",
                    )
                )
            continue
        except OSError as exc:
            found.append(Finding("logs", _label(rec), f"cannot read {path}: {exc.strerror}"))
            continue
        problem = _bad_log_line(path, size, running=rec.state.running)
        if problem:
            found.append(
                Finding(
                    "logs",
                    _label(rec),
                    f"{path}: {problem}",
                    advice="docker logs skips lines it cannot read",
                )
            )
    return found


def _bad_log_line(path: Path, size: int, *, running: bool) -> str:
    try:
        with open(path, "rb") as handle:
            if size <= _LOG_READ_LIMIT:
                chunks = [(0, handle.read())]
            else:
                head = handle.read(_LOG_EDGE)
                handle.seek(size - _LOG_EDGE)
                tail = handle.read()
                # Whole lines only: drop the cut ends.
                chunks = [(0, head[: head.rfind(b"\n") + 1]), (1, tail[tail.find(b"\n") + 1 :])]
    except OSError as exc:
        return f"cannot read it: {exc.strerror}"
    for _, data in chunks:
        lines = data.split(b"\n")
        last = lines.pop()
        for number, line in enumerate(lines, 1):
            if parse_line(line + b"\n") is None:
                return f"line {number} is not a log record: {line[:80]!r}"
        if last and not running:
            return f"it ends in the middle of a line: {last[:80]!r}"
    return ""
