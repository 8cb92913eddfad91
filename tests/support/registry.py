"""Start the real CNCF distribution registry (``/usr/bin/docker-registry``) for tests.

``run_registry(tmp_dir)`` is a context manager yielding a ``RunningRegistry`` listening on
``127.0.0.1:<free port>`` with filesystem storage under ``tmp_dir``; pass
``credentials=("user", "password")`` for htpasswd Basic auth (file made by
``htpasswd -Bbn``). It waits until ``GET /v2/`` answers and always stops the process.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = ["REGISTRY_BINARY", "RunningRegistry", "free_port", "run_registry"]

REGISTRY_BINARY = "/usr/bin/docker-registry"
_START_TIMEOUT = 30.0


@dataclass(frozen=True)
class RunningRegistry:
    """A registry process the tests started.

    ``host`` is ``127.0.0.1:<port>`` (the domain of image references: ``f"{host}/busybox"``),
    ``url`` its base URL; ``username``/``password`` are set when it requires Basic auth.
    """

    host: str
    port: int
    url: str
    root: Path
    log: Path
    username: str | None = None
    password: str | None = None

    @property
    def creds(self) -> str | None:
        """``user:password`` for skopeo's ``--dest-creds``/``--src-creds``, or None."""
        if self.username is None:
            return None
        return f"{self.username}:{self.password}"

    def read_log(self) -> str:
        """The registry's own log, for failure messages."""
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _write_config(root: Path, port: int, htpasswd: Path | None) -> Path:
    lines = [
        "version: 0.1",
        "log:",
        "  level: warn",
        "  accesslog:",
        "    disabled: true",
        "storage:",
        "  filesystem:",
        f"    rootdirectory: {root / 'data'}",
        "  delete:",
        "    enabled: true",
        "  maintenance:",
        "    uploadpurging:",
        "      enabled: false",
        "http:",
        f"  addr: 127.0.0.1:{port}",
        # A fixed secret keeps upload state valid and silences the random-secret warning.
        "  secret: declarun-test-secret",
    ]
    if htpasswd is not None:
        lines += ["auth:", "  htpasswd:", "    realm: declarun-test", f"    path: {htpasswd}"]
    config = root / "config.yml"
    config.write_text("\n".join(lines) + "\n")
    return config


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/v2/", timeout=2) as resp:
            return bool(resp.status == 200)
    except urllib.error.HTTPError as exc:
        return exc.code == 401
    except OSError:
        return False


@contextlib.contextmanager
def run_registry(
    tmp_dir: Path, *, credentials: tuple[str, str] | None = None
) -> Iterator[RunningRegistry]:
    """Run ``docker-registry serve`` on a free loopback port until the block ends."""
    tmp_dir.mkdir(parents=True, exist_ok=True)
    htpasswd: Path | None = None
    if credentials is not None:
        if shutil.which("htpasswd") is None:
            raise RuntimeError("htpasswd (apache2-utils) is needed for the auth registry")
        made = subprocess.run(
            ["htpasswd", "-Bbn", credentials[0], credentials[1]],
            check=True,
            capture_output=True,
        )
        htpasswd = tmp_dir / "htpasswd"
        htpasswd.write_bytes(made.stdout)
    log = tmp_dir / "registry.log"
    for _attempt in range(3):
        port = free_port()
        config = _write_config(tmp_dir, port, htpasswd)
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as log_file:
            proc = subprocess.Popen(
                [REGISTRY_BINARY, "serve", str(config)],
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        try:
            deadline = time.monotonic() + _START_TIMEOUT
            while proc.poll() is None and time.monotonic() < deadline:
                if _answers(url):
                    break
                time.sleep(0.05)
            if proc.poll() is not None:
                continue  # e.g. the port was taken meanwhile: try another one
            if not _answers(url):
                raise RuntimeError(f"registry did not answer on {url}:\n{log.read_text()}")
            yield RunningRegistry(
                host=f"127.0.0.1:{port}",
                port=port,
                url=url,
                root=tmp_dir,
                log=log,
                username=credentials[0] if credentials else None,
                password=credentials[1] if credentials else None,
            )
            return
        finally:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
    raise RuntimeError(f"registry would not start:\n{log.read_text(errors='replace')}")
