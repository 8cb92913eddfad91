"""``POST /containers/{id}/update``: an ``UpdateConfig`` merged into a stored create request.

A container's configuration is stored as the create request it was made with (see
:mod:`declarun.daemon.containers.lifecycle.record`), so an update is a new request: the
resource fields the update sets (non-zero, as dockerd's ``UpdateContainer`` reads them) and
the restart policy replace the stored ones, and the result is validated again exactly as a
create would be. dockerd's checks that only an update has keep its wording; they are
conflicts (409 ``Cannot update container <id>: ...``), a bad value is a 400.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.fields import get_int, get_object, get_str
from declarun.daemon.containers.config.hostconfig import RESTART_POLICIES
from declarun.errdefs import Conflict

__all__ = ["UPDATABLE_RESOURCES", "updated_request"]

#: The resource fields an update may change; a zero (or empty) value leaves one as it is.
UPDATABLE_RESOURCES: tuple[str, ...] = (
    "BlkioWeight", "CpuShares", "NanoCpus", "CpuPeriod", "CpuQuota", "CpuRealtimePeriod",
    "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Memory", "MemorySwap",
    "MemoryReservation", "KernelMemory",
)  # fmt: skip


def _conflict(cid: str, message: str) -> Conflict:
    return Conflict(f"Cannot update container {cid}: {message}")


def _current(host: Mapping[str, Any], key: str) -> int:
    value = host.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _check_cpu_conflicts(cid: str, update: Mapping[str, Any], host: Mapping[str, Any]) -> None:
    # NanoCpus and CpuPeriod/CpuQuota set the same cgroup values: once one is set, the
    # other cannot be updated (dockerd's order and wording).
    nano, period = get_int(update, "NanoCpus"), get_int(update, "CpuPeriod")
    quota = get_int(update, "CpuQuota")
    if nano > 0 and _current(host, "CpuPeriod") > 0:
        raise _conflict(cid, "Conflicting options: Nano CPUs cannot be updated as CPU Period "
                        "has already been set")  # fmt: skip
    if nano > 0 and _current(host, "CpuQuota") > 0:
        raise _conflict(cid, "Conflicting options: Nano CPUs cannot be updated as CPU Quota "
                        "has already been set")  # fmt: skip
    if period > 0 and _current(host, "NanoCpus") > 0:
        raise _conflict(cid, "Conflicting options: CPU Period cannot be updated as NanoCPUs "
                        "has already been set")  # fmt: skip
    if quota > 0 and _current(host, "NanoCpus") > 0:
        raise _conflict(cid, "Conflicting options: CPU Quota cannot be updated as NanoCPUs "
                        "has already been set")  # fmt: skip


def _restart_policy(cid: str, update: Mapping[str, Any], host: Mapping[str, Any]) -> Any:
    policy = get_object(update, "RestartPolicy")
    name = get_str(policy, "Name", field="RestartPolicy.Name")
    if not name:
        return None
    if name not in RESTART_POLICIES:
        raise InvalidCreateRequest(f"invalid restart policy '{name}'")
    if host.get("AutoRemove") and name != "no":
        raise _conflict(cid, "Restart policy cannot be updated because AutoRemove is enabled "
                        "for the container")  # fmt: skip
    return {"Name": name, "MaximumRetryCount": get_int(policy, "MaximumRetryCount")}


def updated_request(cid: str, request: Mapping[str, Any], update: Any) -> dict[str, Any]:
    """The create request ``request`` with ``update`` (an ``UpdateConfig``) applied.

    The caller validates the result as a create request (``parse_create_request``), which
    gives the resource checks and their messages.
    """
    if update is None:
        update = {}
    if not isinstance(update, Mapping):
        raise InvalidCreateRequest("invalid JSON body: expected an object")
    result = copy.deepcopy(dict(request))
    host: dict[str, Any] = dict(get_object(result, "HostConfig"))
    _check_cpu_conflicts(cid, update, host)
    for key in UPDATABLE_RESOURCES:
        value = update.get(key)
        if value in (None, 0, ""):
            continue
        if key == "Memory":
            memory = get_int(update, "Memory")
            # dockerd stores MemorySwap as twice the memory when it was not given.
            swap = _current(host, "MemorySwap") or 2 * _current(host, "Memory")
            if memory > swap > 0 and not get_int(update, "MemorySwap"):
                raise _conflict(cid, "Memory limit should be smaller than already set "
                                "memoryswap limit, update the memoryswap at the same time")  # fmt: skip
            if not _current(host, "MemorySwap") and _current(host, "Memory"):
                host["MemorySwap"] = swap
        host[key] = value
    pids = update.get("PidsLimit")
    if pids is not None:
        host["PidsLimit"] = get_int(update, "PidsLimit")
    policy = _restart_policy(cid, update, host)
    if policy is not None:
        host["RestartPolicy"] = policy
    result["HostConfig"] = host
    return result
