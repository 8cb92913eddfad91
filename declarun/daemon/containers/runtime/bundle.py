"""The OCI runtime bundle of a container: ``config.json`` built the way dockerd builds it.

``build_spec(inputs)`` is pure apart from reading :func:`host_facts` when none are given;
``write_bundle`` stores the result atomically. Differences from dockerd, on purpose:

* ``noNewPrivileges`` is on by default (the issue asks for it; Docker only sets it with
  ``--security-opt no-new-privileges``). ``no-new-privileges:false`` turns it off, and
  privileged containers default to off.
* rlimits are explicit: ``RLIMIT_NOFILE`` 1048576 (what a systemd-started dockerd hands on)
  and every ``Ulimits`` entry, each clamped to the daemon's own hard limit; capabilities and
  ``oomScoreAdj`` are clamped the same way (see :mod:`hostfacts`).
* seccomp is the compact deny-list of :mod:`seccomp`, not Docker's allow-list; AppArmor and
  SELinux are not used (these hosts have neither).
* Privileged containers get every capability, all devices in the device cgroup, writable
  /sys and cgroups, no masked paths, but not the host's /dev nodes.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.daemon.containers.config.caps import effective_capabilities
from declarun.daemon.containers.config.defaults import (
    DEFAULT_DEVICE_RULES,
    DEFAULT_DEVICES,
    DEFAULT_NOFILE,
    MASKED_PATHS,
    OCI_VERSION,
    READONLY_PATHS,
    RLIMIT_NAMES,
    default_mounts,
)
from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.config.hostconfig import HostConfig, device_cgroup_rule
from declarun.daemon.containers.config.imageconfig import process_args, process_env
from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.config.request import ContainerConfig
from declarun.daemon.containers.runtime.hostfacts import RLIM_INFINITY, HostFacts, host_facts
from declarun.daemon.containers.runtime.seccomp import seccomp_profile
from declarun.daemon.containers.runtime.users import ResolvedUser

__all__ = ["INIT_PATH", "BundleInputs", "build_spec", "cgroup_resources", "write_bundle"]

#: Where ``--init`` puts the init binary, as Docker does.
INIT_PATH = "/sbin/docker-init"
_NANO = 1_000_000_000
_CFS_PERIOD = 100_000


@dataclass(frozen=True)
class BundleInputs:
    """Everything the spec is made of; the caller resolves the paths.

    ``config`` is the merged config (``merge_image_config``), ``user`` the resolved
    ``config.user`` (``resolve_user``). ``volume_paths`` maps the target of every ``volume``
    mount to its host directory (Subpath already applied). ``etc_files`` maps
    ``/etc/resolv.conf``, ``/etc/hosts`` and ``/etc/hostname`` to daemon-managed host files.
    ``network_namespace`` is a netns path to join (``None``: a new one, or none at all in
    ``host`` mode). ``init_binary`` is bind-mounted at ``/sbin/docker-init`` for ``Init``.
    """

    container_id: str
    rootfs: Path
    config: ContainerConfig
    host_config: HostConfig
    user: ResolvedUser
    hostname: str
    volume_paths: Mapping[str, Path] = field(default_factory=dict)
    etc_files: Mapping[str, Path] = field(default_factory=dict)
    network_namespace: str | None = None
    cgroups_path: str | None = None
    init_binary: Path | None = None


def _clamp(value: int, hard: int) -> int:
    value = RLIM_INFINITY if value < 0 else value
    return min(value, hard)


def _rlimits(hc: HostConfig, facts: HostFacts) -> list[dict[str, Any]]:
    wanted: dict[str, tuple[int, int]] = {"RLIMIT_NOFILE": (DEFAULT_NOFILE, DEFAULT_NOFILE)}
    for ulimit in hc.ulimits:
        wanted[RLIMIT_NAMES[ulimit.name]] = (ulimit.soft, ulimit.hard)
    out = []
    for kind, (soft, hard) in wanted.items():
        limit = facts.hard_limits.get(kind, RLIM_INFINITY)
        hard_value = _clamp(hard, limit)
        out.append({"type": kind, "hard": hard_value, "soft": min(_clamp(soft, limit), hard_value)})
    return out


def _process(inputs: BundleInputs, caps: tuple[str, ...], facts: HostFacts) -> dict[str, Any]:
    config, hc, user = inputs.config, inputs.host_config, inputs.user
    args = list(process_args(config))
    if hc.init and inputs.init_binary is not None:
        args = [INIT_PATH, "--", *args]
    env = list(process_env(config, hostname=inputs.hostname))
    if not any(e.startswith("HOME=") for e in env):
        env.append(f"HOME={user.home}")
    cap_list = list(caps)
    return {
        "terminal": config.tty,
        "user": {"uid": user.uid, "gid": user.gid, "additionalGids": list(user.additional_gids)},
        "args": args,
        "env": env,
        "cwd": config.working_dir or "/",
        # Docker sets no inheritable or ambient capabilities (CVE-2022-24769).
        "capabilities": {"bounding": cap_list, "effective": cap_list, "permitted": cap_list},
        "rlimits": _rlimits(hc, facts),
        "noNewPrivileges": hc.no_new_privileges,
        # Lowering the score below the daemon's own needs CAP_SYS_RESOURCE.
        "oomScoreAdj": max(hc.oom_score_adj, facts.oom_score_adj),
    }


def _bind(target: str, source: Path | str, options: list[str]) -> dict[str, Any]:
    return {"destination": target, "type": "bind", "source": str(source), "options": options}


def _user_mount(mount: MountSpec, inputs: BundleInputs) -> dict[str, Any]:
    access = "ro" if mount.read_only else "rw"
    if mount.type == "tmpfs":
        # --tmpfs is noexec by default (Docker's documented defaults); --mount tmpfs is not.
        base = ["noexec", "nosuid", "nodev"] if mount.origin == "Tmpfs" else ["nosuid", "nodev"]
        options = [*base, *mount.tmpfs_options, access]
        return {"destination": mount.target, "type": "tmpfs", "source": "tmpfs", "options": options}
    if mount.type == "volume":
        source = inputs.volume_paths.get(mount.target)
        if source is None:
            raise InvalidCreateRequest(f"no volume resolved for mount point {mount.target}")
        return _bind(mount.target, source, ["rbind", "rprivate", access])
    kind = "bind" if mount.non_recursive else "rbind"
    return _bind(mount.target, mount.source, [kind, mount.propagation, access])


def _mounts(inputs: BundleInputs) -> list[dict[str, Any]]:
    hc = inputs.host_config
    user = [_user_mount(m, inputs) for m in hc.mounts]
    taken = {m["destination"] for m in user}
    etc_access = "ro" if hc.readonly_rootfs else "rw"
    for target, source in sorted(inputs.etc_files.items()):
        if target not in taken:
            user.append(_bind(target, source, ["rbind", "rprivate", etc_access]))
    if hc.ipc_mode == "host" and "/dev/shm" not in taken:
        user.append(_bind("/dev/shm", "/dev/shm", ["rbind", "rprivate", "rw"]))
    if hc.init and inputs.init_binary is not None:
        user.append(_bind(INIT_PATH, inputs.init_binary, ["rbind", "rprivate", "ro"]))
    taken = {m["destination"] for m in user}
    defaults = [
        m
        for m in default_mounts(hc.shm_size, privileged=hc.privileged)
        if m["destination"] not in taken
        and not (m["destination"] == "/dev/shm" and hc.ipc_mode == "none")
    ]
    # Parents before children, as dockerd sorts them (stable: ties keep request order).
    user.sort(key=lambda m: posixpath.normpath(m["destination"]).count("/"))
    return defaults + user


def _namespaces(inputs: BundleInputs) -> list[dict[str, Any]]:
    hc = inputs.host_config
    spaces: list[dict[str, Any]] = [{"type": "mount"}]
    if hc.network_mode != "host":
        net: dict[str, Any] = {"type": "network"}
        if inputs.network_namespace:
            net["path"] = inputs.network_namespace
        spaces.append(net)
    if hc.uts_mode != "host":
        spaces.append({"type": "uts"})
    if hc.pid_mode != "host":
        spaces.append({"type": "pid"})
    if hc.ipc_mode != "host":
        spaces.append({"type": "ipc"})
    if hc.cgroupns_mode == "private":
        spaces.append({"type": "cgroup"})
    return spaces


def _memory(hc: HostConfig, facts: HostFacts) -> dict[str, Any]:
    memory: dict[str, Any] = {}
    if hc.memory:
        memory["limit"] = hc.memory
        if facts.swap_accounting:
            # Docker: no MemorySwap means as much swap as memory (limit + swap = 2x).
            memory["swap"] = hc.memory_swap or hc.memory * 2
    if hc.memory_reservation:
        memory["reservation"] = hc.memory_reservation
    if hc.memory_swappiness is not None and hc.memory_swappiness >= 0:
        memory["swappiness"] = hc.memory_swappiness
    if hc.oom_kill_disable:
        memory["disableOOMKiller"] = True
    return memory


def _resources(hc: HostConfig, facts: HostFacts) -> dict[str, Any]:
    if hc.privileged:
        devices: list[dict[str, Any]] = [{"allow": True, "access": "rwm"}]
    else:
        devices = [dict(rule) for rule in DEFAULT_DEVICE_RULES]
        devices += [device_cgroup_rule(rule) for rule in hc.device_cgroup_rules]
    resources: dict[str, Any] = {"devices": devices}
    if memory := _memory(hc, facts):
        resources["memory"] = memory
    cpu: dict[str, Any] = {}
    if hc.cpu_shares:
        cpu["shares"] = hc.cpu_shares
    if hc.nano_cpus:
        cpu["period"] = _CFS_PERIOD
        cpu["quota"] = hc.nano_cpus * _CFS_PERIOD // _NANO
    if hc.cpu_quota:
        cpu["quota"] = hc.cpu_quota
    if hc.cpu_period:
        cpu["period"] = hc.cpu_period
    if hc.cpuset_cpus:
        cpu["cpus"] = hc.cpuset_cpus
    if hc.cpuset_mems:
        cpu["mems"] = hc.cpuset_mems
    if cpu:
        resources["cpu"] = cpu
    if hc.pids_limit:
        resources["pids"] = {"limit": hc.pids_limit}
    return resources


def cgroup_resources(hc: HostConfig, facts: HostFacts | None = None) -> dict[str, Any]:
    """The limits of ``hc`` as an OCI ``linux.resources`` object without device rules, as
    ``runc update`` takes them (``docker update`` of a running container)."""
    resources = _resources(hc, facts or host_facts())
    resources.pop("devices", None)
    return resources


def build_spec(inputs: BundleInputs, facts: HostFacts | None = None) -> dict[str, Any]:
    """The OCI runtime spec (``config.json`` contents) for ``inputs``."""
    facts = facts or host_facts()
    hc = inputs.host_config
    caps = effective_capabilities(
        hc.cap_add, hc.cap_drop, privileged=hc.privileged, available=facts.capabilities
    )
    linux: dict[str, Any] = {
        "namespaces": _namespaces(inputs),
        "resources": _resources(hc, facts),
        "cgroupsPath": inputs.cgroups_path or f"/declarun/{inputs.container_id}",
    }
    if not hc.privileged:
        linux["devices"] = [dict(d) for d in DEFAULT_DEVICES]
        linux["maskedPaths"] = list(MASKED_PATHS)
        linux["readonlyPaths"] = list(READONLY_PATHS)
    if hc.sysctls:
        linux["sysctl"] = dict(hc.sysctls)
    if not hc.privileged and not hc.seccomp_unconfined:
        linux["seccomp"] = seccomp_profile(caps, facts.machine)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": _process(inputs, caps, facts),
        "root": {"path": str(inputs.rootfs), "readonly": hc.readonly_rootfs},
        "mounts": _mounts(inputs),
        "linux": linux,
    }
    if hc.uts_mode != "host":
        spec["hostname"] = inputs.hostname
    return spec


def write_bundle(bundle_dir: Path, spec: Mapping[str, Any]) -> Path:
    """Write ``config.json`` into ``bundle_dir`` (created, mode 0700) atomically; its path."""
    bundle_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    target = bundle_dir / "config.json"
    temp = bundle_dir / ".config.json.tmp"
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(spec, handle, indent=1)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temp, target)
    return target
