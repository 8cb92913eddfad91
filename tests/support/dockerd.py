"""A real Docker engine (Debian's ``dockerd``) for tests, on a private socket.

``running_dockerd()`` is a context manager that starts ``dockerd`` as root with its own
``--data-root``, ``--exec-root``, ``--pidfile`` and ``unix://`` socket in a fresh directory
under /tmp (Unix socket paths are short-limited), waits until it answers, yields a
:class:`Dockerd`, and always stops it — SIGTERM, then SIGKILL of its whole session
(dockerd and its containerd) — and removes the directory, even when the test fails.

When dockerd cannot run here (not root, not installed, does not start) it raises
:class:`DockerdUnavailable` with the reason; fixtures turn that into a visible
``pytest.skip``. Tests take the session's one, ``dockerd_engine``
(``tests.support.engine_fixtures``), rather than starting their own.

Images: pull from a test registry on ``127.0.0.1:<port>`` (``tests.support.registry``) — Docker
treats 127.0.0.0/8 registries as insecure by default, so plain HTTP works without flags.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Dockerd", "DockerdUnavailable", "docker_cli", "running_dockerd"]

_START_TIMEOUT = 60.0


class DockerdUnavailable(RuntimeError):
    """dockerd cannot run in this environment; the message says why."""


@dataclass(frozen=True)
class Dockerd:
    """A running dockerd: ``host`` is its ``unix://`` address, ``root`` its private directory."""

    host: str
    root: Path
    pid: int

    @property
    def socket(self) -> Path:
        """The Unix socket path."""
        return Path(self.host.removeprefix("unix://"))

    def client(self) -> Any:
        """A docker-py ``DockerClient`` for this engine (close it when done)."""
        import docker

        return docker.DockerClient(base_url=self.host, timeout=120)

    def read_log(self) -> str:
        """The daemon's own log, for failure messages."""
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""


def docker_cli(host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against ``host``; asserts success unless ``check`` is False."""
    done = subprocess.run(
        ["docker", "-H", host, *args], capture_output=True, text=True, check=False, timeout=180
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed: {done.stderr}")
    return done


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # its own session: dockerd + containerd
        process.wait(timeout=10)


@contextlib.contextmanager
def running_dockerd(*extra_args: str) -> Iterator[Dockerd]:
    """Start a private dockerd for the duration of the block (see the module docstring)."""
    if os.geteuid() != 0:
        raise DockerdUnavailable("dockerd needs root")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        raise DockerdUnavailable(
            "dockerd or the docker CLI is not installed (apt-get install docker.io)"
        )
    root = Path(tempfile.mkdtemp(prefix="dd-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    command = [
        "dockerd",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "--host", host,
        # No default docker0 bridge and no firewall rules: nothing outside the test is touched.
        "--bridge", "none",
        "--iptables=false",
        "--ip6tables=false",
        *extra_args,
    ]  # fmt: skip
    with (root / "dockerd.log").open("wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while docker_cli(host, "version", check=False).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                raise DockerdUnavailable(f"dockerd did not start:\n{tail}")
            time.sleep(0.2)
        yield Dockerd(host=host, root=root, pid=process.pid)
    finally:
        _stop(process)
        shutil.rmtree(root, ignore_errors=True)
