"""Facts about the host that ``/version`` and ``/info`` report, read from /proc and /sys.

Every function degrades to a neutral value ("" / False / 0) when the file it reads is
missing, so ``/info`` answers on any Linux host.
"""

from __future__ import annotations

import functools
import os
import platform
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "CgroupFeatures",
    "OsRelease",
    "backing_filesystem",
    "cgroup_features",
    "cpu_count",
    "go_arch",
    "hostname",
    "kernel_version",
    "mem_total",
    "os_release",
    "read_flag",
    "runtime_info",
]

_CGROUP_ROOT = Path("/sys/fs/cgroup")

# platform.machine() -> Go's GOARCH, which the Docker API reports as "Arch".
_GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv7l": "arm",
    "armv6l": "arm",
    "i386": "386",
    "i686": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
}


@dataclass(frozen=True)
class OsRelease:
    """The host distribution, from /etc/os-release."""

    pretty_name: str
    version_id: str


@dataclass(frozen=True)
class CgroupFeatures:
    """Cgroup version and which resource limits the host's cgroups support."""

    version: str
    memory: bool
    swap: bool
    kernel_memory_tcp: bool
    oom_kill_disable: bool
    cpu_cfs: bool
    cpu_shares: bool
    cpuset: bool
    pids: bool


def go_arch() -> str:
    """The host architecture as Go names it (amd64, arm64, ...)."""
    machine = platform.machine()
    return _GO_ARCH.get(machine.lower(), machine)


def kernel_version() -> str:
    """``uname -r``."""
    return platform.release()


def hostname() -> str:
    """The host name (``Name`` in /info)."""
    return socket.gethostname()


def cpu_count() -> int:
    """CPUs this process may run on (Go's runtime.NumCPU honours affinity the same way)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def mem_total() -> int:
    """Total memory in bytes, from /proc/meminfo."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


@functools.cache
def os_release() -> OsRelease:
    """PRETTY_NAME and VERSION_ID from /etc/os-release (or /usr/lib/os-release)."""
    values: dict[str, str] = {}
    for candidate in (Path("/etc/os-release"), Path("/usr/lib/os-release")):
        try:
            text = candidate.read_text()
        except OSError:
            continue
        for line in text.splitlines():
            key, sep, value = line.partition("=")
            if sep:
                values[key.strip()] = value.strip().strip("\"'")
        break
    return OsRelease(values.get("PRETTY_NAME", "Linux"), values.get("VERSION_ID", ""))


def read_flag(path: str) -> bool:
    """True when a /proc/sys style file holds ``1``."""
    try:
        return Path(path).read_text().strip() == "1"
    except OSError:
        return False


def cgroup_features(root: Path = _CGROUP_ROOT) -> CgroupFeatures:
    """Cgroup v2 (unified) if cgroup.controllers exists at the root, else v1 controllers."""
    controllers_file = root / "cgroup.controllers"
    if controllers_file.exists():
        try:
            controllers = set(controllers_file.read_text().split())
        except OSError:
            controllers = set()
        return CgroupFeatures(
            version="2",
            memory="memory" in controllers,
            swap="memory" in controllers,
            kernel_memory_tcp=False,
            oom_kill_disable=False,
            cpu_cfs="cpu" in controllers,
            cpu_shares="cpu" in controllers,
            cpuset="cpuset" in controllers,
            pids="pids" in controllers,
        )
    return CgroupFeatures(
        version="1",
        memory=(root / "memory").is_dir(),
        swap=(root / "memory" / "memory.memsw.limit_in_bytes").exists(),
        kernel_memory_tcp=(root / "memory" / "memory.kmem.tcp.limit_in_bytes").exists(),
        oom_kill_disable=(root / "memory" / "memory.oom_control").exists(),
        cpu_cfs=(root / "cpu" / "cpu.cfs_quota_us").exists(),
        cpu_shares=(root / "cpu" / "cpu.shares").exists(),
        cpuset=(root / "cpuset").is_dir(),
        pids=(root / "pids").is_dir(),
    )


def backing_filesystem(path: Path) -> str:
    """The type of the filesystem that holds ``path`` (longest mount point prefix)."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return ""
    target = os.path.realpath(path)
    best, best_type = "", ""
    for line in mounts:
        fields = line.split()
        if len(fields) < 3:
            continue
        mount_point = fields[1].replace("\\040", " ")
        inside = target == mount_point or target.startswith(mount_point.rstrip("/") + "/")
        if inside and len(mount_point) >= len(best):
            best, best_type = mount_point, fields[2]
    return best_type


@functools.cache
def runtime_info(name: str) -> tuple[str, str, str]:
    """``(path, version, commit)`` of an OCI runtime binary; empty strings if not installed."""
    path = shutil.which(name)
    if path is None:
        return "", "", ""
    try:
        out = subprocess.run(
            [path, "--version"], capture_output=True, text=True, timeout=10, check=False
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return path, "", ""
    version = commit = ""
    for line in out.splitlines():
        lowered = line.lower()
        if lowered.startswith(f"{name} version"):
            version = line.split()[-1]
        elif lowered.startswith("commit:"):
            commit = line.split(":", 1)[1].strip()
    return path, version, commit
