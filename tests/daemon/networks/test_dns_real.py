"""The embedded DNS server, queried by busybox inside namespaces the tests create."""

from __future__ import annotations

import asyncio
import ipaddress
import socket
import struct
from pathlib import Path
from typing import cast

import pytest

from declarun.daemon.networks import dnswire
from declarun.daemon.networks.dns import EMBEDDED_DNS_IP, EmbeddedDns
from declarun.daemon.networks.netns import run_in_netns
from declarun.daemon.networks.resolvconf import ResolvConf, container_resolv_conf
from tests.daemon.networks.conftest import (
    Lab,
    in_ns,
    needs_real_network,
    output,
    spawn,
    stop,
    wget,
)

pytestmark = [needs_real_network, pytest.mark.root]

EXTERNAL_IP = "203.0.113.9"


class _FakeUpstream(asyncio.DatagramProtocol):
    """A resolver on 127.0.0.1 that answers every A query with EXTERNAL_IP."""

    def __init__(self) -> None:
        self.names: list[str] = []
        self.transport: asyncio.DatagramTransport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio 3.11\'s selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        question = dnswire.parse_query(data)
        self.names.append(question.name)
        import ipaddress

        answers = [ipaddress.IPv4Address(EXTERNAL_IP)] if question.qtype == dnswire.TYPE_A else []
        assert self.transport is not None
        self.transport.sendto(dnswire.build_answer(question, answers), addr)


async def _upstream() -> tuple[asyncio.DatagramTransport, _FakeUpstream, int]:
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        _FakeUpstream, local_addr=("127.0.0.1", 0)
    )
    return transport, protocol, transport.get_extra_info("sockname")[1]


async def nslookup(path: Path, name: str) -> tuple[int, str]:
    return await output(*in_ns(path, "busybox", "nslookup", name, EMBEDDED_DNS_IP))


def test_names_and_aliases_resolve_and_follow_a_recreated_peer(lab: Lab) -> None:
    async def scenario() -> None:
        upstream, fake, port = await _upstream()
        dns = EmbeddedDns(upstreams=[("127.0.0.1", port)])
        try:
            client = await lab.attach()
            web = await lab.attach()
            net = lab.network_id
            dns.set_endpoint(net, client.container_id, ["client"], client.ip)
            dns.set_endpoint(
                net, web.container_id, ["web", "frontend", web.container_id[:12]], web.ip
            )
            await dns.serve(client.container_id, client.netns)

            for name in ("web", "frontend", "WEB", web.container_id[:12]):
                code, text = await nslookup(client.netns, name)
                assert code == 0 and f"Address: {web.ip}" in text, text
            code, text = await nslookup(client.netns, "nosuchpeer.example")
            assert f"Address: {EXTERNAL_IP}" in text, text
            assert "nosuchpeer.example" in fake.names
            assert "web" not in fake.names  # container names never leave the daemon

            # The peer is recreated: new namespace, new address, same name.
            await lab.driver.delete(net, web.container_id)
            dns.remove_endpoint(net, web.container_id)
            code, text = await nslookup(client.netns, "web")
            assert f"Address: {web.ip}" not in text
            reborn = await lab.attach()
            assert reborn.ip != web.ip
            dns.set_endpoint(net, reborn.container_id, ["web"], reborn.ip)
            code, text = await nslookup(client.netns, "web")
            assert code == 0 and f"Address: {reborn.ip}" in text, text

            # Reverse lookup and TCP.
            code, text = await nslookup(client.netns, str(reborn.ip))
            assert "web" in text, text
            answer = await asyncio.to_thread(_tcp_query, client.netns, "web")
            assert socket.inet_aton(str(reborn.ip)) in answer
        finally:
            await dns.close()
            upstream.close()

    asyncio.run(scenario())


