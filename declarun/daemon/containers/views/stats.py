"""``docker stats`` and ``docker top`` from the runtime: cgroup samples in Docker's shape.

:class:`StatsSampler` turns ``runc events --stats`` samples (the cgroup files, read by the
runtime) into dockerd's ``StatsJSON``, keeping the previous sample as ``precpu_stats`` so
clients can compute CPU percentages. ``system_cpu_usage`` is the host's total CPU time
from ``/proc/stat`` in nanoseconds, as dockerd reports it. A stopped container reads as
zeros, as in dockerd.

:func:`top_processes` runs the host's ``ps`` with the client's arguments and keeps the rows
of the container's processes, the way dockerd's ``ContainerTop`` does.
"""

from __future__ import annotations

import asyncio
import os
import shlex
import time
from pathlib import Path
from typing import Any

from declarun.daemon.containers.lifecycle.record import ContainerRecord, format_time
from declarun.daemon.containers.runtime.oci import OciRuntimeError
from declarun.errdefs import Conflict, InvalidArgument, SystemFailure

__all__ = [
    "StatsSampler",
    "container_top",
    "stats_document",
    "system_cpu_usage",
    "top_processes",
]

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_BLKIO_KEYS = {
    "ioServiceBytesRecursive": "io_service_bytes_recursive",
    "ioServicedRecursive": "io_serviced_recursive",
    "ioQueueRecursive": "io_queue_recursive",
    "ioServiceTimeRecursive": "io_service_time_recursive",
    "ioWaitTimeRecursive": "io_wait_time_recursive",
    "ioMergedRecursive": "io_merged_recursive",
    "ioTimeRecursive": "io_time_recursive",
    "sectorsRecursive": "sectors_recursive",
}


def system_cpu_usage() -> int:
    """The host's total CPU time in nanoseconds (``/proc/stat``'s first line)."""
    try:
        with open("/proc/stat") as f:
            fields = f.readline().split()
    except OSError:
        return 0
    ticks = sum(int(v) for v in fields[1:8])
    return ticks * 1_000_000_000 // _CLOCK_TICKS


def _host_memory() -> int:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _cpu_stats(data: dict[str, Any], system: int) -> dict[str, Any]:
    cpu = data.get("cpu") or {}
    usage = cpu.get("usage") or {}
    throttling = cpu.get("throttling") or {}
    percpu = [int(v) for v in usage.get("percpu") or []]
    return {
        "cpu_usage": {
            "total_usage": int(usage.get("total", 0)),
            "percpu_usage": percpu or None,
            "usage_in_kernelmode": int(usage.get("kernel", 0)),
            "usage_in_usermode": int(usage.get("user", 0)),
        },
        "system_cpu_usage": system,
        "online_cpus": len([v for v in percpu if v]) or os.cpu_count() or 1,
        "throttling_data": {
            "periods": int(throttling.get("periods", 0)),
            "throttled_periods": int(throttling.get("throttled_periods", 0)),
            "throttled_time": int(throttling.get("throttled_time", 0)),
        },
    }


def _memory_stats(data: dict[str, Any]) -> dict[str, Any]:
    memory = data.get("memory") or {}
    usage = memory.get("usage") or {}
    limit = int(usage.get("limit", 0))
    host = _host_memory()
    if host and (limit == 0 or limit > host):
        limit = host  # "no limit" is reported as the host's memory, as dockerd does
    return {
        "usage": int(usage.get("usage", 0)),
        "max_usage": int(usage.get("max", 0)),
        "failcnt": int(usage.get("failcnt", 0)),
        "stats": {k: int(v) for k, v in (memory.get("raw") or {}).items()},
        "limit": limit,
    }


def _blkio_stats(data: dict[str, Any]) -> dict[str, Any]:
    blkio = data.get("blkio") or {}
    out: dict[str, Any] = {}
    for theirs, ours in _BLKIO_KEYS.items():
        entries = blkio.get(theirs)
        out[ours] = [
            {"major": int(e.get("major", 0)), "minor": int(e.get("minor", 0)),
             "op": str(e.get("op", "")), "value": int(e.get("value", 0))}
            for e in entries
        ] if entries else []  # fmt: skip
    return out


_NET_FIELDS = ("rx_bytes", "rx_packets", "rx_errors", "rx_dropped",
               "tx_bytes", "tx_packets", "tx_errors", "tx_dropped")  # fmt: skip
# Columns of /proc/net/dev for the fields above (receive 0-3, transmit 8-11).
_NET_COLUMNS = (0, 1, 2, 3, 8, 9, 10, 11)


