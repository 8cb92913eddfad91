"""Fixtures for networking tests with real network namespaces and the real CNI plugins.

``lab`` gives a test its own run dir (namespaces), state dir (CNI cache and leases), a
fresh network id and a /24 that overlaps nothing on the host. Everything a test creates is
torn down afterwards even when it fails: cached attachments are deleted through the
plugins, namespaces unmounted, the bridge removed, and — as a last resort — iptables rules
that still mention the test's network are deleted (the tests themselves assert that the
driver left none).

Traffic stays inside the namespaces the tests create and on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import os
import secrets
import shutil
import subprocess
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from declarun.daemon.networks import cniconf, ipam_pool, netns
from declarun.daemon.networks.cni import AttachResult, CniDriver
from tests.support.workers import LAB_BLOCKS, free_blocks

PLUGIN_DIR = Path("/usr/lib/cni")
BUSYBOX = shutil.which("busybox")

needs_real_network = pytest.mark.skipif(
    os.geteuid() != 0
    or not (PLUGIN_DIR / "bridge").exists()
    or BUSYBOX is None
    or shutil.which("iptables") is None
    or shutil.which("nsenter") is None,
    reason="needs root, the CNI plugins (containernetworking-plugins), busybox, iptables, nsenter",
)


def run(
    cmd: Sequence[str], check: bool = False, timeout: float = 30
) -> subprocess.CompletedProcess[str]:
    """Run a command, capturing text output."""
    return subprocess.run(list(cmd), capture_output=True, text=True, check=check, timeout=timeout)


def in_ns(path: Path, *argv: str) -> list[str]:
    """The command line running ``argv`` inside the network namespace at ``path``."""
    return ["nsenter", f"--net={path}", *argv]


def iptables_dump() -> str:
    """Every rule of the filter and nat tables."""
    return run(["iptables", "-S"]).stdout + run(["iptables", "-t", "nat", "-S"]).stdout


def _free_subnet() -> ipaddress.IPv4Network:
    """A /24 of this test worker's own block (``tests.support.workers``) no route overlaps."""
    taken = ipam_pool.host_routes()
    for block in free_blocks(LAB_BLOCKS, taken, count=1):
        for _ in range(200):
            candidate = ipaddress.IPv4Network(
                f"{block.network_address + 256 * (secrets.randbelow(250) + 1)}/24"
            )
            if not any(candidate.overlaps(r) for r in taken if r.prefixlen):
                return candidate
    raise RuntimeError("no free test subnet")


@dataclass
class Member:
    """A test "container": its id, its namespace and what CNI gave it."""

    container_id: str
    netns: Path
    result: AttachResult

    @property
    def ip(self) -> ipaddress.IPv4Address:
        return self.result.address.ip


