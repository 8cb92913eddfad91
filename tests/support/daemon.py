"""Starting declarund for tests: the real daemon as a subprocess, or an app in a thread.

* :func:`running_daemon` starts ``python -m declarun.daemon`` on a Unix socket under a
  temporary directory, waits until it answers ``/_ping``, and always stops it (SIGTERM,
  then SIGKILL if it does not exit) — even when the test fails. ``env`` adds to its
  environment (``DECLARUND_FAILPOINTS``...); :meth:`DaemonProcess.restart` starts it again
  on the same socket and data root (after a crash, say).
* :func:`daemon_check` runs ``declarun daemon check`` against a test daemon (through its
  socket while it runs, on its data root when it is stopped).
* :func:`serving_app` runs an aiohttp application built by the daemon's own
  ``make_app`` in a background thread, for tests that must reach into the daemon context
  (publish events, register a test-only area) while using real clients.
* :func:`http_request` speaks plain HTTP/1.1 over a Unix socket, for checks the official
  clients hide (status codes, headers, error bodies).
"""

from __future__ import annotations

import asyncio
import contextlib
import http.client
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from declarun.daemon.networks import ipam_pool
from tests.support.workers import DECLARUND_BLOCKS, free_blocks

__all__ = [
    "REPO_ROOT",
    "DaemonProcess",
    "HttpResult",
    "cli_command",
    "daemon_check",
    "daemon_command",
    "http_request",
    "run_daemon_briefly",
    "running_daemon",
    "serving_app",
    "wait_for_socket",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
_START_TIMEOUT = 30.0
_STOP_TIMEOUT = 20.0


@dataclass
class DaemonProcess:
    """A running declarund started by a test."""

    process: subprocess.Popen[bytes]
    socket_path: Path
    data_root: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The DOCKER_HOST value that reaches this daemon."""
        return f"unix://{self.socket_path}"

    def env(self) -> dict[str, str]:
        """An environment for the docker CLI pointed at this daemon only."""
        env = dict(os.environ)
        env["DOCKER_HOST"] = self.url
        for name in ("DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH"):
            env.pop(name, None)
        env["DOCKER_CONFIG"] = str(self.data_root.parent / "docker-config")
        return env

    def log(self) -> str:
        """Everything the daemon wrote to stderr so far."""
        return self.log_path.read_text(errors="replace")

    def restart(self, extra_env: dict[str, str] | None = None) -> None:
        """Start the daemon again on the same socket and data root (it must have exited);
        ``extra_env`` replaces the environment it was started with, when given."""
        if self.process.poll() is None:
            raise RuntimeError("restart needs a stopped daemon")
        if extra_env is not None:
            self.extra_env = dict(extra_env)
        self.process = _spawn(self.args, self.log_path, self.extra_env)
        try:
            wait_for_socket(self.socket_path, self.process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- daemon log ---\n{self.log()}") from None

    def wait_exit(self, timeout: float = _STOP_TIMEOUT) -> int:
        """Wait until the daemon exits on its own (a fail point killed it); its status."""
        return self.process.wait(timeout=timeout)

    def stop(self, sig: int = signal.SIGTERM) -> int:
        """Send ``sig`` and wait for the exit status (SIGKILL after a grace period)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=_STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


def daemon_command(*args: str) -> list[str]:
    """The command line that runs declarund from this checkout with ``args``."""
    return [sys.executable, "-m", "declarun.daemon", *args]


def cli_command(*args: str) -> list[str]:
    """The command line that runs the ``declarun`` CLI from this checkout with ``args``."""
    return [sys.executable, "-m", "declarun", *args]


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    return env


def wait_for_socket(path: Path, process: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until ``path`` accepts connections; fail early if ``process`` exits."""
    deadline = time.monotonic() + _START_TIMEOUT
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"declarund exited with {process.returncode} before listening")
        with contextlib.suppress(OSError), socket.socket(socket.AF_UNIX) as probe:
            probe.connect(str(path))
            return
        time.sleep(0.05)
    raise RuntimeError(f"declarund did not listen on {path} in time")


def _spawn(args: list[str], log_path: Path, extra_env: dict[str, str]) -> subprocess.Popen[bytes]:
    with open(log_path, "ab") as log_file:
        return subprocess.Popen(
            daemon_command(*args),
            stdout=log_file,
            stderr=subprocess.STDOUT,
            cwd=REPO_ROOT,
            env={**_child_env(), **extra_env},
        )


def _address_pools() -> list[str]:
    """This test worker's own subnets (``tests.support.workers``)."""
    args = []
    for block in free_blocks(DECLARUND_BLOCKS, ipam_pool.host_routes(), count=2):
        args += ["--default-address-pool", f"base={block},size=24"]
    if not args:
        raise RuntimeError("no free 10.x.0.0/16 block for this worker's declarund networks")
    return args


@contextlib.contextmanager
def running_daemon(
    tmp: Path,
    *extra: str,
    name: str = "declarund",
    socket_path: Path | None = None,
    env: dict[str, str] | None = None,
) -> Iterator[DaemonProcess]:
    """Start declarund with its socket and data root under ``tmp``; stop it afterwards."""
    tmp.mkdir(parents=True, exist_ok=True)
    socket_path = socket_path or tmp / f"{name}.sock"
    data_root = tmp / f"{name}-root"
    log_path = tmp / f"{name}.log"
    args = ["--host", f"unix://{socket_path}", "--data-root", str(data_root), *extra]
    if "--default-address-pool" not in extra:
        args += _address_pools()
    process = _spawn(args, log_path, dict(env or {}))
    daemon = DaemonProcess(process, socket_path, data_root, log_path, args, dict(env or {}))
    try:
        try:
            wait_for_socket(socket_path, process)
        except RuntimeError as exc:
            raise RuntimeError(f"{exc}\n--- daemon log ---\n{daemon.log()}") from None
        yield daemon
    finally:
        daemon.stop()


def daemon_check(
    daemon: DaemonProcess, *, repair: bool = False, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    """``declarun daemon check`` for ``daemon``: through its socket while it runs, on its
    data root once it stopped (exit 0 clean, 1 problems; one line per problem on stdout)."""
    args = ["daemon", "check", "--host", daemon.url, "--data-root", str(daemon.data_root)]
    return subprocess.run(
        cli_command(*args, *(["--repair"] if repair else [])),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=_child_env(),
        check=False,
    )


def run_daemon_briefly(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run declarund with ``args`` expecting it to exit on its own (bad flags, lock held)."""
    return subprocess.run(
        daemon_command(*args),
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=REPO_ROOT,
        env=_child_env(),
        check=False,
    )


@dataclass(frozen=True)
class HttpResult:
    """A raw HTTP answer."""

    status: int
    headers: dict[str, str]
    body: bytes


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path, timeout: float = 30) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(self.timeout)
        sock.connect(str(self._path))
        self.sock = sock


def http_request(
    socket_path: Path,
    method: str,
    path: str,
    body: bytes | None = None,
    headers: dict[str, str] | None = None,
) -> HttpResult:
    """One HTTP/1.1 request over the Unix socket; returns status, headers and body."""
    conn = _UnixHTTPConnection(socket_path)
    try:
        conn.request(method, path, body=body, headers=headers or {})
        response = conn.getresponse()
        data = response.read()
        return HttpResult(response.status, dict(response.getheaders()), data)
    finally:
        conn.close()


@dataclass
class ServedApp:
    """An aiohttp application served from a background thread on a Unix socket."""

    socket_path: Path
    loop: asyncio.AbstractEventLoop
    app: web.Application

    def call(self, fn: Callable[[], object]) -> None:
        """Run ``fn`` on the server's event loop."""
        self.loop.call_soon_threadsafe(fn)


@contextlib.contextmanager
def serving_app(
    make: Callable[[], web.Application],
    socket_path: Path,
    on_shutdown: Sequence[Callable[[], None]] = (),
) -> Iterator[ServedApp]:
    """Serve ``make()`` on ``socket_path`` (with the daemon's runner settings) until exit."""
    ready = threading.Event()
    stop: list[asyncio.Event] = []
    holder: list[ServedApp] = []
    errors: list[BaseException] = []

    async def main() -> None:
        app = make()
        runner = web.AppRunner(app, handler_cancellation=True, shutdown_timeout=5.0)
        await runner.setup()
        site = web.UnixSite(runner, str(socket_path))
        await site.start()
        stop.append(asyncio.Event())
        holder.append(ServedApp(socket_path, asyncio.get_running_loop(), app))
        ready.set()
        try:
            await stop[0].wait()
        finally:
            for fn in on_shutdown:
                fn()
            await runner.cleanup()

    def thread_main() -> None:
        try:
            asyncio.run(main())
        except BaseException as exc:
            errors.append(exc)
            ready.set()

    thread = threading.Thread(target=thread_main, name="test-app-server", daemon=True)
    thread.start()
    ready.wait(_START_TIMEOUT)
    if errors:
        raise errors[0]
    if not holder:
        raise RuntimeError("the test app did not start")
    served = holder[0]
    try:
        yield served
    finally:
        served.loop.call_soon_threadsafe(stop[0].set)
        thread.join(_STOP_TIMEOUT)
        if errors:
            raise errors[0]


def arm_failpoints(path: Path, spec: str) -> None:
    """Write a fail-point file a daemon re-reads (``DECLARUND_FAILPOINTS=@path``) in one
    step: a daemon reading a half-written ``NAME=sleep:3`` would see ``NAME`` -- a crash."""
    partial = path.with_name(f".{path.name}.tmp")
    partial.write_text(spec)
    os.replace(partial, path)