def network_stats(rec: ContainerRecord) -> dict[str, dict[str, int]] | None:
    """``networks`` of a stats sample: the counters of each interface of the container's
    network namespace but ``lo`` (as dockerd reports its endpoints), read from
    ``/proc/<pid>/net/dev``; None for a host-network or stopped container."""
    if not rec.state.running or not rec.state.pid or rec.host_config.network_mode == "host":
        return None
    try:
        lines = Path(f"/proc/{rec.state.pid}/net/dev").read_text().splitlines()[2:]
    except OSError:
        return None
    out: dict[str, dict[str, int]] = {}
    for line in lines:
        name, _, counters = line.partition(":")
        name = name.strip()
        values = counters.split()
        if name == "lo" or len(values) < 16:
            continue
        out[name] = {f: int(values[c]) for f, c in zip(_NET_FIELDS, _NET_COLUMNS, strict=True)}
    return out or None


def stats_document(
    rec: ContainerRecord,
    data: dict[str, Any],
    *,
    read_ns: int,
    system: int,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """One ``StatsJSON`` from a runtime sample (``data``: the runtime's ``data`` object)."""
    pids = data.get("pids") or {}
    empty_cpu = {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                               "usage_in_usermode": 0},
                 "throttling_data": {"periods": 0, "throttled_periods": 0,
                                     "throttled_time": 0}}  # fmt: skip
    doc: dict[str, Any] = {
        "read": format_time(read_ns),
        "preread": previous["read"] if previous else format_time(0),
        "pids_stats": {"current": int(pids.get("current", 0))}
        | ({"limit": int(pids["limit"])} if pids.get("limit") else {}),
        "blkio_stats": _blkio_stats(data),
        "num_procs": 0,
        "storage_stats": {},
        "cpu_stats": _cpu_stats(data, system) if data else empty_cpu,
        "precpu_stats": previous["cpu_stats"] if previous else empty_cpu,
        "memory_stats": _memory_stats(data) if data else {},
        "name": f"/{rec.name}",
        "id": rec.id,
    }
    return doc


class StatsSampler:
    """Successive stats of one container (each remembers the one before)."""

    def __init__(self, rec: ContainerRecord) -> None:
        self.rec = rec
        self._previous: dict[str, Any] | None = None

    async def sample(self) -> dict[str, Any]:
        """A new sample (zeros when the container is not running)."""
        data: dict[str, Any] = {}
        if self.rec.state.running:
            try:
                data = await self.rec.runtime.stats(self.rec.id)
            except OciRuntimeError:
                data = {}
        doc = stats_document(self.rec, data, read_ns=time.time_ns(), system=system_cpu_usage(),
                             previous=self._previous)  # fmt: skip
        if not data:
            doc["read"] = format_time(0)
        elif (networks := await asyncio.to_thread(network_stats, self.rec)) is not None:
            doc["networks"] = networks
        self._previous = doc
        return doc


async def container_top(rec: ContainerRecord, ps_args: str) -> tuple[list[str], list[list[str]]]:
    """``docker top``: ``ps <ps_args>`` rows of the container's processes (titles, rows).

    Conflict when the container is not running (or is restarting, or the runtime has no
    process list for it), as dockerd answers.
    """
    if not rec.state.running:
        raise Conflict(f"Container {rec.id} is not running")
    if rec.state.restarting:
        raise Conflict(f"Container {rec.id} is restarting, wait until the container is running")
    try:
        pids = await rec.runtime.ps(rec.id)
    except OciRuntimeError as exc:
        raise Conflict(exc.message) from None
    return await top_processes(pids, ps_args or "-ef")


async def top_processes(pids: list[int], ps_args: str) -> tuple[list[str], list[list[str]]]:
    """``ps <ps_args>`` rows of the processes ``pids`` (titles, rows)."""
    try:
        args = shlex.split(ps_args)
    except ValueError as exc:
        raise InvalidArgument(f"invalid ps_args: {exc}") from None
    proc = await asyncio.create_subprocess_exec(
        "ps", *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE
    )
    out, err = await proc.communicate()
    # procps exits 1 with its header alone when ps_args select no process ("ps a" with no
    # terminal attached): an empty list, not a failure.
    nothing_selected = proc.returncode == 1 and not err.strip() and len(out.splitlines()) == 1
    if proc.returncode != 0 and not nothing_selected:
        message = f"Error running ps: {err.decode(errors='replace').strip() or proc.returncode}"
        # procps answers options it does not know with "error: ..." and its usage text: the
        # client's ps_args are at fault (dockerd answers 500 here; a 400 says whose fault).
        if "Usage:" in message or message.startswith("Error running ps: error:"):
            raise InvalidArgument(message)
        raise SystemFailure(message)
    lines = out.decode(errors="replace").splitlines()
    if not lines:
        raise SystemFailure("ps printed nothing")
    titles = lines[0].split()
    if "PID" not in titles:
        raise InvalidArgument("Couldn't find PID field in ps output")
    pid_index = titles.index("PID")
    wanted = set(pids)
    processes = []
    for line in lines[1:]:
        fields = line.split()
        if len(fields) <= pid_index:
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            continue
        if pid in wanted:
            head = fields[: len(titles) - 1]
            processes.append([*head, " ".join(fields[len(titles) - 1 :])])
    return titles, processes