def _tcp_query(path: Path, name: str) -> bytes:
    def connect() -> socket.socket:
        return socket.create_connection((EMBEDDED_DNS_IP, 53), timeout=10)

    sock = run_in_netns(path, connect)
    with sock:
        query = dnswire.build_query(0x4242, name)
        sock.sendall(struct.pack("!H", len(query)) + query)
        size = struct.unpack("!H", sock.recv(2))[0]
        data = b""
        while len(data) < size:
            data += sock.recv(size - len(data))
    assert data[:2] == b"\x42\x42"
    return data


def _bind_dns_address() -> None:
    """Bind and close a UDP and a TCP socket on 127.0.0.11:53 (in the caller's namespace)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind((EMBEDDED_DNS_IP, 53))
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
        tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        tcp.bind((EMBEDDED_DNS_IP, 53))


def test_stop_frees_the_address_before_it_returns(lab: Lab) -> None:
    """``stop`` has released 127.0.0.11:53 when it returns, so the re-``serve`` that
    ``network connect`` does for a running container can never find its own old socket
    still bound ("Address already in use")."""

    async def scenario() -> None:
        dns = EmbeddedDns()
        container_id, path = lab.new_netns()
        await lab.driver.setup_loopback(path, container_id)
        dns.set_endpoint("net", container_id, ["itself"], ipaddress.IPv4Address("10.0.0.5"))
        try:
            await dns.serve(container_id, path)
            await dns.stop(container_id)
            # Blocking, in the loop's own thread: the loop gets no turn to close late.
            run_in_netns(path, _bind_dns_address)
            for _ in range(20):
                await dns.serve(container_id, path)
            code, text = await nslookup(path, "itself")
            assert code == 0 and "Address: 10.0.0.5" in text, text
        finally:
            await dns.close()

    asyncio.run(scenario())


def test_internal_network_does_not_forward(lab: Lab) -> None:
    async def scenario() -> None:
        upstream, fake, port = await _upstream()
        dns = EmbeddedDns(upstreams=[("127.0.0.1", port)])
        try:
            spec = lab.other_network(internal=True)
            a = await lab.attach(spec=spec)
            b = await lab.attach(spec=spec)
            dns.set_endpoint(spec.network_id, a.container_id, ["a"], a.ip)
            dns.set_endpoint(spec.network_id, b.container_id, ["b"], b.ip)
            await dns.serve(a.container_id, a.netns, forward=False)
            code, text = await nslookup(a.netns, "b")
            assert f"Address: {b.ip}" in text, text
            code, text = await nslookup(a.netns, "outside.example")
            assert code != 0 and EXTERNAL_IP not in text
            assert fake.names == []
        finally:
            await dns.close()
            upstream.close()

    asyncio.run(scenario())


def test_wget_by_name_through_the_generated_resolv_conf(
    lab: Lab, www: Path, tmp_path: Path
) -> None:
    """A real client resolver (busybox wget's libc) reads our resolv.conf and finds a peer."""
    resolv = tmp_path / "resolv.conf"
    resolv.write_text(
        container_resolv_conf(ResolvConf(("10.0.0.1",), ("corp.test",)), embedded=True)
    )

    async def scenario() -> None:
        dns = EmbeddedDns()
        server = None
        try:
            client = await lab.attach()
            web = await lab.attach()
            dns.set_endpoint(lab.network_id, client.container_id, ["client"], client.ip)
            dns.set_endpoint(lab.network_id, web.container_id, ["web"], web.ip)
            await dns.serve(client.container_id, client.netns)
            server = await spawn(
                *in_ns(web.netns, "busybox", "httpd", "-f", "-p", "80", "-h", str(www))
            )
            # A private mount namespace shows our resolv.conf as /etc/resolv.conf.
            mount_ns = [
                "unshare",
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                f'mount --bind "{resolv}" /etc/resolv.conf && exec "$@"',
                "sh",
            ]
            body = await wget("http://web/", *in_ns(client.netns, *mount_ns))
            assert body == "hello from the namespace\n"
        finally:
            if server is not None:
                await stop(server)
            await dns.close()

    asyncio.run(scenario())
