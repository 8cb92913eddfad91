"""Networks behind the Docker API, proven with the docker CLI, runc and the CNI plugins.

Real traffic only between the namespaces the daemon creates for the test's containers and
over the host's loopback.
"""

from __future__ import annotations

import ipaddress
import json
import os
import signal
import socket
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import docker as docker_py
import pytest

from declarun.daemon.networks import ipam_pool
from tests.daemon.conftest import PushedImage
from tests.daemon.containers.daemon_fixtures import needs_runtime, pull_image
from tests.daemon.images.daemon_support import docker
from tests.daemon.networks.conftest import needs_real_network
from tests.daemon.networks.daemon_net import network_daemon, network_leftovers
from tests.support.daemon import DaemonProcess, running_daemon

pytestmark = [needs_runtime, needs_real_network]

# busybox httpd serving the container's /etc: GET /hostname answers the hostname.
HTTPD = ("httpd", "-f", "-p", "80", "-h", "/etc")


@pytest.fixture(scope="module")
def ndaemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    """declarund for this module; containers and user networks are removed afterwards."""
    with network_daemon(tmp_path_factory.mktemp("networks-daemon")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def image(ndaemon: DaemonProcess, busybox_image_pushed: PushedImage) -> str:
    """busybox pulled into the daemon."""
    return pull_image(ndaemon, busybox_image_pushed.reference)


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def http_get(url: str, attempts: int = 100) -> str:
    """GET ``url`` from the host, retrying while the server starts."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            with urllib.request.urlopen(url, timeout=10) as response:
                body: bytes = response.read()
                return body.decode()
        except OSError as exc:
            last = exc
            time.sleep(0.05)
    raise AssertionError(f"GET {url} failed: {last}")


def inspect(daemon: DaemonProcess, *args: str) -> dict:  # type: ignore[type-arg]
    """``docker inspect`` of one object."""
    doc: dict = json.loads(docker(daemon, *args).stdout)[0]  # type: ignore[type-arg]
    return doc


def in_container(daemon: DaemonProcess, network: str, image: str, *argv: str) -> str:
    """Run a throw-away container on ``network``; its output."""
    return docker(daemon, "run", "--rm", "--network", network, image, *argv).stdout


def test_builtin_networks_and_lifecycle(ndaemon: DaemonProcess) -> None:
    listed = docker(ndaemon, "network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout
    assert {"bridge bridge", "host host", "none null"} <= set(listed.split("\n"))
    created = docker(ndaemon, "network", "create", "--label", "team=a", "lifecycle").stdout
    net_id = created.strip()
    doc = inspect(ndaemon, "network", "inspect", "lifecycle")
    assert doc["Id"] == net_id and doc["Driver"] == "bridge" and doc["Labels"] == {"team": "a"}
    assert doc["IPAM"]["Config"][0]["Subnet"]
    dup = docker(ndaemon, "network", "create", "lifecycle", check=False)
    assert dup.returncode != 0 and "already exists" in dup.stderr
    only = docker(ndaemon, "network", "ls", "-q", "--no-trunc", "--filter", "label=team=a")
    assert only.stdout.split() == [net_id]
    custom = docker(ndaemon, "network", "ls", "--format", "{{.Name}}", "--filter", "type=custom")
    assert "bridge" not in custom.stdout.split()
    builtin = docker(ndaemon, "network", "rm", "bridge", check=False)
    assert builtin.returncode != 0 and "pre-defined network" in builtin.stderr
    docker(ndaemon, "network", "rm", "lifecycle")
    gone = docker(ndaemon, "network", "inspect", "lifecycle", check=False)
    assert gone.returncode != 0 and "not found" in gone.stderr


def test_subnets_come_from_the_default_address_pools(
    ndaemon: DaemonProcess, tmp_path: Path
) -> None:
    # The test daemons run with --default-address-pool (tests.support.workers): networks made
    # without a subnet, and the built-in bridge, take /24s of those blocks, in order.
    pools = [
        ipaddress.IPv4Network(arg.split(",")[0].removeprefix("base="))
        for flag, arg in zip(ndaemon.args, ndaemon.args[1:], strict=False)
        if flag == "--default-address-pool"
    ]
    assert pools
    docker(ndaemon, "network", "create", "pooled")
    try:
        for name in ("bridge", "pooled"):
            subnet = inspect(ndaemon, "network", "inspect", name)["IPAM"]["Config"][0]["Subnet"]
            carved = ipaddress.IPv4Network(subnet)
            assert carved.prefixlen == 24 and any(carved.subnet_of(p) for p in pools), subnet
    finally:
        docker(ndaemon, "network", "rm", "pooled")
    # A pool of a single /24 is used up by the built-in bridge: a user network is refused.
    routes = ipam_pool.host_routes()
    single = next(
        net
        for net in reversed(list(pools[0].subnets(new_prefix=24)))
        if not any(net.overlaps(r) for r in routes if r.prefixlen)
    )
    with running_daemon(
        tmp_path / "tiny", "--default-address-pool", f"base={single},size=24"
    ) as tiny:
        refused = docker(tiny, "network", "create", "second", check=False)
        assert refused.returncode != 0, refused.stdout
        assert "could not find an available, non-overlapping IPv4 address pool" in refused.stderr


def test_subnet_given_and_overlap_refused(ndaemon: DaemonProcess) -> None:
    docker(ndaemon, "network", "create", "--subnet", "10.123.45.0/24", "--gateway",
           "10.123.45.254", "fixed")  # fmt: skip
    try:
        config = inspect(ndaemon, "network", "inspect", "fixed")["IPAM"]["Config"][0]
        assert config == {"Subnet": "10.123.45.0/24", "Gateway": "10.123.45.254"}
        clash = docker(ndaemon, "network", "create", "--subnet", "10.123.0.0/16", "clash",
                       check=False)  # fmt: skip
        assert clash.returncode != 0 and "overlaps" in clash.stderr
    finally:
        docker(ndaemon, "network", "rm", "fixed")


def test_containers_resolve_each_other_by_name(ndaemon: DaemonProcess, image: str) -> None:
    docker(ndaemon, "network", "create", "names")
    try:
        docker(ndaemon, "run", "-d", "--name", "web", "--network", "names",
               "--network-alias", "www", image, *HTTPD)  # fmt: skip
        first_ip = inspect(ndaemon, "inspect", "web")["NetworkSettings"]["Networks"]["names"][
            "IPAddress"
        ]
        assert first_ip
        short = inspect(ndaemon, "inspect", "web")["Id"][:12]
        for name in ("web", "www", short):
            body = in_container(ndaemon, "names", image, "wget", "-q", "-O", "-",
                                f"http://{name}/hostname")  # fmt: skip
            assert body.strip() == short
        resolved = in_container(ndaemon, "names", image, "nslookup", "web")
        assert first_ip in resolved
        conf = in_container(ndaemon, "names", image, "cat", "/etc/resolv.conf")
        assert "nameserver 127.0.0.11" in conf
        members = inspect(ndaemon, "network", "inspect", "names")["Containers"]
        assert [m["Name"] for m in members.values()] == ["web"]
        # Recreated: a new container, a new address, the same name.
        docker(ndaemon, "rm", "-f", "web")
        docker(ndaemon, "run", "-d", "--name", "web", "--ip", "", "--network", "names",
               image, *HTTPD)  # fmt: skip
        new_id = inspect(ndaemon, "inspect", "web")["Id"][:12]
        body = in_container(ndaemon, "names", image, "wget", "-q", "-O", "-",
                            "http://web/hostname")  # fmt: skip
        assert body.strip() == new_id
    finally:
        docker(ndaemon, "rm", "-f", "web", check=False)
        docker(ndaemon, "network", "rm", "names")


def test_default_bridge_has_address_but_no_names(ndaemon: DaemonProcess, image: str) -> None:
    docker(ndaemon, "run", "-d", "--name", "plain", image, "sleep", "60")
    try:
        settings = inspect(ndaemon, "inspect", "plain")["NetworkSettings"]
        assert settings["IPAddress"] and settings["Gateway"]
        assert settings["Networks"]["bridge"]["IPAddress"] == settings["IPAddress"]
        out = in_container(ndaemon, "bridge", image, "sh", "-c",
                           f"ping -c 1 -W 5 {settings['IPAddress']} >/dev/null && echo ok; "
                           "nslookup plain >/dev/null 2>&1 || echo no-name")  # fmt: skip
        assert out.split() == ["ok", "no-name"]
        hosts = docker(ndaemon, "exec", "plain", "cat", "/etc/hosts").stdout
        assert settings["IPAddress"] in hosts
    finally:
        docker(ndaemon, "rm", "-f", "plain")


def test_published_ports_on_loopback(ndaemon: DaemonProcess, image: str) -> None:
    loop_port, any_port = free_port(), free_port()
    docker(ndaemon, "network", "create", "pub")
    try:
        cid = docker(ndaemon, "run", "-d", "--name", "pub", "--network", "pub",
                     "-p", f"127.0.0.1:{loop_port}:80", "-p", f"{any_port}:80", "-p", "80",
                     image, *HTTPD).stdout.strip()  # fmt: skip
        short = cid[:12]
        assert http_get(f"http://127.0.0.1:{loop_port}/hostname").strip() == short
        assert http_get(f"http://127.0.0.1:{any_port}/hostname").strip() == short
        ports = inspect(ndaemon, "inspect", "pub")["NetworkSettings"]["Ports"]["80/tcp"]
        assert {"HostIp": "127.0.0.1", "HostPort": str(loop_port)} in ports
        assert {"HostIp": "0.0.0.0", "HostPort": str(any_port)} in ports
        shown = docker(ndaemon, "port", "pub", "80/tcp").stdout.split()
        random_ports = [
            int(p["HostPort"])
            for p in ports
            if p["HostPort"] not in (str(loop_port), str(any_port))
        ]
        assert len(random_ports) == 1 and f"0.0.0.0:{random_ports[0]}" in shown
        assert http_get(f"http://127.0.0.1:{random_ports[0]}/hostname").strip() == short
        # The same host port again: refused at start, and the failed start leaves nothing.
        taken = docker(ndaemon, "run", "-d", "--name", "taken", "-p",
                       f"127.0.0.1:{loop_port}:80", image, *HTTPD, check=False)  # fmt: skip
        assert taken.returncode != 0
        assert f"Bind for 127.0.0.1:{loop_port} failed: port is already allocated" in taken.stderr
        taken_id = inspect(ndaemon, "inspect", "taken")["Id"]
        assert inspect(ndaemon, "inspect", "taken")["State"]["Running"] is False
        leaks = network_leftovers(ndaemon.data_root, [taken_id])
        assert leaks["iptables"] == [] and leaks["leases"] == []
        assert not any(taken_id in p for p in leaks["netns"] + leaks["cache"])
        listed = json.loads(docker(ndaemon, "ps", "--format", "{{json .Ports}}",
                                   "--filter", "name=pub").stdout)  # fmt: skip
        assert f"127.0.0.1:{loop_port}->80/tcp" in listed
        docker(ndaemon, "stop", "-t", "1", "pub")
        with pytest.raises(AssertionError):
            http_get(f"http://127.0.0.1:{loop_port}/hostname", attempts=1)
        leaks = network_leftovers(ndaemon.data_root, [cid])
        assert leaks == {"leases": [], "cache": [], "netns": [], "iptables": [], "veths": []}
    finally:
        docker(ndaemon, "rm", "-f", "pub", "taken", check=False)
        docker(ndaemon, "network", "rm", "pub")


def test_a_recreated_publisher_gets_a_fresh_address_and_serves_at_once(
    ndaemon: DaemonProcess, image: str
) -> None:
    # Re-creating a container on the same published port (what apply's heal and replace do)
    # must not hand it the address its predecessor just released: the host's neighbour cache
    # still maps that address to the old interface's MAC, and the port would hang for ~30 s.
    port = free_port()
    docker(ndaemon, "network", "create", "again")
    addresses = []
    try:
        # Another member keeps the bridge up: with none, its neighbour cache would be flushed.
        docker(ndaemon, "run", "-d", "--name", "stays", "--network", "again", image, "sleep", "600")
        for _ in range(2):
            cid = docker(ndaemon, "run", "-d", "--name", "again", "--network", "again",
                         "-p", f"127.0.0.1:{port}:80", image, *HTTPD).stdout.strip()  # fmt: skip
            nets = inspect(ndaemon, "inspect", "again")["NetworkSettings"]["Networks"]
            addresses.append(nets["again"]["IPAddress"])
            assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == cid[:12]
            docker(ndaemon, "rm", "-f", "again")
        assert addresses[0] != addresses[1]
    finally:
        docker(ndaemon, "rm", "-f", "again", "stays", check=False)
        docker(ndaemon, "network", "rm", "again")


def test_internal_network_has_no_route_out(ndaemon: DaemonProcess, image: str) -> None:
    docker(ndaemon, "network", "create", "--internal", "sealed")
    try:
        routes = in_container(ndaemon, "sealed", image, "ip", "route")
        assert "default" not in routes and routes.strip()
        assert inspect(ndaemon, "network", "inspect", "sealed")["Internal"] is True
        outside = in_container(ndaemon, "bridge", image, "ip", "route")
        assert "default" in outside
    finally:
        docker(ndaemon, "network", "rm", "sealed")


def test_connect_and_disconnect(ndaemon: DaemonProcess, image: str) -> None:
    docker(ndaemon, "network", "create", "front")
    docker(ndaemon, "network", "create", "back")
    try:
        docker(ndaemon, "run", "-d", "--name", "app", "--network", "front", image, *HTTPD)
        docker(ndaemon, "network", "connect", "--alias", "api", "back", "app")
        nets = inspect(ndaemon, "inspect", "app")["NetworkSettings"]["Networks"]
        assert set(nets) == {"front", "back"} and nets["back"]["IPAddress"]
        assert nets["back"]["Aliases"] == ["api"]
        app_id = inspect(ndaemon, "inspect", "app")["Id"]
        body = in_container(ndaemon, "back", image, "wget", "-q", "-O", "-", "http://api/hostname")
        assert body.strip() == app_id[:12]
        busy = docker(ndaemon, "network", "rm", "back", check=False)
        assert busy.returncode != 0 and "has active endpoints" in busy.stderr
        again = docker(ndaemon, "network", "connect", "back", "app", check=False)
        assert again.returncode != 0 and "already exists" in again.stderr
        docker(ndaemon, "network", "disconnect", "back", "app")
        nets = inspect(ndaemon, "inspect", "app")["NetworkSettings"]["Networks"]
        assert set(nets) == {"front"}
        gone = docker(ndaemon, "run", "--rm", "--network", "back", image, "nslookup", "api",
                      check=False)  # fmt: skip
        assert gone.returncode != 0
        assert inspect(ndaemon, "network", "inspect", "back")["Containers"] == {}
        # A created container connected before its start gets the network at start.
        docker(ndaemon, "create", "--name", "later", "--network", "front", image, "sleep", "60")
        docker(ndaemon, "network", "connect", "back", "later")
        docker(ndaemon, "start", "later")
        nets = inspect(ndaemon, "inspect", "later")["NetworkSettings"]["Networks"]
        assert nets["back"]["IPAddress"] and nets["front"]["IPAddress"]
    finally:
        docker(ndaemon, "rm", "-f", "app", "later", check=False)
        docker(ndaemon, "network", "rm", "front", "back")


def test_endpoints_without_network_mode_join_those_networks_only(
    ndaemon: DaemonProcess, image: str
) -> None:
    # docker-py and the reconciler send networks in EndpointsConfig with no NetworkMode;
    # Docker then attaches the container to those networks, not to its default bridge.
    docker(ndaemon, "network", "create", "only1")
    docker(ndaemon, "network", "create", "only2")
    client = docker_py.APIClient(base_url=ndaemon.url)
    try:
        endpoints = {"only1": {"Aliases": ["first"]}, "only2": {}}
        body = {"Image": image, "Cmd": list(HTTPD),
                "NetworkingConfig": {"EndpointsConfig": endpoints}}  # fmt: skip
        client.create_container_from_config(body, name="endpoints")
        nets = inspect(ndaemon, "inspect", "endpoints")["NetworkSettings"]["Networks"]
        assert set(nets) == {"only1", "only2"}
        docker(ndaemon, "start", "endpoints")
        nets = inspect(ndaemon, "inspect", "endpoints")["NetworkSettings"]["Networks"]
        assert set(nets) == {"only1", "only2"}
        assert nets["only1"]["IPAddress"] and nets["only2"]["IPAddress"]
        links = docker(ndaemon, "exec", "endpoints", "ip", "-o", "link").stdout
        names = sorted(line.split(":")[1].strip().split("@")[0] for line in links.splitlines())
        assert names == ["eth0", "eth1", "lo"]
        short = inspect(ndaemon, "inspect", "endpoints")["Id"][:12]
        served = in_container(ndaemon, "only1", image, "wget", "-q", "-O", "-",
                              "http://first/hostname")  # fmt: skip
        assert served.strip() == short
    finally:
        client.close()
        docker(ndaemon, "rm", "-f", "endpoints", check=False)
        docker(ndaemon, "network", "rm", "only1", "only2")


def test_network_modes_host_none_container(ndaemon: DaemonProcess, image: str) -> None:
    none_links = in_container(ndaemon, "none", image, "ip", "-o", "link")
    assert [line.split(":")[1].strip() for line in none_links.splitlines()] == ["lo"]
    assert "UP" in none_links or "LOOPBACK,UP" in none_links
    host_links = in_container(ndaemon, "host", image, "ip", "-o", "link")
    assert "eth0" in host_links or len(host_links.splitlines()) > 1
    docker(ndaemon, "run", "-d", "--name", "holder", image, *HTTPD)
    try:
        ip = inspect(ndaemon, "inspect", "holder")["NetworkSettings"]["IPAddress"]
        body = docker(ndaemon, "run", "--rm", "--network", "container:holder", image,
                      "wget", "-q", "-O", "-", "http://127.0.0.1/hostname").stdout  # fmt: skip
        assert body.strip() == inspect(ndaemon, "inspect", "holder")["Id"][:12]
        shared = docker(ndaemon, "run", "--rm", "--network", "container:holder", image,
                        "ip", "-o", "-4", "addr").stdout  # fmt: skip
        assert ip in shared
    finally:
        docker(ndaemon, "rm", "-f", "holder")


def test_unknown_network_refused_at_create(ndaemon: DaemonProcess, image: str) -> None:
    done = docker(ndaemon, "create", "--network", "nowhere", image, check=False)
    assert done.returncode != 0 and "network nowhere not found" in done.stderr


def test_prune_removes_unused_networks(ndaemon: DaemonProcess) -> None:
    docker(ndaemon, "network", "create", "--label", "prune=me", "unused")
    out = docker(ndaemon, "network", "prune", "-f", "--filter", "label=prune=me").stdout
    assert "unused" in out
    assert docker(ndaemon, "network", "inspect", "unused", check=False).returncode != 0


def test_sigkill_and_restart_leave_no_network_state(
    tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    """After a SIGKILL of the daemon, a restart keeps serving the running containers' names
    and ports and releases everything of a container that died while it was down."""
    port = free_port()
    clean = {"leases": [], "cache": [], "netns": [], "iptables": [], "veths": []}
    with network_daemon(tmp_path) as first:
        image = pull_image(first, busybox_image_pushed.reference)
        docker(first, "network", "create", "crash")
        keep = docker(first, "run", "-d", "--name", "keep", "--network", "crash",
                      "-p", f"127.0.0.1:{port}:80", image, *HTTPD).stdout.strip()  # fmt: skip
        gone = docker(first, "run", "-d", "--name", "gone", "--network", "crash", "-p", "80",
                      image, *HTTPD).stdout.strip()  # fmt: skip
        gone_pid = inspect(first, "inspect", "gone")["State"]["Pid"]
        first.process.kill()
        first.process.wait()
        os.kill(gone_pid, signal.SIGKILL)  # dies while no daemon watches
        with running_daemon(tmp_path) as second:
            assert http_get(f"http://127.0.0.1:{port}/hostname").strip() == keep[:12]
            body = docker(second, "run", "--rm", "--network", "crash", image, "wget", "-q",
                          "-O", "-", "http://keep/hostname").stdout  # fmt: skip
            assert body.strip() == keep[:12]
            assert inspect(second, "inspect", "gone")["State"]["Running"] is False
            leaks = network_leftovers(second.data_root, [gone])
            assert len(leaks.pop("veths")) == 1  # keep's
            assert leaks == {k: v for k, v in clean.items() if k != "veths"}
            docker(second, "rm", "-f", "keep", "gone")
            docker(second, "network", "rm", "crash")
            assert network_leftovers(second.data_root, [keep, gone]) == clean


def _nat_rules() -> str:
    import subprocess

    return subprocess.run(
        ["iptables", "-w", "-t", "nat", "-S", "POSTROUTING"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip


def test_outbound_nat_is_one_rule_per_network(ndaemon: DaemonProcess, image: str) -> None:
    """A non-internal network gets one MASQUERADE rule at its first attachment (not a chain
    per container); an internal one gets none; removing the network removes its rule."""
    docker(ndaemon, "network", "create", "--subnet", "10.231.7.0/24", "natted")
    docker(ndaemon, "network", "create", "--internal", "--subnet", "10.231.8.0/24", "closed")
    try:
        in_container(ndaemon, "natted", image, "true")
        in_container(ndaemon, "natted", image, "true")
        in_container(ndaemon, "closed", image, "true")
        rules = _nat_rules()
        natted = [line for line in rules.splitlines() if "10.231.7.0/24" in line]
        assert len(natted) == 1 and "MASQUERADE" in natted[0], rules
        assert "10.231.8.0/24" not in rules
    finally:
        docker(ndaemon, "network", "rm", "natted", "closed")
    assert "10.231.7.0/24" not in _nat_rules()
