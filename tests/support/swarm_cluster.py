"""A real three-node Docker Swarm on this machine: one manager, two workers.

Each node is a Debian ``dockerd`` in a network namespace of its own (``<prefix>-n1`` ..
``-n3``), with its own data root, exec root, socket, cgroup parent and hostname
(``node1`` .. ``node3``), its ``eth0`` on a bridge in a fourth namespace (``<prefix>-hub``)
at ``192.168.77.<n>/24``. Node 1 initialises the Swarm and the others join it over those
private addresses, so Swarm's control plane, gossip and overlay (VXLAN) traffic really cross
a network between nodes. Nothing is added to this machine's own network namespace.

* dockerd is started with ``nsenter --net=/var/run/netns/NAME`` — ``ip netns exec`` would
  remount ``/sys`` and hide the cgroups dockerd needs — and ``unshare --uts`` for its
  hostname.
* A registry on this machine's loopback (``127.0.0.1:PORT``) is reached from every node at
  the same address through ``netns_forward.py``, so image references need no rewriting —
  and at ``127.0.0.1:5000`` too, the examples' registry address.
* The kernel here has no IPVS, so Swarm's virtual IPs and its ingress routing mesh do not
  work: services use DNS round robin and ports are published on each node (``mode: host``);
  ``declarun --engine swarm`` does so by itself when IPVS is absent (``specs/scale-out.md``).
* Each node's Swarm node carries the label ``dev.declarun.engine-host`` with its socket, so
  ``declarun exec`` can reach the task's own node.

:func:`start_cluster` returns a :class:`Cluster` and leaves the processes running (detached:
the example script's cluster outlives it); :func:`stop_cluster` tears down everything the
state file names — processes (those left in a node's namespace and in its cgroups too, so a
node killed with SIGKILL leaves nothing behind), mounts under the root, namespaces, cgroups
and the root directory — and is safe to call on a half-started cluster. It gives the nodes a
few seconds together to stop, then kills what is left: a test cluster holds nothing worth
a slow shutdown.

A test session killed before its teardown (SIGKILL, a CI timeout) leaves its cluster
behind; the state file names the process that started it (``owner``), so the next
:func:`start_cluster` in ``/tmp`` tears down every such cluster whose owner is gone first.

Standard library only: ``examples/swarm/cluster.sh`` runs this file with the system's Python
(``python3 tests/support/swarm_cluster.py up|down``).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "ENGINE_HOST_LABEL",
    "EXAMPLES_REGISTRY_PORT",
    "Cluster",
    "ClusterUnavailable",
    "Node",
    "running_cluster",
    "start_cluster",
    "stop_cluster",
    "sweep_abandoned_clusters",
]

ENGINE_HOST_LABEL = "dev.declarun.engine-host"
EXAMPLES_REGISTRY_PORT = 5000
_SUBNET = "192.168.77"
_NODES = 3
_START_TIMEOUT = 90.0
_FORWARDER = Path(__file__).with_name("netns_forward.py")
_CGROUP_ROOT = Path("/sys/fs/cgroup")
_TEST_ROOTS = Path("/tmp")
_TEST_ROOT_PREFIX = "dsw-"
_GRACE = 5.0  # seconds the nodes get together to stop before they are killed


class ClusterUnavailable(RuntimeError):
    """The cluster cannot run here (not root, no dockerd, no netns support); says why."""


@dataclass(frozen=True)
class Node:
    """One dockerd of the cluster."""

    index: int
    name: str  # hostname: node1
    netns: str
    address: str  # 192.168.77.<index>
    root: Path

    @property
    def host(self) -> str:
        """Its engine's ``unix://`` address."""
        return f"unix://{self.root}/docker.sock"

    @property
    def cgroup_parent(self) -> str:
        """Where its containers' cgroups live, so a dead node's containers can be found."""
        return f"/{self.netns}"

    def docker(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """Run the docker CLI against this node."""
        return _docker(self.host, *args, check=check)

    def read_log(self) -> str:
        """Its dockerd's log."""
        try:
            return (self.root / "dockerd.log").read_text(errors="replace")
        except OSError:
            return ""


@dataclass(frozen=True)
class Cluster:
    """A running three-node Swarm; ``manager`` is node 1."""

    root: Path
    prefix: str
    nodes: tuple[Node, ...]
    registry_port: int | None

    @property
    def manager(self) -> Node:
        """The manager (node 1): ``declarun --engine swarm --host`` points at it."""
        return self.nodes[0]

    @property
    def workers(self) -> tuple[Node, ...]:
        """Nodes 2 and 3."""
        return self.nodes[1:]

    def in_node(self, node: Node, *command: str, timeout: float = 30) -> str:
        """Run ``command`` in ``node``'s network namespace (e.g. ``curl`` a published port);
        returns its standard output (failures raise)."""
        done = subprocess.run(
            ["nsenter", f"--net=/var/run/netns/{node.netns}", *command],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if done.returncode != 0:
            raise AssertionError(f"{' '.join(command)} in {node.name}: {done.stderr.strip()}")
        return done.stdout

    def kill_node(self, node: Node) -> None:
        """Kill ``node`` as a power cut would: its dockerd, containerd and containers get
        SIGKILL; the Swarm finds out by itself (missed heartbeats)."""
        _kill_namespace(node.netns)
        _kill_cgroup(node.cgroup_parent)


def _docker(host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["docker", "-H", host, *args], capture_output=True, text=True, check=False, timeout=180
    )
    if check and done.returncode != 0:
        raise ClusterUnavailable(f"docker {' '.join(args)}: {done.stderr.strip()}")
    return done


def _run(*command: str) -> None:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ClusterUnavailable(f"{' '.join(command)}: {done.stderr.strip()}")


def _in_hub(prefix: str, *command: str) -> None:
    _run("ip", "netns", "exec", f"{prefix}-hub", *command)


def _check_environment() -> None:
    if os.geteuid() != 0:
        raise ClusterUnavailable("a Swarm of dockerd nodes needs root")
    for program in ("dockerd", "docker", "ip", "nsenter", "unshare"):
        if shutil.which(program) is None:
            raise ClusterUnavailable(f"{program} is not installed")


def _write_state(root: Path, state: dict[str, object]) -> None:
    (root / "cluster.json").write_text(json.dumps(state, indent=2) + "\n")


def _read_state(root: Path) -> dict[str, object]:
    try:
        data: dict[str, object] = json.loads((root / "cluster.json").read_text())
    except (OSError, ValueError):
        return {}
    return data


def _wire(prefix: str, nodes: list[Node]) -> None:
    _run("ip", "netns", "add", f"{prefix}-hub")
    _in_hub(prefix, "ip", "link", "set", "lo", "up")
    _in_hub(prefix, "ip", "link", "add", "br0", "type", "bridge")
    _in_hub(prefix, "ip", "addr", "add", f"{_SUBNET}.254/24", "dev", "br0")
    _in_hub(prefix, "ip", "link", "set", "br0", "up")
    for node in nodes:
        _run("ip", "netns", "add", node.netns)
        outer, inner = f"{prefix}h{node.index}", f"{prefix}n{node.index}"
        _run("ip", "link", "add", outer, "type", "veth", "peer", "name", inner)
        _run("ip", "link", "set", outer, "netns", f"{prefix}-hub")
        _run("ip", "link", "set", inner, "netns", node.netns)
        _in_hub(prefix, "ip", "link", "set", outer, "master", "br0", "up")
        inside = ["ip", "netns", "exec", node.netns]
        _run(*inside, "ip", "link", "set", "lo", "up")
        _run(*inside, "ip", "link", "set", inner, "name", "eth0")
        _run(*inside, "ip", "addr", "add", f"{node.address}/24", "dev", "eth0")
        _run(*inside, "ip", "link", "set", "eth0", "up")


def _start_dockerd(node: Node, registry_port: int | None) -> int:
    node.root.mkdir(parents=True, exist_ok=True)
    command = [
        "nsenter", f"--net=/var/run/netns/{node.netns}",
        "unshare", "--uts",
        "sh", "-c", f'hostname {node.name} && exec "$@"', "dockerd",
        "dockerd",
        "--data-root", str(node.root / "data"),
        "--exec-root", str(node.root / "exec"),
        "--pidfile", str(node.root / "dockerd.pid"),
        "--host", node.host,
        "--cgroup-parent", node.cgroup_parent,
        "--bridge", "none",
        "--iptables=false",
        "--ip6tables=false",
    ]  # fmt: skip
    if registry_port is not None:
        # 127.0.0.0/8 registries are insecure (plain HTTP) by default; said for clarity.
        command += ["--insecure-registry", f"127.0.0.1:{registry_port}"]
    return _spawn(command, node.root / "dockerd.log")


def _wait_answering(node: Node, deadline: float) -> None:
    while _docker(node.host, "version", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise ClusterUnavailable(
                f"dockerd of {node.name} did not answer:\n{node.read_log()[-2000:]}"
            )
        time.sleep(0.2)


def _form_swarm(nodes: list[Node]) -> None:
    manager = nodes[0]
    _docker(
        manager.host,
        "swarm", "init",
        "--advertise-addr", manager.address,
        "--listen-addr", f"{manager.address}:2377",
        "--default-addr-pool", "10.200.0.0/16",
        # Missed heartbeats are how a dead node is noticed: keep that quick for the tests.
        "--dispatcher-heartbeat", "1s",
        "--task-history-limit", "3",
    )  # fmt: skip
    token = _docker(manager.host, "swarm", "join-token", "-q", "worker").stdout.strip()
    for node in nodes[1:]:
        _docker(
            node.host,
            "swarm", "join",
            "--advertise-addr", node.address,
            "--listen-addr", f"{node.address}:2377",
            "--token", token,
            f"{manager.address}:2377",
        )  # fmt: skip
    deadline = time.monotonic() + 30
    while True:
        listed = _docker(manager.host, "node", "ls", "--format", "{{.Hostname}} {{.Status}}")
        ready = [line for line in listed.stdout.splitlines() if line.endswith(" Ready")]
        if len(ready) == len(nodes):
            break
        if time.monotonic() > deadline:
            raise ClusterUnavailable(f"nodes not ready: {listed.stdout}")
        time.sleep(0.3)
    for node in nodes:
        _docker(manager.host, "node", "update", "--label-add",
                f"{ENGINE_HOST_LABEL}={node.host}", node.name)  # fmt: skip


def _spawn(command: list[str], log: Path, *, ready_line: bool = False) -> int:
    """Start ``command`` detached (its own session, output to ``log``), so it may outlive
    this process (the example's cluster does); with ``ready_line``, wait until it prints
    ``ready``. Returns its pid; :func:`stop_cluster` ends it and reaps it."""
    program = shutil.which(command[0]) or command[0]
    log_fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
    read_fd, write_fd = os.pipe() if ready_line else (-1, log_fd)
    try:
        pid = os.posix_spawn(
            program,
            command,
            dict(os.environ),
            file_actions=[
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write_fd, 1),
                (os.POSIX_SPAWN_DUP2, log_fd, 2),
            ],
            setsid=True,
        )
    finally:
        os.close(log_fd)
        if ready_line:
            os.close(write_fd)
    if ready_line:
        with os.fdopen(read_fd, "rb") as out:
            if out.readline().strip() != b"ready":
                raise ClusterUnavailable(f"{command[1]} did not start: {_tail(log)}")
    return pid


def _start_forwarder(root: Path, port: int, nodes: list[Node]) -> int:
    command = [sys.executable, str(_FORWARDER), _forwards(port), *(n.netns for n in nodes)]
    return _spawn(command, root / "forward.log", ready_line=True)


def _forwards(port: int) -> str:
    """The registry at its own port, and at the examples' 127.0.0.1:5000."""
    if port == EXAMPLES_REGISTRY_PORT:
        return str(port)
    return f"{port},{EXAMPLES_REGISTRY_PORT}:{port}"


def _tail(path: Path) -> str:
    try:
        return path.read_text(errors="replace")[-2000:]
    except OSError:
        return ""


def _process_start(pid: int) -> str:
    """``pid``'s start time (``/proc/PID/stat`` field 22); "" when there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return ""
    return stat.rsplit(")", 1)[-1].split()[19]


def _owner() -> dict[str, object]:
    return {"pid": os.getpid(), "start": _process_start(os.getpid())}


def _abandoned(root: Path, state: dict[str, object]) -> bool:
    """True when the process that started the cluster of ``state`` is gone."""
    owner = state.get("owner")
    if isinstance(owner, dict):
        pid, start = int(owner.get("pid", 0)), str(owner.get("start", ""))
        return not start or _process_start(pid) != start
    # Written before owners were recorded: abandoned once none of its processes is left
    # (and, with none recorded yet, once it is too old to be still starting).
    pids = [int(p) for p in state.get("pids", []) or []]  # type: ignore[union-attr]
    if not pids:
        try:
            return time.time() - (root / "cluster.json").stat().st_mtime > 600
        except OSError:
            return False
    return not any(_process_start(pid) for pid in pids)


def sweep_abandoned_clusters() -> list[Path]:
    """Tear down the test clusters under ``/tmp`` whose session died before its teardown;
    returns their roots."""
    swept = []
    for root in sorted(_TEST_ROOTS.glob(f"{_TEST_ROOT_PREFIX}*")):
        state = _read_state(root)
        if state and _abandoned(root, state):
            stop_cluster(root)
            swept.append(root)
    return swept


def start_cluster(
    root: Path | None = None, *, prefix: str | None = None, registry_port: int | None = None
) -> Cluster:
    """Start the three nodes and form the Swarm (see the module docstring). On failure
    everything started so far is torn down before the error is raised. Without ``root`` (the
    tests) the cluster goes in a new directory under ``/tmp``, after the clusters of dead
    sessions there are swept."""
    _check_environment()
    if root is None:
        sweep_abandoned_clusters()
        root = Path(tempfile.mkdtemp(prefix=_TEST_ROOT_PREFIX, dir=str(_TEST_ROOTS)))
    root.mkdir(parents=True, exist_ok=True)
    prefix = prefix or f"dsw{os.getpid() % 100000}"
    nodes = [
        Node(
            index=i,
            name=f"node{i}",
            netns=f"{prefix}-n{i}",
            address=f"{_SUBNET}.{i}",
            root=root / f"n{i}",
        )
        for i in range(1, _NODES + 1)
    ]
    state: dict[str, object] = {
        "owner": _owner(),
        "prefix": prefix,
        "registry_port": registry_port,
        "namespaces": [f"{prefix}-hub", *(n.netns for n in nodes)],
        "nodes": [{"index": n.index, "netns": n.netns, "root": str(n.root)} for n in nodes],
        "pids": [],
    }
    _write_state(root, state)
    try:
        _wire(prefix, nodes)
        pids = [_start_dockerd(node, registry_port) for node in nodes]
        state["pids"] = pids
        _write_state(root, state)
        deadline = time.monotonic() + _START_TIMEOUT
        for node in nodes:
            _wait_answering(node, deadline)
        if registry_port is not None:
            state["pids"] = [*pids, _start_forwarder(root, registry_port, nodes)]
            _write_state(root, state)
        _form_swarm(nodes)
    except BaseException:
        stop_cluster(root)
        raise
    return Cluster(root=root, prefix=prefix, nodes=tuple(nodes), registry_port=registry_port)


def _reap(pid: int) -> None:
    """Collect ``pid``'s exit status when it is our child (a zombie otherwise)."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            return  # not ours (the example's cluster), or reaped already
        if done:
            return
        time.sleep(0.05)


def _namespace_pids(netns: str) -> list[int]:
    done = subprocess.run(["ip", "netns", "pids", netns], capture_output=True, text=True)
    return [int(p) for p in done.stdout.split() if p.isdigit()]


def _kill_namespace(netns: str) -> None:
    for _ in range(5):
        pids = _namespace_pids(netns)
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _cgroup_dirs(parent: str) -> list[Path]:
    found = []
    if not _CGROUP_ROOT.is_dir():
        return found
    for controller in _CGROUP_ROOT.iterdir():
        top = controller / parent.lstrip("/")
        if top.is_dir():
            found.append(top)
    return found


def _kill_cgroup(parent: str) -> None:
    for _ in range(5):
        pids: set[int] = set()
        for top in _cgroup_dirs(parent):
            for procs in top.rglob("cgroup.procs"):
                with contextlib.suppress(OSError):
                    pids.update(int(p) for p in procs.read_text().split())
        if not pids:
            return
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        time.sleep(0.2)


def _remove_cgroups(parent: str) -> None:
    for top in _cgroup_dirs(parent):
        for directory in sorted(top.rglob("*"), key=lambda p: len(p.parts), reverse=True):
            if directory.is_dir():
                with contextlib.suppress(OSError):
                    directory.rmdir()
        with contextlib.suppress(OSError):
            top.rmdir()


def _unmount_under(root: Path) -> None:
    prefix = str(root.resolve()) + "/"
    for _ in range(3):
        points = []
        with open("/proc/self/mountinfo") as mountinfo:
            for line in mountinfo:
                point = line.split()[4].replace("\\040", " ")
                if point.startswith(prefix):
                    points.append(point)
        if not points:
            return
        for point in sorted(points, key=len, reverse=True):
            subprocess.run(["umount", "-l", point], capture_output=True, check=False)


def _stop_together(pids: list[int]) -> None:
    """SIGTERM to each process group, then wait (at most :data:`_GRACE`) until all are gone."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + _GRACE
    waiting = list(pids)
    while waiting and time.monotonic() < deadline:
        for pid in list(waiting):
            try:
                os.killpg(pid, 0)
            except (ProcessLookupError, PermissionError):
                waiting.remove(pid)
        time.sleep(0.1)


def stop_cluster(root: Path) -> None:
    """Tear down the cluster whose state is in ``root`` (see the module docstring)."""
    state = _read_state(root)
    pids = [int(p) for p in state.get("pids", []) or []]  # type: ignore[union-attr]
    nodes = state.get("nodes", []) or []
    _stop_together(pids)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(pid, signal.SIGKILL)
        _reap(pid)
    for node in nodes:  # type: ignore[union-attr]
        _kill_namespace(str(node["netns"]))
        _kill_cgroup(f"/{node['netns']}")
    for node in nodes:  # type: ignore[union-attr]
        _remove_cgroups(f"/{node['netns']}")
    _unmount_under(root)
    for netns in state.get("namespaces", []) or []:  # type: ignore[union-attr]
        _kill_namespace(str(netns))
        subprocess.run(["ip", "netns", "del", str(netns)], capture_output=True, check=False)
    shutil.rmtree(root, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(*, registry_port: int | None = None) -> Iterator[Cluster]:
    """A cluster for the duration of the block, torn down afterwards whatever happened."""
    cluster = start_cluster(registry_port=registry_port)
    try:
        yield cluster
    finally:
        stop_cluster(cluster.root)


def _main(argv: list[str]) -> int:
    usage = "usage: swarm_cluster.py up|down [--root DIR] [--prefix NAME] [--registry-port N]"
    if not argv or argv[0] not in ("up", "down"):
        print(usage, file=sys.stderr)
        return 2
    options = dict(zip(argv[1::2], argv[2::2], strict=False))
    root = Path(options.get("--root", "/var/lib/declarun-swarm-example"))
    if argv[0] == "down":
        stop_cluster(root)
        print(f"cluster in {root}: stopped and removed")
        return 0
    if (root / "cluster.json").exists():
        print(f"a cluster already runs from {root}: run 'down' first", file=sys.stderr)
        return 1
    port = options.get("--registry-port")
    try:
        cluster = start_cluster(
            root,
            prefix=options.get("--prefix", "dswex"),
            registry_port=int(port) if port else None,
        )
    except ClusterUnavailable as exc:
        print(f"cannot start the cluster: {exc}", file=sys.stderr)
        return 1
    for node in cluster.nodes:
        role = "manager" if node is cluster.manager else "worker"
        print(f"{node.name}  {role:7}  {node.address}  {node.host}  (netns {node.netns})")
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
