"""A compact seccomp profile: allow by default, refuse the syscalls Docker keeps from containers.

Docker's own default profile is an allow-list of ~350 syscalls with per-argument rules; this
is the inverse, much shorter approach: the syscalls Docker blocks (kernel modules, reboot,
clock setting, mount and namespace changes, keyrings, NUMA policy, ...) fail with EPERM
unless the container holds the capability under which Docker would allow them. Syscalls
unknown to the running libseccomp (e.g. ``stime`` on x86-64) are skipped by runc.
Not covered compared with Docker's profile: ``clone``/``clone3`` flag filtering (user
namespaces) and ``personality`` argument filtering.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from typing import Any, Final

__all__ = ["BLOCKED_SYSCALLS", "seccomp_profile"]

#: capability that lifts the block (None: always blocked) → syscalls.
BLOCKED_SYSCALLS: Final[dict[str | None, tuple[str, ...]]] = {
    None: (
        "add_key", "keyctl", "request_key", "uselib", "ustat", "sysfs", "_sysctl",
        "nfsservctl", "vm86", "vm86old", "get_kernel_syms", "create_module", "query_module",
    ),
    "CAP_SYS_ADMIN": (
        "mount", "umount", "umount2", "unshare", "setns", "pivot_root", "swapon", "swapoff",
        "fanotify_init", "lookup_dcookie", "quotactl", "name_to_handle_at", "bpf",
        "perf_event_open", "fsopen", "fsconfig", "fsmount", "fspick", "move_mount",
        "open_tree", "mount_setattr",
    ),
    "CAP_DAC_READ_SEARCH": ("open_by_handle_at",),
    "CAP_SYS_BOOT": ("reboot", "kexec_load", "kexec_file_load"),
    "CAP_SYS_MODULE": ("init_module", "finit_module", "delete_module"),
    "CAP_SYS_TIME": ("settimeofday", "stime", "clock_settime", "clock_settime64",
                     "clock_adjtime", "clock_adjtime64"),
    "CAP_SYS_PACCT": ("acct",),
    "CAP_SYS_RAWIO": ("iopl", "ioperm"),
    "CAP_SYS_PTRACE": ("kcmp", "userfaultfd"),
    "CAP_SYS_NICE": ("mbind", "set_mempolicy", "move_pages", "get_mempolicy"),
    "CAP_SYSLOG": ("syslog",),
}  # fmt: skip

_ARCHES: Final = {
    "x86_64": ["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"],
    "aarch64": ["SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM"],
}


def seccomp_profile(capabilities: Iterable[str], machine: str | None = None) -> dict[str, Any]:
    """The OCI ``linux.seccomp`` object for a container holding ``capabilities``."""
    held = set(capabilities)
    names = sorted(
        name
        for cap, syscalls in BLOCKED_SYSCALLS.items()
        if cap is None or cap not in held
        for name in syscalls
    )
    profile: dict[str, Any] = {"defaultAction": "SCMP_ACT_ALLOW"}
    arches = _ARCHES.get(machine or platform.machine())
    if arches:
        profile["architectures"] = arches
    profile["syscalls"] = [{"names": names, "action": "SCMP_ACT_ERRNO", "errnoRet": 1}]
    return profile
