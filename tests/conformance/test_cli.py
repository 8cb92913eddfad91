"""The docker CLI's everyday commands, on declarund and dockerd side by side."""

from __future__ import annotations

import json
import os
import pty
import select
import subprocess
import time
from pathlib import Path

from tests.conformance.conftest import Pair, Side, unique


def _docker(side: Side, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    return side.engine.docker(*args, check=check)


def _with_tty(side: Side, *args: str, stdin: bytes = b"") -> tuple[int, bytes]:
    """Run the docker CLI on a pseudo-terminal (``-it`` wants one); its exit code and output."""
    controller, terminal = pty.openpty()
    proc = subprocess.Popen(["docker", "-H", side.engine.host, *args], stdin=terminal,
                            stdout=terminal, stderr=terminal, close_fds=True)  # fmt: skip
    os.close(terminal)
    if stdin:
        os.write(controller, stdin)
    output = b""
    deadline = time.monotonic() + 60
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([controller], [], [], 1)
            if ready:
                try:
                    chunk = os.read(controller, 4096)
                except OSError:  # the terminal closed: the CLI is done
                    break
                if not chunk:
                    break
                output += chunk
            elif proc.poll() is not None:
                break
        return proc.wait(timeout=30), output
    finally:
        os.close(controller)
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def _cleanup_container(side: Side, name: str) -> None:
    side.later(lambda: _docker(side, "rm", "-f", "-v", name, check=False))


def test_run_and_exec_with_a_terminal(pair: Pair) -> None:
    for side in pair.both:
        name = unique("tty")
        _cleanup_container(side, name)
        code, out = _with_tty(side, "run", "-it", "--name", name, side.image,
                              "sh", "-c", "tty; echo hello")  # fmt: skip
        assert code == 0, (side.kind, out)
        assert b"/dev/pts/0" in out and b"hello\r\n" in out, (side.kind, out)
        long = unique("tty")
        _cleanup_container(side, long)
        _docker(side, "run", "-d", "--name", long, side.image, "sleep", "300")
        code, out = _with_tty(side, "exec", "-it", long, "sh", "-c", "tty; echo from-exec")
        assert code == 0 and b"from-exec\r\n" in out, (side.kind, out)


def test_cp_both_ways_on_created_running_and_exited_containers(pair: Pair, tmp_path: Path) -> None:
    source = tmp_path / "in.txt"
    source.write_text("copied in\n")
    for side in pair.both:
        name = unique("cp")
        _cleanup_container(side, name)
        _docker(side, "create", "--name", name, side.image, "sleep", "300")
        seen = []
        for phase in ("created", "running", "exited"):
            if phase == "running":
                _docker(side, "start", name)
            if phase == "exited":
                _docker(side, "stop", "-t", "0", name)
            _docker(side, "cp", str(source), f"{name}:/tmp/{phase}.txt")
            back = tmp_path / f"{side.kind}-{phase}.txt"
            _docker(side, "cp", f"{name}:/tmp/{phase}.txt", str(back))
            seen.append(back.read_text())
        assert seen == ["copied in\n"] * 3, side.kind


def test_commit_update_stats_and_network_create(pair: Pair) -> None:
    results = {}
    for side in pair.both:
        net, name, peer = unique("cli-net"), unique("cli"), unique("cli-peer")
        image = f"{unique('cli-commit')}:v1"
        for each in (name, peer):
            _cleanup_container(side, each)
        side.later(lambda side=side, image=image: _docker(side, "rmi", "-f", image, check=False))
        side.cleanups.insert(0, lambda side=side, net=net: _docker(side, "network", "rm", net))
        _docker(side, "network", "create", "--subnet", "10.94.0.0/24", "--gateway",
                "10.94.0.254", "--ip-range", "10.94.0.128/25", net)  # fmt: skip
        ipam = json.loads(_docker(side, "network", "inspect", net).stdout)[0]["IPAM"]["Config"]
        _docker(side, "run", "-d", "--name", name, "--network", net, side.image,
                "sh", "-c", "echo ok > /tmp/i.html && httpd -f -p 8000 -h /tmp")  # fmt: skip
        _docker(side, "update", "--memory", "64m", "--memory-swap", "128m", "--cpu-shares",
                "512", "--restart", "on-failure:2", name)  # fmt: skip
        limits = json.loads(_docker(side, "inspect", "-f", "{{json .HostConfig}}", name).stdout)
        ip = _docker(side, "inspect", "-f",
                     "{{range .NetworkSettings.Networks}}{{.IPAddress}}{{end}}", name).stdout  # fmt: skip
        _docker(side, "run", "--name", peer, "--network", net, side.image, "sh", "-c",
                "for i in 1 2 3 4 5; do printf 'GET /i.html HTTP/1.0\\r\\n\\r\\n' | "
                f"nc -w 2 {ip.strip()} 8000; done")  # fmt: skip
        net_io = _docker(side, "stats", "--no-stream", "--format", "{{.NetIO}}", name).stdout
        _docker(side, "commit", "-c", 'CMD ["cat", "/tmp/i.html"]', name, image)
        ran = _docker(side, "run", "--rm", "--network", "none", image).stdout
        results[side.kind] = [
            ipam, ip.strip().startswith("10.94.0."),
            [limits[k] for k in ("Memory", "MemorySwap", "CpuShares")], limits["RestartPolicy"],
            net_io.strip() != "0B / 0B", ran,
        ]  # fmt: skip
        # Both sides use one subnet: the first side's bridge goes before the second's is made
        # (two host bridges with one subnet do not carry traffic reliably on one host).
        side.clean_up()
    assert results["declarund"] == results["dockerd"]
    assert results["declarund"][4] is True  # traffic shows in NET I/O
    assert results["declarund"][5] == "ok\n"


def test_volumes_from_and_link(pair: Pair) -> None:
    for side in pair.both:
        data = unique("vf-data")
        _cleanup_container(side, data)
        _docker(side, "create", "--name", data, "-v", "/data", side.image, "true")
        _docker(side, "cp", "/etc/hostname", f"{data}:/data/host")
        out = _docker(side, "run", "--rm", "--volumes-from", data, "--network", "none",
                      side.image, "ls", "/data").stdout  # fmt: skip
        assert out == "host\n", side.kind
    # --link on the default bridge (the test dockerd has none): declarund alone. A word match:
    # the container's own hosts line is its hex ID, which may hold the letters "db".
    side = pair.declarund
    server = unique("link-srv")
    _cleanup_container(side, server)
    _docker(side, "run", "-d", "--name", server, "--expose", "80", side.image, "sleep", "300")
    out = _docker(side, "run", "--rm", "--link", f"{server}:db", side.image,
                  "sh", "-c", "echo $DB_PORT $DB_NAME; grep -cw db /etc/hosts").stdout  # fmt: skip
    port, name, hosts = out.split()
    address = side.api.inspect_container(server)["NetworkSettings"]["IPAddress"]
    assert address and port == f"tcp://{address}:80"
    assert name.endswith("/db") and hosts == "1"
