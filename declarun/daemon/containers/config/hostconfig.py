"""``HostConfig`` of a create request as a frozen, validated value, and its inspect shape.

Validation follows dockerd's (``verifyContainerSettings``, ``verifyPlatformContainerResources``)
with its wording, so clients that match on messages keep working.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from declarun.daemon.containers.config.caps import normalize_capabilities
from declarun.daemon.containers.config.defaults import (
    DEFAULT_SHM_SIZE,
    MASKED_PATHS,
    NAMESPACED_SYSCTL_PREFIXES,
    NAMESPACED_SYSCTLS,
    READONLY_PATHS,
    RLIMIT_NAMES,
)
from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.fields import (
    get_bool,
    get_int,
    get_object,
    get_str,
    get_str_list,
    get_str_map,
)
from declarun.daemon.containers.config.mountspec import (
    MountSpec,
    parse_binds,
    parse_mounts,
    parse_tmpfs,
)
from declarun.daemon.containers.config.network_fields import (
    PortBinding,
    check_dns,
    check_extra_hosts,
    parse_port_bindings,
)
from declarun.errdefs import SystemFailure
from declarun.errors import DaemonError
from declarun.frozen import FrozenDict, freeze, thaw

__all__ = [
    "HostConfig",
    "RestartPolicy",
    "Ulimit",
    "default_cgroupns_mode",
    "device_cgroup_rule",
    "parse_host_config",
]

RESTART_POLICIES = ("no", "always", "on-failure", "unless-stopped")
MIN_MEMORY = 6 * 1024 * 1024  # dockerd's linuxMinMemory


@dataclass(frozen=True)
class RestartPolicy:
    """``no`` | ``always`` | ``on-failure`` (with a retry cap) | ``unless-stopped``."""

    name: str = "no"
    maximum_retry_count: int = 0

    @property
    def is_none(self) -> bool:
        """True for ``no`` (Docker's ``IsNone``)."""
        return self.name == "no"


@dataclass(frozen=True)
class Ulimit:
    """One ``--ulimit``: a Docker name (``nofile``), soft and hard (-1: unlimited)."""

    name: str
    soft: int
    hard: int


@dataclass(frozen=True)
class HostConfig:
    """The host-side settings of a container. Byte sizes in bytes, CPU in Docker's units."""

    binds: tuple[str, ...] = ()
    mounts: tuple[MountSpec, ...] = ()
    mounts_request: tuple[Any, ...] = ()  # HostConfig.Mounts as sent, frozen, for inspect
    tmpfs: FrozenDict[str, str] = field(default_factory=FrozenDict)
    restart_policy: RestartPolicy = RestartPolicy()
    auto_remove: bool = False
    readonly_rootfs: bool = False
    privileged: bool = False
    init: bool | None = None
    cap_add: tuple[str, ...] = ()
    cap_drop: tuple[str, ...] = ()
    memory: int = 0
    memory_swap: int = 0
    memory_reservation: int = 0
    memory_swappiness: int | None = None
    nano_cpus: int = 0
    cpu_quota: int = 0
    cpu_period: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    cpuset_mems: str = ""
    pids_limit: int | None = None
    oom_kill_disable: bool | None = None
    oom_score_adj: int = 0
    ulimits: tuple[Ulimit, ...] = ()
    network_mode: str = "bridge"
    port_bindings: FrozenDict[str, tuple[PortBinding, ...]] = field(default_factory=FrozenDict)
    publish_all_ports: bool = False
    dns: tuple[str, ...] = ()
    dns_search: tuple[str, ...] = ()
    dns_options: tuple[str, ...] = ()
    extra_hosts: tuple[str, ...] = ()
    group_add: tuple[str, ...] = ()
    shm_size: int = DEFAULT_SHM_SIZE
    security_opt: tuple[str, ...] = ()
    sysctls: FrozenDict[str, str] = field(default_factory=FrozenDict)
    runtime: str = "runc"
    log_config: FrozenDict[str, Any] = field(
        default_factory=lambda: FrozenDict({"Type": "json-file", "Config": FrozenDict()})
    )
    pid_mode: str = ""
    ipc_mode: str = "private"
    uts_mode: str = ""
    #: ``private`` (a cgroup namespace of its own) or ``host``.
    cgroupns_mode: str = "host"
    #: ``DeviceCgroupRules`` as sent (``c 1:3 mr``): devices the container may also use.
    device_cgroup_rules: tuple[str, ...] = ()
    #: ``Isolation`` as sent: ``""`` or ``default`` (the only one Linux has).
    isolation: str = ""
    #: ``VolumesFrom`` as sent (``name[:ro|rw]``); the mounts it gave are in ``mounts``.
    volumes_from: tuple[str, ...] = ()
    #: ``Links`` as sent (``name:alias``): legacy links, used on the default bridge only.
    links: tuple[str, ...] = ()

    @property
    def no_new_privileges(self) -> bool:
        """Whether setuid binaries cannot raise privileges.

        On by default (the issue asks for it), off by default for privileged containers;
        ``no-new-privileges[:true|false]`` in SecurityOpt decides when present.
        """
        value = not self.privileged
        for opt in self.security_opt:
            key, _, flag = opt.replace("=", ":").partition(":")
            if key == "no-new-privileges":
                value = flag in ("", "true")
        return value

    @property
    def seccomp_unconfined(self) -> bool:
        """``--security-opt seccomp=unconfined``."""
        return any(o in ("seccomp=unconfined", "seccomp:unconfined") for o in self.security_opt)

    def to_inspect(self) -> dict[str, Any]:
        """The ``HostConfig`` object of ``GET /containers/{id}/json``."""

        def bindings(items: tuple[PortBinding, ...]) -> list[dict[str, str]]:
            return [{"HostIp": b.host_ip, "HostPort": b.host_port} for b in items]

        return {
            "Binds": list(self.binds) or None,
            "ContainerIDFile": "",
            "LogConfig": thaw(self.log_config),
            "NetworkMode": self.network_mode,
            "PortBindings": {k: bindings(v) for k, v in self.port_bindings.items()},
            "RestartPolicy": {
                "Name": self.restart_policy.name,
                "MaximumRetryCount": self.restart_policy.maximum_retry_count,
            },
            "AutoRemove": self.auto_remove,
            "VolumeDriver": "",
            "VolumesFrom": list(self.volumes_from) or None,
            "ConsoleSize": [0, 0],
            "CapAdd": list(self.cap_add) or None,
            "CapDrop": list(self.cap_drop) or None,
            "CgroupnsMode": self.cgroupns_mode,
            "Dns": list(self.dns),
            "DnsOptions": list(self.dns_options),
            "DnsSearch": list(self.dns_search),
            "ExtraHosts": list(self.extra_hosts) or None,
            "GroupAdd": list(self.group_add) or None,
            "IpcMode": self.ipc_mode,
            "Cgroup": "",
            "Links": None,
            "OomScoreAdj": self.oom_score_adj,
            "PidMode": self.pid_mode,
            "Privileged": self.privileged,
            "PublishAllPorts": self.publish_all_ports,
            "ReadonlyRootfs": self.readonly_rootfs,
            "SecurityOpt": list(self.security_opt) or None,
            "Tmpfs": dict(self.tmpfs) or None,
            "UTSMode": self.uts_mode,
            "UsernsMode": "",
            "ShmSize": self.shm_size,
            "Sysctls": dict(self.sysctls) or None,
            "Runtime": self.runtime,
            "Isolation": self.isolation,
            "CpuShares": self.cpu_shares,
            "Memory": self.memory,
            "NanoCpus": self.nano_cpus,
            "CgroupParent": "",
            "CpuPeriod": self.cpu_period,
            "CpuQuota": self.cpu_quota,
            "CpusetCpus": self.cpuset_cpus,
            "CpusetMems": self.cpuset_mems,
            "Devices": [],
            "DeviceCgroupRules": list(self.device_cgroup_rules) or None,
            "DeviceRequests": None,
            "MemoryReservation": self.memory_reservation,
            # dockerd stores twice the memory limit when no swap limit was given.
            "MemorySwap": self.memory_swap or 2 * self.memory,
            "MemorySwappiness": self.memory_swappiness,
            "OomKillDisable": bool(self.oom_kill_disable),
            "PidsLimit": self.pids_limit,
            "Ulimits": [{"Name": u.name, "Soft": u.soft, "Hard": u.hard} for u in self.ulimits]
            or None,
            "Mounts": [thaw(m) for m in self.mounts_request] or None,
            "Init": self.init,
            "MaskedPaths": None if self.privileged else list(MASKED_PATHS),
            "ReadonlyPaths": None if self.privileged else list(READONLY_PATHS),
            # Resources declarund accepts but does not apply; dockerd shows them so.
            "BlkioWeight": 0,
            "BlkioWeightDevice": None,
            "BlkioDeviceReadBps": None,
            "BlkioDeviceWriteBps": None,
            "BlkioDeviceReadIOps": None,
            "BlkioDeviceWriteIOps": None,
            "CpuRealtimePeriod": 0,
            "CpuRealtimeRuntime": 0,
            "KernelMemory": 0,
            "KernelMemoryTCP": 0,
            "CpuCount": 0,
            "CpuPercent": 0,
            "IOMaximumIOps": 0,
            "IOMaximumBandwidth": 0,
        }


def _restart_policy(body: Mapping[str, Any]) -> RestartPolicy:
    name = get_str(body, "Name", field="RestartPolicy.Name") or "no"
    retries = get_int(body, "MaximumRetryCount", field="RestartPolicy.MaximumRetryCount")
    if name in ("always", "unless-stopped", "no"):
        if retries != 0:
            msg = "invalid restart policy: maximum retry count can only be used with 'on-failure'"
            raise InvalidCreateRequest(msg + (" and cannot be negative" if retries < 0 else ""))
    elif name == "on-failure":
        if retries < 0:
            raise InvalidCreateRequest(
                "invalid restart policy: maximum retry count cannot be negative"
            )
    else:
        raise InvalidCreateRequest(
            f"invalid restart policy: unknown policy '{name}'; use one of 'no', 'always', "
            "'on-failure', or 'unless-stopped'"
        )
    return RestartPolicy(name, retries)


def _ulimits(value: Any) -> tuple[Ulimit, ...]:
    if value is None:
        return ()
    if not isinstance(value, list):
        raise InvalidCreateRequest("invalid value for Ulimits: expected a list")
    result: dict[str, Ulimit] = {}
    for item in value:
        if not isinstance(item, Mapping):
            raise InvalidCreateRequest("invalid value for Ulimits: expected a list of objects")
        name = get_str(item, "Name", field="Ulimits.Name")
        soft, hard = get_int(item, "Soft", field="Ulimits.Soft"), get_int(item, "Hard")
        if name not in RLIMIT_NAMES:
            raise InvalidCreateRequest(f"invalid ulimit type: {name}")
        if hard != -1 and (soft == -1 or soft > hard):
            raise InvalidCreateRequest(
                f"ulimit soft limit must be less than or equal to hard limit: {soft} > {hard}"
            )
        result[name] = Ulimit(name, soft, hard)
    return tuple(result.values())


def _sysctls(sysctls: FrozenDict[str, str], network_mode: str) -> FrozenDict[str, str]:
    for key in sysctls:
        namespaced = key in NAMESPACED_SYSCTLS or key.startswith(NAMESPACED_SYSCTL_PREFIXES)
        if not namespaced:
            raise InvalidCreateRequest(f"sysctl '{key}' is not whitelisted")
        if key.startswith("net.") and network_mode == "host":
            raise InvalidCreateRequest(
                f"sysctl '{key}' is not allowed in the host's network namespace"
            )
    return sysctls


def _check_resources(hc: HostConfig, cpu_count: int) -> None:
    for name, value in (("Memory", hc.memory), ("MemoryReservation", hc.memory_reservation),
                        ("CpuShares", hc.cpu_shares), ("CpuPeriod", hc.cpu_period)):  # fmt: skip
        if value < 0:
            raise InvalidCreateRequest(f"invalid {name}: {value}: must not be negative")
    if 0 < hc.memory < MIN_MEMORY:
        raise InvalidCreateRequest("Minimum memory limit allowed is 6MB")
    if hc.memory > 0 and 0 < hc.memory_swap < hc.memory:
        raise InvalidCreateRequest(
            "Minimum memoryswap limit should be larger than memory limit, see usage"
        )
    if hc.memory == 0 and hc.memory_swap > 0:
        raise InvalidCreateRequest(
            "You should always set the Memory limit when using Memoryswap limit, see usage"
        )
    if hc.memory_swappiness is not None and not -1 <= hc.memory_swappiness <= 100:
        raise InvalidCreateRequest(
            f"Invalid value: {hc.memory_swappiness}, valid memory swappiness range is 0-100"
        )
    if hc.nano_cpus and hc.cpu_period:
        raise InvalidCreateRequest(
            "Conflicting options: Nano CPUs and CPU Period cannot both be set"
        )
    if hc.nano_cpus and hc.cpu_quota:
        raise InvalidCreateRequest(
            "Conflicting options: Nano CPUs and CPU Quota cannot both be set"
        )
    if hc.nano_cpus < 0 or hc.nano_cpus > cpu_count * 10**9:
        raise InvalidCreateRequest(
            f"Range of CPUs is from 0.01 to {cpu_count}.00, as there are only {cpu_count} "
            "CPUs available"
        )
    if hc.cpu_period and not 1000 <= hc.cpu_period <= 1_000_000:
        raise InvalidCreateRequest(
            "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"
        )
    if 0 < hc.cpu_quota < 1000:
        raise InvalidCreateRequest("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if not -1000 <= hc.oom_score_adj <= 1000:
        raise InvalidCreateRequest(
            f"Invalid value {hc.oom_score_adj}, range for oom score adj is [-1000, 1000]"
        )
    if hc.shm_size < 0:
        raise InvalidCreateRequest("SHM size can not be less than 0")


def _check_mounts(mounts: list[MountSpec]) -> None:
    seen: set[str] = set()
    for mount in mounts:
        if mount.target in seen:
            raise InvalidCreateRequest(f"Duplicate mount point: {mount.target}")
        seen.add(mount.target)


def default_cgroupns_mode() -> str:
    """dockerd's default: a private cgroup namespace on cgroup v2, the host's on v1."""
    unified = os.path.exists("/sys/fs/cgroup/cgroup.controllers")
    return "private" if unified else "host"


_DEVICE_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")


def device_cgroup_rule(rule: str) -> dict[str, Any]:
    """One ``DeviceCgroupRules`` entry as an OCI device rule; a malformed one fails the start
    with dockerd's wording (it is accepted at create, as dockerd accepts it)."""
    found = _DEVICE_RULE.match(rule)
    if found is None:
        raise InvalidCreateRequest(f"invalid device cgroup format '{rule}'")
    kind, major, minor, access = found.groups()
    out: dict[str, Any] = {"allow": True, "type": kind, "access": access}
    if major != "*":
        out["major"] = int(major)
    if minor != "*":
        out["minor"] = int(minor)
    return out


class UnsupportedIsolation(DaemonError, SystemFailure):
    """An ``Isolation`` other than ``default``: dockerd answers it with a 500."""


def _isolation(body: Mapping[str, Any]) -> str:
    isolation = get_str(body, "Isolation")
    if isolation not in ("", "default"):
        raise UnsupportedIsolation(
            f"Invalid isolation: \"{isolation}\" - linux only supports 'default'"
        )
    return isolation


def _cgroupns_mode(body: Mapping[str, Any]) -> str:
    mode = get_str(body, "CgroupnsMode")
    if mode not in ("", "host", "private"):
        raise InvalidCreateRequest(f"invalid cgroup namespace mode: {mode}")
    return mode or default_cgroupns_mode()


def _check_modes(body: Mapping[str, Any]) -> tuple[str, str, str]:
    pid = get_str(body, "PidMode")
    ipc = get_str(body, "IpcMode") or "private"
    uts = get_str(body, "UTSMode")
    if pid not in ("", "host"):
        raise InvalidCreateRequest(f"invalid PID mode: {pid} (supported: host)")
    if ipc not in ("private", "shareable", "host", "none"):
        raise InvalidCreateRequest(f"invalid IPC mode: {ipc}")
    if uts not in ("", "host"):
        raise InvalidCreateRequest(f"invalid UTS mode: {uts}")
    return pid, ipc, uts


def parse_host_config(
    body: Mapping[str, Any],
    *,
    path_exists: Callable[[str], bool] = os.path.exists,
    cpu_count: int | None = None,
) -> HostConfig:
    """Validate a request's ``HostConfig`` object; :class:`InvalidCreateRequest` when wrong."""
    binds = get_str_list(body, "Binds")
    tmpfs = get_str_map(body, "Tmpfs")
    mounts = parse_binds(binds) + parse_mounts(body.get("Mounts"), path_exists)
    mounts += parse_tmpfs(tmpfs)
    _check_mounts(mounts)
    network_mode = get_str(body, "NetworkMode")
    if network_mode in ("", "default"):
        network_mode = "bridge"
    pids = body.get("PidsLimit")
    pid_mode, ipc_mode, uts_mode = _check_modes(body)
    swappiness = body.get("MemorySwappiness")
    oom_kill_disable = body.get("OomKillDisable")
    init = body.get("Init")
    cap_add, cap_drop = get_str_list(body, "CapAdd"), get_str_list(body, "CapDrop")
    normalize_capabilities(cap_add + cap_drop)  # validates; inspect keeps what was sent
    hc = HostConfig(
        binds=binds,
        mounts=tuple(mounts),
        mounts_request=freeze(body.get("Mounts") or []),
        tmpfs=tmpfs,
        restart_policy=_restart_policy(get_object(body, "RestartPolicy")),
        auto_remove=get_bool(body, "AutoRemove"),
        readonly_rootfs=get_bool(body, "ReadonlyRootfs"),
        privileged=get_bool(body, "Privileged"),
        init=None if init is None else get_bool(body, "Init"),
        cap_add=cap_add,
        cap_drop=cap_drop,
        memory=get_int(body, "Memory"),
        memory_swap=get_int(body, "MemorySwap"),
        memory_reservation=get_int(body, "MemoryReservation"),
        memory_swappiness=None if swappiness is None else get_int(body, "MemorySwappiness"),
        nano_cpus=get_int(body, "NanoCpus") or get_int(body, "NanoCPUs"),
        cpu_quota=get_int(body, "CpuQuota"),
        cpu_period=get_int(body, "CpuPeriod"),
        cpu_shares=get_int(body, "CpuShares"),
        cpuset_cpus=get_str(body, "CpusetCpus"),
        cpuset_mems=get_str(body, "CpusetMems"),
        # Docker stores 0 and negatives as "unlimited" and shows it as null/0.
        pids_limit=None if pids is None or get_int(body, "PidsLimit") <= 0 else int(pids),
        oom_kill_disable=None if oom_kill_disable is None else get_bool(body, "OomKillDisable"),
        oom_score_adj=get_int(body, "OomScoreAdj"),
        ulimits=_ulimits(body.get("Ulimits")),
        network_mode=network_mode,
        port_bindings=parse_port_bindings(get_object(body, "PortBindings")),
        publish_all_ports=get_bool(body, "PublishAllPorts"),
        dns=tuple(check_dns(get_str_list(body, "Dns"))),
        dns_search=get_str_list(body, "DnsSearch"),
        dns_options=get_str_list(body, "DnsOptions"),
        extra_hosts=check_extra_hosts(get_str_list(body, "ExtraHosts")),
        group_add=get_str_list(body, "GroupAdd"),
        shm_size=get_int(body, "ShmSize") or DEFAULT_SHM_SIZE,
        security_opt=_security_opt(get_str_list(body, "SecurityOpt")),
        sysctls=_sysctls(get_str_map(body, "Sysctls"), network_mode),
        runtime=get_str(body, "Runtime") or "runc",
        log_config=_log_config(get_object(body, "LogConfig")),
        pid_mode=pid_mode,
        ipc_mode=ipc_mode,
        uts_mode=uts_mode,
        cgroupns_mode=_cgroupns_mode(body),
        device_cgroup_rules=get_str_list(body, "DeviceCgroupRules"),
        isolation=_isolation(body),
        volumes_from=_volumes_from(get_str_list(body, "VolumesFrom")),
        links=_links(get_str_list(body, "Links")),
    )
    if hc.auto_remove and not hc.restart_policy.is_none:
        raise InvalidCreateRequest("can't create 'AutoRemove' container with restart policy")
    _check_resources(hc, cpu_count or os.cpu_count() or 1)
    return hc


def _links(entries: tuple[str, ...]) -> tuple[str, ...]:
    for entry in entries:
        name, _, alias = entry.partition(":")
        if not name.strip("/") or (alias == "" and entry.endswith(":")):
            raise InvalidCreateRequest(f"invalid link: {entry!r}")
    return entries


def _volumes_from(entries: tuple[str, ...]) -> tuple[str, ...]:
    for entry in entries:
        name, _, mode = entry.partition(":")
        if not name:
            raise InvalidCreateRequest(f"invalid volumes-from specification: {entry!r}")
        if mode and not set(mode.split(",")) <= {"ro", "rw", "z", "Z"}:
            raise InvalidCreateRequest(f"invalid mode: {mode}")
    return entries


def _security_opt(options: tuple[str, ...]) -> tuple[str, ...]:
    for opt in options:
        key, _, value = opt.replace("=", ":").partition(":")
        if key == "no-new-privileges" and value in ("", "true", "false"):
            continue
        if key == "seccomp" and value != "unconfined":
            raise InvalidCreateRequest(
                f"seccomp profiles other than unconfined are not supported: {opt}"
            )
        if key not in ("seccomp", "apparmor", "label"):
            raise InvalidCreateRequest(f'invalid --security-opt: "{opt}"')
    return options


def _log_config(body: Mapping[str, Any]) -> FrozenDict[str, Any]:
    kind = get_str(body, "Type", field="LogConfig.Type") or "json-file"
    if kind not in ("json-file", "local", "none"):
        raise InvalidCreateRequest(f"logger: no log driver named '{kind}' is registered")
    return FrozenDict({"Type": kind, "Config": get_str_map(body, "Config", "LogConfig.Config")})
