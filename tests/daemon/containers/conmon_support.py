"""Helpers for the runtime and monitor tests: bundles from ``runc spec``, an isolated runtime
root per test, and a cleanup that proves nothing was left running.

Bundles are deliberately minimal (``runc spec`` with the args, terminal flag and a writable
busybox root), so these tests depend only on runc and conmon, not on the bundle builder.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import pytest

from declarun.daemon.containers.runtime.monitor import MonitorLayout
from declarun.daemon.containers.runtime.oci import OciRuntime
from tests.support.rootfs import make_busybox_rootfs

__all__ = [
    "CGROUP_PARENT",
    "CONMON",
    "RUNC",
    "Env",
    "monitor_env",
    "needs_conmon",
    "processes_mentioning",
    "run",
]

RUNC = "/usr/sbin/runc"
CONMON = "/usr/bin/conmon"
# One parent per test process: the clean-up below removes the parent once it is empty, and a
# second test run on the machine (another checkout) sharing the name could have it removed
# between its runc's mkdir of the parent and of the container's cgroup (ENOENT, seen once).
CGROUP_PARENT = f"declarun-test-conmon-{os.getpid()}"
EXTRA_APPLETS = ("stty", "tty", "printf", "trap", "kill")
needs_conmon = pytest.mark.skipif(
    not (os.path.exists(RUNC) and os.path.exists(CONMON)) or os.geteuid() != 0,
    reason="needs runc, conmon and root",
)

T = TypeVar("T")


def run(coro: Coroutine[Any, Any, T]) -> T:
    """Run one coroutine to completion on a fresh event loop."""
    return asyncio.run(coro)


@dataclass
class Env:
    """An isolated place to run containers: data root, runtime, exit directory."""

    root: Path
    runtime: OciRuntime

    @property
    def exit_dir(self) -> Path:
        return self.root / "exits"

    def bundle(
        self, args: Sequence[str], *, terminal: bool = False, name: str | None = None
    ) -> tuple[str, MonitorLayout]:
        """A fresh bundle running ``args``; returns (container id, layout)."""
        cid = name or f"t-{uuid.uuid4().hex[:10]}"
        bundle = self.root / "bundles" / cid
        rootfs = make_busybox_rootfs(bundle / "rootfs")
        for applet in EXTRA_APPLETS:
            link = rootfs / "bin" / applet
            if not link.is_symlink():
                link.symlink_to("busybox")
        subprocess.run([RUNC, "spec", "--bundle", str(bundle)], check=True)
        config_path = bundle / "config.json"
        config = json.loads(config_path.read_text())
        config["process"]["args"] = list(args)
        config["process"]["terminal"] = terminal
        config["process"]["env"] = ["PATH=/bin", "TERM=xterm"]
        config["root"]["readonly"] = False
        config["linux"]["cgroupsPath"] = f"/{CGROUP_PARENT}/{cid}"
        config_path.write_text(json.dumps(config))
        return cid, MonitorLayout(bundle=bundle, exit_dir=self.exit_dir)


def processes_mentioning(text: str) -> list[tuple[int, str]]:
    """Live (non-zombie) processes whose command line contains ``text``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{entry}/stat", "rb") as f:
                state = f.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if text in cmdline and state not in (b"Z", b"X") and int(entry) != os.getpid():
            found.append((int(entry), cmdline))
    return found


def _force_cleanup(env: Env) -> None:
    listing = subprocess.run(
        [RUNC, f"--root={env.runtime.root}", "list", "--format", "json"],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    for doc in json.loads(listing.stdout or "null") or []:
        subprocess.run([RUNC, f"--root={env.runtime.root}", "delete", "--force", doc["id"]],
                       capture_output=True, check=False)  # fmt: skip
    for pid, _ in processes_mentioning(str(env.root)):
        with suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    # runc removes each container's cgroup but not the shared parent; empty ones go here.
    for parent in Path("/sys/fs/cgroup").glob(f"*/{CGROUP_PARENT}"):
        with suppress(OSError):
            parent.rmdir()


@contextmanager
def monitor_env(tmp_path: Path) -> Iterator[Env]:
    """An :class:`Env` under ``tmp_path``; afterwards every container is deleted and the test
    fails if a conmon or runtime process of this env was still alive or state was left."""
    root = tmp_path / "data"
    root.mkdir()
    env = Env(root, OciRuntime.for_data_root(root, "runc", RUNC))
    try:
        yield env
    finally:
        leftover_state = []
        if env.runtime.root.exists():
            leftover_state = [p.name for p in env.runtime.root.iterdir()]
        leftover_procs = processes_mentioning(str(root))
        _force_cleanup(env)
        shutil.rmtree(root / "bundles", ignore_errors=True)
    assert leftover_procs == [], f"processes left running: {leftover_procs}"
    assert leftover_state == [], f"runtime state left behind: {leftover_state}"
