"""Starting the real parts a benchmark compares: registry, dockerd, declarund — and cleaning up.

A :class:`Harness` is a context manager that owns one short temporary directory (Unix
socket paths are limited to 108 bytes, containerd's included) and every process started
through it. On exit — normal, an exception, Ctrl-C, SIGTERM or SIGHUP — it stops the
processes in reverse order (SIGTERM, then SIGKILL of the process group), runs ``runc delete
--force`` on every runtime state left under its directory (conmon and containers outlive
declarund by design), kills the processes whose command line still names the directory,
unmounts anything left mounted under it and removes it (unless ``keep=True``).

* :meth:`Harness.start_registry` — the CNCF distribution registry on ``127.0.0.1:<free port>``.
* :meth:`Harness.start_dockerd` — Debian's dockerd on a private socket and data root (root
  only); it spawns its own containerd, which :meth:`Daemon.rss_kib` counts.
* :meth:`Harness.start_declarund` — ``python -m declarun.daemon`` from this checkout.
* :meth:`Harness.network_namespace` — a private network namespace (for a dockerd with its
  default bridge and iptables rules, kept off the host's network).
* :func:`docker` — the one docker CLI every benchmark uses as the client.
* :meth:`Harness.on_exit` — a clean-up step (e.g. removing a daemon's containers and
  networks) that runs before the processes started earlier are stopped.

Anything that cannot start raises :class:`BenchError` with the reason and the log tail;
scripts turn it into a message and a non-zero exit, never a traceback.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import types
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "DOCKER_CLI",
    "REPO_ROOT",
    "BenchError",
    "Daemon",
    "Harness",
    "Registry",
    "disk_usage",
    "docker",
    "free_port",
    "free_subnet",
    "machine_summary",
    "run_benchmark",
    "tree_cpu_seconds",
    "tree_rss_kib",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
DOCKER_CLI = "/usr/local/bin/docker"
REGISTRY_BINARY = "/usr/bin/docker-registry"
_START_TIMEOUT = 60.0
_STOP_TIMEOUT = 30.0


class BenchError(Exception):
    """Something the benchmark needs could not be started or did not work."""


def run_benchmark(body: Callable[[], object], *, needs_root: str | None = None) -> int:
    """Run a benchmark's ``body`` and turn its ends into an exit status.

    0 when it finishes; 1 with ``benchmark failed: ...`` on a :class:`BenchError` (or when
    ``needs_root`` names why root is required and we are not root); 130 on Ctrl-C, after the
    harness has stopped and removed everything it started.
    """
    if needs_root is not None and os.geteuid() != 0:
        print(f"benchmark failed: run it as root ({needs_root})", file=sys.stderr)
        return 1
    try:
        body()
    except BenchError as exc:
        print(f"benchmark failed: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted; everything started was stopped and removed", file=sys.stderr)
        return 130
    return 0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def free_subnet() -> str:
    """A /24 in 10.160.0.0-10.249.255.0 that no interface or route of this host uses now.

    For the benchmarks' networks: on a machine shared with other engines the default address
    pools (172.17-31/16, 192.168/20) may all be taken, and an engine then refuses to create
    a network without a subnet of its own.
    """
    import ipaddress
    import random

    used: list[ipaddress.IPv4Network] = []
    for command in (["ip", "-4", "-o", "addr", "show"], ["ip", "-4", "route", "show"]):
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        for word in done.stdout.split():
            with contextlib.suppress(ValueError):
                if "/" in word:
                    used.append(ipaddress.IPv4Network(word, strict=False))
    for _ in range(1000):
        candidate = ipaddress.IPv4Network(
            f"10.{random.randrange(160, 250)}.{random.randrange(256)}.0/24"
        )
        if not any(candidate.overlaps(network) for network in used):
            return str(candidate)
    raise BenchError("no free /24 in 10.160.0.0/11 for a benchmark network")


def _log_tail(path: Path, chars: int = 3000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


# -- memory --------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue  # exited meanwhile
        # The command name may hold spaces and parentheses: parse after the last ')'.
        ppid = int(stat[stat.rindex(")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(entry))
    return children


def _vmrss_kib(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0  # exited, or a kernel thread


def tree_rss_kib(pid: int) -> dict[int, tuple[str, int]]:
    """VmRSS (KiB) of ``pid`` and all its descendants: ``{pid: (command name, kib)}``."""
    children = _children_map()
    found: dict[int, tuple[str, int]] = {}
    todo = [pid]
    while todo:
        current = todo.pop()
        try:
            name = Path(f"/proc/{current}/comm").read_text().strip()
        except OSError:
            continue
        found[current] = (name, _vmrss_kib(current))
        todo.extend(children.get(current, []))
    return found


def tree_cpu_seconds(pid: int) -> float:
    """CPU time (user + system) used by ``pid``, its descendants and their reaped children.

    A child that exited and was waited for (dockerd's ``docker-untar``) has its time
    added to its parent's ``cutime``/``cstime``, so it is counted too.
    """
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for current in tree_rss_kib(pid):
        try:
            stat = Path(f"/proc/{current}/stat").read_text()
        except OSError:
            continue
        fields = stat[stat.rindex(")") + 2 :].split()
        # Fields 14-17 of stat(5): utime stime cutime cstime (here offset by the 2 skipped).
        total += sum(int(v) for v in fields[11:15])
    return total / ticks


def disk_usage(path: Path) -> int:
    """Bytes allocated under ``path`` (``du``: hardlinks counted once, no mounts crossed)."""
    done = subprocess.run(
        ["du", "-sx", "--block-size=1", str(path)], capture_output=True, text=True, check=False
    )
    try:
        return int(done.stdout.split()[0])
    except (IndexError, ValueError):
        return 0


# -- processes -----------------------------------------------------------------------------


@dataclass
class Process:
    """A process the harness started in its own session (so Ctrl-C reaches only us)."""

    name: str
    popen: subprocess.Popen[bytes]
    log: Path

    @property
    def pid(self) -> int:
        """The process ID."""
        return self.popen.pid

    def alive(self) -> bool:
        """True while the process runs."""
        return self.popen.poll() is None

    def stop(self) -> None:
        """SIGTERM and wait; SIGKILL the whole process group if it lingers."""
        if self.popen.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.popen.send_signal(signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.popen.wait(timeout=_STOP_TIMEOUT)
        # Children (containerd, shims) share the group: make sure none survive.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        if self.popen.poll() is None:
            self.popen.wait(timeout=10)


@dataclass(frozen=True)
class Registry:
    """A running registry: ``host`` is ``127.0.0.1:<port>``."""

    host: str
    process: Process


@dataclass
class Daemon:
    """A running Docker-API daemon (dockerd or declarund) on a private Unix socket."""

    kind: str
    host: str
    root: Path
    process: Process
    # PID whose process tree is measured (dockerd's own PID, not a wrapper's).
    measured_pid: int
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def rss_kib(self) -> dict[int, tuple[str, int]]:
        """VmRSS of the daemon and its children (e.g. dockerd's containerd)."""
        return tree_rss_kib(self.measured_pid)

    def stop(self) -> None:
        """Stop the daemon (and its children)."""
        if self.measured_pid != self.process.pid and self.process.alive():
            # Under a wrapper (py-spy): stop the daemon itself and let the wrapper finish
            # (py-spy writes its profile when its child exits).
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.measured_pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.popen.wait(timeout=_STOP_TIMEOUT)
        self.process.stop()
        for fn in self.on_stop:
            fn()


def docker(
    host: str, *args: str, config_dir: Path, timeout: float = 900
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against ``host`` (``unix://...``) only; raises BenchError on failure."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_CONFIG"] = str(config_dir)  # no credentials or contexts from the user's setup
    try:
        done = subprocess.run(
            [DOCKER_CLI, "-H", host, *args],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise BenchError(f"docker {' '.join(args)} against {host} timed out") from None
    if done.returncode != 0:
        raise BenchError(
            f"docker {' '.join(args)} against {host} failed ({done.returncode}):\n"
            f"{done.stderr.strip() or done.stdout.strip()}"
        )
    return done


def _raise_interrupt(signum: int, _frame: types.FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


class Harness:
    """Owns a temporary directory and every process started through it."""

    def __init__(self, *, prefix: str = "dbench-", keep: bool = False) -> None:
        self.keep = keep
        self._prefix = prefix
        self._stack = contextlib.ExitStack()
        self._old_handlers: dict[int, object] = {}
        self.root = Path()
        self.docker_config = Path()

    def __enter__(self) -> Harness:
        for signum in (signal.SIGTERM, signal.SIGHUP):
            self._old_handlers[signum] = signal.signal(signum, _raise_interrupt)
        # Short and under /tmp: containerd puts its socket under dockerd's exec-root.
        self.root = Path(tempfile.mkdtemp(prefix=self._prefix, dir="/tmp"))
        self._stack.callback(self._remove_root)
        self.docker_config = self.path("docker-config")
        return self

    def __exit__(self, *exc: object) -> None:
        # Cleaning up must not be cut short by a second Ctrl-C.
        old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
        try:
            self._stack.close()
        finally:
            signal.signal(signal.SIGINT, old_int)
            for signum, handler in self._old_handlers.items():
                signal.signal(signum, handler)  # type: ignore[arg-type]

    def path(self, name: str) -> Path:
        """A fresh directory ``name`` under the harness root."""
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return path

    def network_namespace(self, name: str) -> str:
        """A fresh named network namespace with loopback up; deleted on exit."""
        netns = f"{self.root.name}-{name}"
        for command in (
            ["ip", "netns", "add", netns],
            ["ip", "netns", "exec", netns, "ip", "link", "set", "lo", "up"],
        ):
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise BenchError(f"{' '.join(command)} failed: {done.stderr.strip()}")
            if command[2] == "add":
                self._stack.callback(
                    subprocess.run, ["ip", "netns", "delete", netns], capture_output=True
                )
        return netns

    def _remove_root(self) -> None:
        # Container monitors (conmon) outlive declarund by design, and containers outlive
        # their monitors: delete the containers, then stop what is left of ours.
        _delete_runtime_containers(self.root)
        _kill_strays(self.root)
        _unmount_under(self.root)
        if self.keep:
            print(f"kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)

    def remove(self, path: Path) -> None:
        """Delete a directory under the root (unmounting anything left mounted in it)."""
        _unmount_under(path)
        shutil.rmtree(path, ignore_errors=True)

    def on_exit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` on exit, before anything started earlier is stopped (LIFO order)."""
        self._stack.callback(fn)

    def spawn(self, name: str, command: Sequence[str], log: Path, **kwargs: object) -> Process:
        """Start ``command`` in its own session, output to ``log``; stopped on exit."""
        with open(log, "ab") as log_file:
            popen = subprocess.Popen(  # type: ignore[call-overload]
                list(command),
                stdout=log_file,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                **kwargs,
            )
        process = Process(name, popen, log)
        self._stack.callback(process.stop)
        return process

    # -- the parts ---------------------------------------------------------------------------

    def start_registry(self) -> Registry:
        """The CNCF distribution registry on a free loopback port, storage under the root."""
        if not os.access(REGISTRY_BINARY, os.X_OK):
            raise BenchError(f"{REGISTRY_BINARY} not found: apt-get install docker-registry")
        directory = self.path("registry")
        port = free_port()
        config = directory / "config.yml"
        config.write_text(
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            f"storage:\n  filesystem:\n    rootdirectory: {directory / 'data'}\n"
            "  maintenance:\n    uploadpurging:\n      enabled: false\n"
            f"http:\n  addr: 127.0.0.1:{port}\n  secret: declarun-benchmark\n"
        )
        log = directory / "registry.log"
        process = self.spawn("registry", [REGISTRY_BINARY, "serve", str(config)], log)
        url = f"http://127.0.0.1:{port}/v2/"
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if not process.alive():
                raise BenchError(f"the registry exited at start:\n{_log_tail(log)}")
            if _answers(url):
                return Registry(f"127.0.0.1:{port}", process)
            if time.monotonic() > deadline:
                raise BenchError(f"the registry did not answer on {url}:\n{_log_tail(log)}")
            time.sleep(0.05)

    def start_dockerd(
        self,
        name: str,
        *,
        insecure_registries: Sequence[str] = (),
        netns: str | None = None,
    ) -> Daemon:
        """Debian's dockerd with a fresh data root ``<root>/<name>``; needs root.

        Without ``netns`` it runs with no bridge and no iptables rules (nothing on the host's
        network changes). With ``netns`` (from :meth:`network_namespace`) it runs inside that
        namespace with its default networking: the ``docker0`` bridge, veth pairs and
        iptables rules all live and die there.
        """
        if os.geteuid() != 0:
            raise BenchError("dockerd needs root: run the benchmark as root")
        binary = shutil.which("dockerd")
        if binary is None:
            raise BenchError("dockerd not found: apt-get install docker.io")
        directory = self.path(name)
        sock = directory / "docker.sock"
        command = [
            binary,
            "--data-root", str(directory / "data"),
            "--exec-root", str(directory / "exec"),
            "--host", f"unix://{sock}",
            "--pidfile", str(directory / "docker.pid"),
        ]  # fmt: skip
        if netns is None:
            command += ["--bridge", "none", "--iptables=false", "--ip6tables=false"]
            command += ["--ip-masq=false"]
        else:
            # nsenter execs dockerd (same PID) in the namespace; not `ip netns exec`, whose
            # fresh /sys has no cgroup mounts.
            command = ["nsenter", f"--net=/run/netns/{netns}", *command]
        for registry in insecure_registries:
            command += ["--insecure-registry", registry]
        log = directory / "dockerd.log"
        process = self.spawn(name, command, log)
        daemon = Daemon("dockerd", f"unix://{sock}", directory, process, process.pid)
        self._wait_ready(daemon, log)
        return daemon

    def start_declarund(
        self,
        name: str,
        *,
        extra_args: Sequence[str] = (),
        wrapper: Sequence[str] = (),
        source: Path | None = None,
    ) -> Daemon:
        """declarund from this checkout (or the checkout ``source``, run with this one's
        virtualenv) with a fresh data root ``<root>/<name>/root``.

        ``wrapper`` prefixes the command (e.g. ``py-spy record -o out.svg --``); memory is
        then still measured on declarund itself, not the wrapper.
        """
        tree = source if source is not None else REPO_ROOT
        directory = self.path(name)
        sock = directory / "declarun.sock"
        python = REPO_ROOT / ".venv" / "bin" / "python"
        if not python.exists():
            python = Path(sys.executable)
        command = [
            *wrapper,
            str(python),
            "-m",
            "declarun.daemon",
            "--host", f"unix://{sock}",
            "--data-root", str(directory / "root"),
            *extra_args,
        ]  # fmt: skip
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(tree), env.get("PYTHONPATH")]))
        log = directory / "declarund.log"
        process = self.spawn(name, command, log, cwd=tree, env=env)
        daemon = Daemon("declarund", f"unix://{sock}", directory, process, process.pid)
        self._wait_ready(daemon, log)
        if wrapper:
            daemon.measured_pid = _find_descendant(process.pid, "declarun.daemon")
        return daemon

    def _wait_ready(self, daemon: Daemon, log: Path) -> None:
        deadline = time.monotonic() + _START_TIMEOUT
        while True:
            if not daemon.process.alive():
                raise BenchError(f"{daemon.kind} exited at start:\n{_log_tail(log)}")
            try:
                docker(daemon.host, "version", config_dir=self.docker_config, timeout=10)
                return
            except BenchError:
                if time.monotonic() > deadline:
                    raise BenchError(
                        f"{daemon.kind} did not answer within {_START_TIMEOUT:.0f} s:\n"
                        f"{_log_tail(log)}"
                    ) from None
            time.sleep(0.2)


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)
    except (OSError, urllib.error.URLError):
        return False


def _find_descendant(pid: int, needle: str) -> int:
    for candidate in tree_rss_kib(pid):
        if candidate == pid:
            continue
        with contextlib.suppress(OSError):
            if needle in Path(f"/proc/{candidate}/cmdline").read_text().replace("\0", " "):
                return candidate
    return pid


def _delete_runtime_containers(root: Path) -> None:
    """``runc delete --force`` every container whose runc state lives under ``root``."""
    runc = shutil.which("runc")
    if runc is None:
        return
    found: list[tuple[str, str]] = []
    for dirpath, dirnames, filenames in os.walk(root):
        if "state.json" in filenames:
            found.append((os.path.dirname(dirpath), os.path.basename(dirpath)))
            dirnames.clear()
        # Container root filesystems hold nothing of interest and may be large.
        dirnames[:] = [d for d in dirnames if d not in ("rootfs", "merged", "diff", "blobs")]
    for state_root, container_id in found:
        subprocess.run(
            [runc, "--root", state_root, "delete", "--force", container_id],
            capture_output=True,
            check=False,
            timeout=30,
        )


def _kill_strays(root: Path) -> None:
    """SIGKILL processes whose command line names a path under ``root`` (only ours do)."""
    needle = str(root).encode()
    me = os.getpid()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) == me:
            continue
        try:
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        if needle in cmdline:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(int(entry), signal.SIGKILL)


def _unmount_under(path: Path) -> None:
    """Lazily unmount every mount point at or below ``path`` (deepest first)."""
    prefix = str(path.resolve())
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return
    points = []
    for line in lines:
        # Field 5 is the mount point, with spaces etc. octal-escaped.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == prefix or point.startswith(prefix + "/"):
            points.append(point)
    for point in sorted(points, key=len, reverse=True):
        subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def machine_summary() -> str:
    """``N CPUs, M GiB RAM, kernel K`` for figures tables."""
    mem_kib = 0
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    return (
        f"{os.cpu_count()} CPUs ({cpu or 'unknown'}), {mem_kib / 1024 / 1024:.1f} GiB RAM, "
        f"kernel {os.uname().release}"
    )
