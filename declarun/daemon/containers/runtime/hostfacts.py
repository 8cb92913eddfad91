"""What the daemon itself may hand on to a container: its rlimits, capabilities, OOM score.

A container can never get more than the process starting it holds: raising an rlimit above
the hard limit, granting a capability outside the bounding set, or lowering oom_score_adj
all need privileges (CAP_SYS_RESOURCE) these machines do not give, and runc would fail the
start. The bundle builder clamps to these facts instead.
"""

from __future__ import annotations

import os
import platform
import resource
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from declarun.daemon.containers.config.defaults import ALL_CAPABILITIES, RLIMIT_NAMES
from declarun.frozen import FrozenDict

__all__ = ["RLIM_INFINITY", "HostFacts", "host_facts"]

#: The OCI spec's "unlimited" (uint64 max).
RLIM_INFINITY = 2**64 - 1


@dataclass(frozen=True)
class HostFacts:
    """Limits inherited from the daemon process. ``hard_limits`` keys are OCI names."""

    hard_limits: FrozenDict[str, int] = field(default_factory=FrozenDict)
    capabilities: frozenset[str] = frozenset(ALL_CAPABILITIES)
    oom_score_adj: int = 0
    swap_accounting: bool = True
    machine: str = field(default_factory=platform.machine)


def _oci_value(value: int) -> int:
    return RLIM_INFINITY if value < 0 or value >= RLIM_INFINITY else value


def _hard_limits() -> Mapping[str, int]:
    limits: dict[str, int] = {}
    for name, oci in RLIMIT_NAMES.items():
        number = getattr(resource, f"RLIMIT_{name.upper()}", None)
        if number is not None:
            limits[oci] = _oci_value(resource.getrlimit(number)[1])
    return limits


def _capabilities() -> frozenset[str]:
    # Both masks matter: runc drops from the bounding set and sets the permitted set.
    masks: dict[str, int] = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("CapBnd", "CapPrm"):
            masks[key] = int(value.strip(), 16)
    mask = masks.get("CapBnd", 0) & masks.get("CapPrm", 0)
    return frozenset(c for i, c in enumerate(ALL_CAPABILITIES) if mask >> i & 1)


def host_facts() -> HostFacts:
    """Read the facts of the running process (cheap: a few syscalls and one /proc read)."""
    try:
        oom = int(Path("/proc/self/oom_score_adj").read_text().strip())
    except (OSError, ValueError):
        oom = 0
    return HostFacts(
        hard_limits=FrozenDict(_hard_limits()),
        capabilities=_capabilities(),
        oom_score_adj=oom,
        swap_accounting=os.path.exists("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes")
        or os.path.exists("/sys/fs/cgroup/memory.swap.max")
        or not os.path.isdir("/sys/fs/cgroup/memory"),
    )