@dataclass
class Lab:
    """One test's networking sandbox."""

    run_dir: Path
    driver: CniDriver
    spec: cniconf.NetworkSpec
    namespaces: list[Path] = field(default_factory=list)
    other_specs: list[cniconf.NetworkSpec] = field(default_factory=list)
    container_ids: list[str] = field(default_factory=list)

    @property
    def network_id(self) -> str:
        return self.spec.network_id

    @property
    def bridge(self) -> str:
        return cniconf.bridge_name(self.network_id)

    def other_network(self, *, internal: bool = False) -> cniconf.NetworkSpec:
        """A second network of the lab (also torn down afterwards)."""
        subnet = _free_subnet()
        spec = cniconf.NetworkSpec(
            secrets.token_hex(32), subnet, ipam_pool.default_gateway(subnet), internal=internal
        )
        self.other_specs.append(spec)
        return spec

    def new_netns(self) -> tuple[str, Path]:
        """A fresh container id and its (unattached) namespace."""
        container_id = secrets.token_hex(32)
        self.container_ids.append(container_id)
        path = netns.create_netns(self.run_dir, container_id[:12])
        self.namespaces.append(path)
        return container_id, path

    async def attach(
        self,
        *,
        ports: Sequence[cniconf.PortMapping] = (),
        ip: ipaddress.IPv4Address | None = None,
        spec: cniconf.NetworkSpec | None = None,
        firewall: bool = False,
    ) -> Member:
        """A new namespace with ``lo`` up, attached to the lab network as ``eth0``."""
        spec = spec or self.spec
        container_id, path = self.new_netns()
        await self.driver.setup_loopback(path, container_id)
        conflist = cniconf.build_conflist(
            spec, self.driver.ipam_dir, port_mappings=bool(ports), firewall=firewall
        )
        result = await self.driver.add(
            conflist,
            network_id=spec.network_id,
            container_id=container_id,
            netns=path,
            ifname="eth0",
            runtime_config=cniconf.runtime_config(ports, ip, spec.subnet),
        )
        return Member(container_id, path, result)

    def veths(self) -> list[str]:
        """Host-side interfaces enslaved to the lab bridge."""
        out = run(["ip", "-o", "link", "show", "master", self.bridge]).stdout
        return [
            line.split(":")[1].strip().split("@")[0] for line in out.splitlines() if ":" in line
        ]


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[Lab]:
    """A sandbox that is always cleaned up (see the module docstring)."""
    run_dir = tmp_path / "run"
    subnet = _free_subnet()
    spec = cniconf.NetworkSpec(secrets.token_hex(32), subnet, ipam_pool.default_gateway(subnet))
    the_lab = Lab(run_dir, CniDriver(tmp_path / "state"), spec)
    try:
        yield the_lab
    finally:
        _teardown(the_lab)


def _teardown(lab: Lab) -> None:
    asyncio.run(lab.driver.cleanup())
    for path in netns.list_netns(lab.run_dir):
        netns.remove_netns(path)
    netns.release_netns_dir(lab.run_dir)
    for spec in (lab.spec, *lab.other_specs):
        run(["ip", "link", "delete", cniconf.bridge_name(spec.network_id)])
        name = cniconf.cni_network_name(spec.network_id)
        for table in ("filter", "nat"):
            for rule in run(["iptables", "-t", table, "-S"]).stdout.splitlines():
                if name in rule and rule.startswith("-A "):
                    run(["sh", "-c", f"iptables -t {table} -D {rule[3:]}"])
        # Per-container chains (the bridge plugin's masquerade, portmap's DNAT) are named
        # after sha512(network name + container id), as libcni's FormatChainName does.
        for container_id in lab.container_ids:
            digest = hashlib.sha512((name + container_id).encode()).hexdigest()
            for chain in (f"CNI-{digest[:24]}", f"CNI-DN-{digest[:21]}"):
                run(["iptables", "-t", "nat", "-F", chain])
                run(["iptables", "-t", "nat", "-X", chain])


async def spawn(*argv: str) -> asyncio.subprocess.Process:
    """Start a background process (stdout captured, stderr discarded)."""
    return await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    """Kill a process started by :func:`spawn` if it still runs, and reap it."""
    if proc.returncode is None:
        proc.kill()
    # communicate() rather than wait(): it also drains and closes the pipes.
    await proc.communicate()


async def output(*argv: str, timeout: float = 20) -> tuple[int, str]:
    """Run a command without blocking the event loop; its exit code and stdout+stderr."""
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(proc.communicate(), timeout)
    finally:
        await stop(proc)
    return proc.returncode or 0, out.decode(errors="replace")


async def wget(url: str, *prefix: str, attempts: int = 100) -> str:
    """Fetch ``url`` with busybox wget, optionally inside a namespace (``prefix``).

    Retries while the server is starting; returns the body or raises AssertionError with
    the last failure. Never ``wget -T``: Debian's static busybox crashes with it.
    """
    last = ""
    for _ in range(attempts):
        code, text = await output(*prefix, "busybox", "wget", "-q", "-O", "-", url)
        if code == 0:
            return text
        last = f"exit {code}: {text}"
        await asyncio.sleep(0.05)
    raise AssertionError(f"wget {url} failed: {last}")


@pytest.fixture
def www(tmp_path: Path) -> Path:
    """A document root whose index says hello."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "index.html").write_text("hello from the namespace\n")
    return root
