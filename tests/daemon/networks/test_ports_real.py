"""Published ports: the userland proxy and portmap, with busybox servers in namespaces."""

from __future__ import annotations

import asyncio
import hashlib
import os
import socket
import threading
from pathlib import Path

import pytest

from declarun.daemon.networks import cniconf
from declarun.daemon.networks.errors import PortAllocatedError
from declarun.daemon.networks.netns import run_in_netns
from declarun.daemon.networks.ports import PublishedPort, publish
from tests.daemon.networks.conftest import (
    Lab,
    in_ns,
    iptables_dump,
    needs_real_network,
    output,
    spawn,
    stop,
    wget,
)

pytestmark = [needs_real_network, pytest.mark.root]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_proxy_serves_loopback_and_any_address(lab: Lab, www: Path) -> None:
    async def scenario() -> None:
        member = await lab.attach()  # no portmap: every byte goes through the proxy
        server = await spawn(
            *in_ns(member.netns, "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
        )
        loopback = await publish([PublishedPort(80, host_ip="127.0.0.1")], member.ip)
        anywhere = await publish([PublishedPort(80)], member.ip)
        try:
            low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
            for publication, shown in ((loopback, "127.0.0.1"), (anywhere, "0.0.0.0")):
                (bound,) = publication.ports
                assert bound.host_ip == shown and bound.container_port == 80
                assert low <= bound.host_port <= high  # a random port from the ephemeral range
                body = await wget(f"http://127.0.0.1:{bound.host_port}/")
                assert body == "hello from the namespace\n"
        finally:
            await loopback.close()
            await anywhere.close()
            await stop(server)
        with socket.socket() as sock:  # the ports are released (TIME_WAIT aside)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind(("127.0.0.1", loopback.ports[0].host_port))
            sock.listen()

    asyncio.run(scenario())


def test_port_in_use_is_refused_and_nothing_stays_bound(lab: Lab) -> None:
    async def scenario() -> None:
        member = await lab.attach()
        busy = socket.socket()
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        taken = busy.getsockname()[1]
        free = _free_port()
        try:
            with pytest.raises(PortAllocatedError) as caught:
                await publish(
                    [PublishedPort(81, host_port=free), PublishedPort(80, host_port=taken)],
                    member.ip,
                )
            assert str(caught.value).startswith(
                f"Bind for 0.0.0.0:{taken} failed: port is already allocated"
            )
            with socket.socket() as probe:  # the first port was released again
                probe.bind(("0.0.0.0", free))
            first = await publish(
                [PublishedPort(80, host_ip="127.0.0.1", host_port=free)], member.ip
            )
            try:
                with pytest.raises(
                    PortAllocatedError, match=f"127.0.0.1:{free} failed: port is already"
                ):
                    await publish(
                        [PublishedPort(80, host_ip="127.0.0.1", host_port=free)], member.ip
                    )
                # A range takes its first free port.
                ranged = await publish(
                    [
                        PublishedPort(
                            80, host_ip="127.0.0.1", host_port=free, host_port_end=free + 5
                        )
                    ],
                    member.ip,
                )
                assert free < ranged.ports[0].host_port <= free + 5
                await ranged.close()
            finally:
                await first.close()
        finally:
            busy.close()

    asyncio.run(scenario())


def test_proxy_moves_large_streams_both_ways_intact(lab: Lab, tmp_path: Path) -> None:
    payload = os.urandom(24 * 1024 * 1024)
    source = tmp_path / "payload"
    source.write_bytes(payload)

    async def scenario() -> None:
        member = await lab.attach()
        # Upload: nc in the namespace writes what it receives to stdout.
        sink = await spawn(*in_ns(member.netns, "busybox", "nc", "-l", "-p", "9000"))
        up = await publish([PublishedPort(9000, host_ip="127.0.0.1")], member.ip)
        try:
            port = up.ports[0].host_port
            await _wait_listening(member.netns, 9000)
            # Read nc's output while sending, or its stdout pipe fills and all stalls.
            reading = asyncio.ensure_future(sink.communicate())
            await asyncio.to_thread(_send, port, payload)
            received, _ = await asyncio.wait_for(reading, 60)
            assert hashlib.sha256(received).digest() == hashlib.sha256(payload).digest()
        finally:
            await up.close()
            await stop(sink)
        # Download: nc in the namespace serves the file and closes.
        feeder = await asyncio.create_subprocess_exec(
            *in_ns(member.netns, "sh", "-c", f'exec busybox nc -l -p 9001 < "{source}"'),
        )
        down = await publish([PublishedPort(9001, host_ip="127.0.0.1")], member.ip)
        try:
            await _wait_listening(member.netns, 9001)
            data = await asyncio.to_thread(_receive, down.ports[0].host_port)
            assert len(data) == len(payload) and data == payload
        finally:
            await down.close()
            await stop(feeder)

    asyncio.run(scenario())


async def _wait_listening(path: Path, port: int) -> None:
    """Poll the namespace's listening sockets until ``port`` is among them."""
    for _ in range(400):
        _, text = await output(*in_ns(path, "busybox", "netstat", "-ltn"))
        if f":{port} " in text:
            return
        await asyncio.sleep(0.025)
    raise AssertionError(f"nothing listens on {port} in {path}")


def _send(port: int, data: bytes) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(data)
        sock.shutdown(socket.SHUT_WR)
        sock.recv(1)  # wait for the far end to close


def _receive(port: int) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        chunks = []
        while chunk := sock.recv(1 << 20):
            chunks.append(chunk)
        return b"".join(chunks)


def test_udp_proxy_relays_both_ways(lab: Lab) -> None:
    async def scenario() -> None:
        member = await lab.attach()

        def open_echo() -> socket.socket:
            sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            sock.bind(("0.0.0.0", 5353))
            return sock

        echo = run_in_netns(member.netns, open_echo)
        echo.settimeout(30)

        def serve_echo() -> None:
            with echo:
                for _ in range(2):
                    data, addr = echo.recvfrom(2048)
                    echo.sendto(b"echo:" + data, addr)

        thread = threading.Thread(target=serve_echo, daemon=True)
        thread.start()
        publication = await publish(
            [PublishedPort(5353, protocol="udp", host_ip="127.0.0.1")], member.ip
        )
        try:
            port = publication.ports[0].host_port
            loop = asyncio.get_running_loop()
            client = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            client.setblocking(False)
            with client:
                client.connect(("127.0.0.1", port))
                for word in (b"one", b"two"):
                    await loop.sock_sendall(client, word)
                    reply = await asyncio.wait_for(loop.sock_recv(client, 2048), 20)
                    assert reply == b"echo:" + word
        finally:
            await publication.close()
        await asyncio.to_thread(thread.join, 30)

    asyncio.run(scenario())


def test_portmap_and_proxy_together(lab: Lab, www: Path) -> None:
    """The daemon's real arrangement: the proxy holds the port, portmap's DNAT carries the
    traffic (from the host's loopback and from a peer through the gateway address); after
    DEL no rule mentions the container."""

    async def scenario() -> None:
        port = _free_port()
        publication = await publish([PublishedPort(80, host_port=port)], lab.spec.subnet[9])
        try:
            member = await lab.attach(ports=publication.port_mappings(), ip=lab.spec.subnet[9])
            server = await spawn(
                *in_ns(member.netns, "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
            )
            try:
                assert await wget(f"http://127.0.0.1:{port}/") == "hello from the namespace\n"
                # From another container on the bridge, through the host's gateway address.
                peer = await lab.attach()
                body = await wget(f"http://{lab.spec.gateway}:{port}/", *in_ns(peer.netns))
                assert body == "hello from the namespace\n"
                assert member.container_id in iptables_dump()
                await lab.driver.delete(lab.network_id, member.container_id)
                assert member.container_id not in iptables_dump()
            finally:
                await stop(server)
        finally:
            await publication.close()

    asyncio.run(scenario())


def test_mapping_for_portmap() -> None:
    mapping = cniconf.PortMapping(8080, 80, "udp", "127.0.0.1").to_cni()
    assert mapping == {
        "hostPort": 8080,
        "containerPort": 80,
        "protocol": "udp",
        "hostIP": "127.0.0.1",
    }
    assert "hostIP" not in cniconf.PortMapping(8080, 80, "tcp", "0.0.0.0").to_cni()
