"""What the host says, read once per check: mounts, runtime containers, conmon processes and
iptables rules that belong to one data root.

Everything here is blocking (files under ``/proc``, ``runc list``, ``iptables-save``) and
restricted to the data root at hand: other daemons on the same host (another declarund,
dockerd) have mounts, containers and rules of their own, which are none of this check's
business.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import os
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.containers.runtime.oci import DEFAULT_RUNTIMES, runtime_state_root

__all__ = [
    "ConmonProcess",
    "HostFacts",
    "IptablesRule",
    "RuntimeContainer",
    "conmon_processes",
    "iptables_rules",
    "mounts_under",
    "read_host_facts",
    "runtime_containers",
]

_IPTABLES_TIMEOUT = 30.0
# The CNI plugins' comment on every rule they add for one attachment.
_CNI_COMMENT = re.compile(r'name: \\?"(?P<net>[^"\\]+)\\?" id: \\?"(?P<cid>[0-9a-f]{64})\\?"')


@dataclass(frozen=True)
class RuntimeContainer:
    """A container the OCI runtime knows under the data root's state directory."""

    runtime: str
    binary: str
    root: Path
    id: str
    status: str
    pid: int


@dataclass(frozen=True)
class ConmonProcess:
    """A conmon process monitoring a container (or an exec session) of this data root."""

    pid: int
    container_id: str
    exec_session: bool


@dataclass(frozen=True)
class IptablesRule:
    """A rule a CNI plugin added for a container: ``-A CHAIN ...`` in ``table``."""

    table: str
    chain: str
    args: tuple[str, ...]
    network: str
    container_id: str
    #: The per-attachment chain the rule jumps to (``CNI-DN-...``), if any.
    target: str | None


@dataclass(frozen=True)
class HostFacts:
    """Everything read from the host for one check."""

    mounts: tuple[Path, ...]
    runtime: tuple[RuntimeContainer, ...]
    conmons: tuple[ConmonProcess, ...]
    rules: tuple[IptablesRule, ...]
    #: Why some facts could not be read (a missing ``iptables``), for the notes.
    gaps: tuple[str, ...] = ()


def _unescape_mount_path(text: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as octal.
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), text)


def mounts_under(root: Path) -> list[Path]:
    """Mount points at or under ``root`` in this process' mount namespace."""
    prefix = str(root).rstrip("/") + "/"
    found: list[Path] = []
    try:
        with open("/proc/self/mountinfo", encoding="utf-8", errors="replace") as info:
            for line in info:
                fields = line.split()
                if len(fields) < 5:
                    continue
                point = _unescape_mount_path(fields[4])
                if point.startswith(prefix):
                    found.append(Path(point))
    except OSError:
        return []
    return sorted(set(found))


def runtime_containers(data_root: Path) -> tuple[list[RuntimeContainer], list[str]]:
    """What each OCI runtime lists under the data root (and why a runtime could not say)."""
    found: list[RuntimeContainer] = []
    gaps: list[str] = []
    for name, binary in DEFAULT_RUNTIMES.items():
        root = runtime_state_root(data_root, name)
        if not root.is_dir():
            continue
        path = shutil.which(binary) or (binary if os.path.exists(binary) else None)
        if path is None:
            if any(root.iterdir()):
                gaps.append(f"{binary} is not installed: its containers under {root} unchecked")
            continue
        done = subprocess.run(
            [path, f"--root={root}", "list", "--format", "json"],
            capture_output=True,
            check=False,
            timeout=_IPTABLES_TIMEOUT,
        )
        if done.returncode != 0:
            gaps.append(f"{binary} list failed: {done.stderr.decode(errors='replace').strip()}")
            continue
        for doc in json.loads(done.stdout or b"null") or []:
            found.append(
                RuntimeContainer(
                    name,
                    path,
                    root,
                    str(doc.get("id", "")),
                    str(doc.get("status", "")),
                    int(doc.get("pid") or 0),
                )
            )
    return found, gaps


def conmon_processes(data_root: Path) -> list[ConmonProcess]:
    """Live conmon processes whose bundle (``-b``) lies under the data root."""
    prefix = str(data_root).rstrip("/") + "/"
    found: list[ConmonProcess] = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                argv = [a.decode(errors="replace") for a in f.read().split(b"\0")]
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if not argv or os.path.basename(argv[0]) != "conmon" or state in (b"Z", b"X"):
            continue
        options = dict(itertools.pairwise(argv))
        bundle = options.get("-b") or options.get("--bundle") or ""
        cid = options.get("-c") or options.get("--cid") or ""
        if bundle.startswith(prefix) and cid:
            found.append(ConmonProcess(int(entry), cid, "--exec" in argv or "-e" in argv))
    return found


def iptables_rules(networks: frozenset[str]) -> tuple[list[IptablesRule], list[str]]:
    """The CNI plugins' per-container rules of the CNI networks named in ``networks``.

    Each rule is found by the comment the plugins put on it (``name: "<net>" id: "<cid>"``);
    a rule of a network not in ``networks`` belongs to someone else and is skipped.
    """
    binary = shutil.which("iptables-save")
    if binary is None:
        return [], ["iptables-save is not installed: firewall rules unchecked"]
    found: list[IptablesRule] = []
    for table in ("nat", "filter"):
        done = subprocess.run(
            [binary, "-t", table], capture_output=True, check=False, timeout=_IPTABLES_TIMEOUT
        )
        if done.returncode != 0:
            return found, [f"iptables-save -t {table} failed: {done.stderr.decode().strip()}"]
        for line in done.stdout.decode(errors="replace").splitlines():
            if not line.startswith("-A "):
                continue
            match = _CNI_COMMENT.search(line)
            if match is None or match.group("net") not in networks:
                continue
            with contextlib.suppress(ValueError):
                args = tuple(shlex.split(line))
                target = args[args.index("-j") + 1] if "-j" in args else None
                found.append(
                    IptablesRule(
                        table,
                        args[1],
                        args[2:],
                        match.group("net"),
                        match.group("cid"),
                        target if target and target.startswith("CNI-") else None,
                    )
                )
    return found, []


def read_host_facts(data_root: Path, cni_networks: frozenset[str]) -> HostFacts:
    """Read the host's side of the data root (blocking)."""
    runtime, gaps = runtime_containers(data_root)
    rules, rule_gaps = iptables_rules(cni_networks)
    return HostFacts(
        mounts=tuple(mounts_under(data_root)),
        runtime=tuple(runtime),
        conmons=tuple(conmon_processes(data_root)),
        rules=tuple(rules),
        gaps=(*gaps, *rule_gaps),
    )
