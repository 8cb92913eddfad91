"""Docker's defaults for a container, as constant tables (sources: moby's ``oci/defaults.go``,
``oci/caps``, runc's allowed-device list). Kept apart so the builder stays readable.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = [
    "ALL_CAPABILITIES",
    "DEFAULT_CAPABILITIES",
    "DEFAULT_DEVICES",
    "DEFAULT_DEVICE_RULES",
    "DEFAULT_NOFILE",
    "DEFAULT_PATH",
    "DEFAULT_SHM_SIZE",
    "MASKED_PATHS",
    "NAMESPACED_SYSCTLS",
    "NAMESPACED_SYSCTL_PREFIXES",
    "OCI_VERSION",
    "READONLY_PATHS",
    "RLIMIT_NAMES",
    "default_mounts",
]

#: runc 1.1 (Debian 12) reports spec 1.0.2-dev; every field used here is in 1.0.2.
OCI_VERSION: Final = "1.0.2"

#: Docker's PATH when the image sets none (``system.DefaultPathEnv``).
DEFAULT_PATH: Final = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: ``/dev/shm`` size when ShmSize is 0: Docker's 64 MiB.
DEFAULT_SHM_SIZE: Final = 64 * 1024 * 1024

#: Docker containers get the open-files limit of a systemd-started dockerd (1048576);
#: the bundle clamps it to the daemon's own hard limit.
DEFAULT_NOFILE: Final = 1_048_576

#: Capability names by bit number (linux/capability.h), up to CAP_CHECKPOINT_RESTORE.
ALL_CAPABILITIES: Final = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER", "CAP_FSETID",
    "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP", "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST", "CAP_NET_ADMIN", "CAP_NET_RAW",
    "CAP_IPC_LOCK", "CAP_IPC_OWNER", "CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE", "CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD", "CAP_LEASE",
    "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP", "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM", "CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ",
    "CAP_PERFMON", "CAP_BPF", "CAP_CHECKPOINT_RESTORE",
)  # fmt: skip

#: Docker's default set, in Docker's order (bounding mask 0x00000000a80425fb).
DEFAULT_CAPABILITIES: Final = (
    "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD", "CAP_NET_RAW",
    "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
    "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
)  # fmt: skip

MASKED_PATHS: Final = (
    "/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
    "/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
    "/sys/firmware", "/sys/devices/virtual/powercap",
)  # fmt: skip

READONLY_PATHS: Final = (
    "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
)  # fmt: skip

#: Sysctls that live in a namespace the container owns (Docker's ``ValidateSysctl``);
#: ``net.*`` only when the container has its own network namespace.
NAMESPACED_SYSCTLS: Final = frozenset(
    {
        "kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem", "kernel.shmall",
        "kernel.shmmax", "kernel.shmmni", "kernel.shm_rmid_forced",
    }
)  # fmt: skip
NAMESPACED_SYSCTL_PREFIXES: Final = ("fs.mqueue.", "net.")

#: Docker ulimit names → OCI rlimit types.
RLIMIT_NAMES: Final = {
    name: f"RLIMIT_{name.upper()}"
    for name in (
        "as", "core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
        "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack",
    )
}  # fmt: skip


def _char(path: str, major: int, minor: int) -> dict[str, Any]:
    return {
        "path": path, "type": "c", "major": major, "minor": minor,
        "fileMode": 0o666, "uid": 0, "gid": 0,
    }  # fmt: skip


#: Device nodes the runtime creates in every container's /dev (runc makes the same set
#: itself; listing them keeps the bundle explicit).
DEFAULT_DEVICES: Final = (
    _char("/dev/null", 1, 3),
    _char("/dev/zero", 1, 5),
    _char("/dev/full", 1, 7),
    _char("/dev/random", 1, 8),
    _char("/dev/urandom", 1, 9),
    _char("/dev/tty", 5, 0),
)


def _rule(
    allow: bool, kind: str | None, major: int | None, minor: int | None, access: str
) -> dict[str, Any]:
    rule: dict[str, Any] = {"allow": allow, "access": access}
    if kind is not None:
        rule["type"] = kind
    if major is not None:
        rule["major"] = major
    if minor is not None:
        rule["minor"] = minor
    return rule


#: Device cgroup: deny everything, then allow mknod of any node (using it stays denied)
#: and the default devices, /dev/console, /dev/ptmx and the pts slaves.
DEFAULT_DEVICE_RULES: Final = (
    _rule(False, None, None, None, "rwm"),
    _rule(True, "c", None, None, "m"),
    _rule(True, "b", None, None, "m"),
    _rule(True, "c", 1, 3, "rwm"),
    _rule(True, "c", 1, 5, "rwm"),
    _rule(True, "c", 1, 7, "rwm"),
    _rule(True, "c", 1, 8, "rwm"),
    _rule(True, "c", 1, 9, "rwm"),
    _rule(True, "c", 5, 0, "rwm"),
    _rule(True, "c", 5, 1, "rwm"),
    _rule(True, "c", 5, 2, "rwm"),
    _rule(True, "c", 136, None, "rwm"),
)


def default_mounts(shm_size: int, *, privileged: bool) -> list[dict[str, Any]]:
    """Docker's default mounts, in order; /sys and the cgroups are writable only when privileged."""
    sys_ro = [] if privileged else ["ro"]
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", *sys_ro]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": [*sys_ro, "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777", f"size={shm_size}"]},
    ]  # fmt: skip
