"""Container name resolution: an embedded DNS server at 127.0.0.11 in every container.

The choice (see ``specs/daemon.md``): like dockerd, declarund answers DNS itself rather than
rewriting ``/etc/hosts`` files. For each container on a user network it opens a UDP and a
TCP socket on ``127.0.0.11:53`` *inside the container's network namespace* (a thread joins
the namespace just long enough to create them; the sockets keep that namespace) and serves
them from the daemon's event loop. Why this over hosts files:

* every resolver reads it — ``nslookup``, ``dig`` and musl/glibc alike — while busybox
  ``nslookup`` ignores ``/etc/hosts``;
* a recreated peer is found at its new address at once, with nothing to rewrite in place;
* the server knows which container asks (one socket pair per container), so it answers from
  exactly the networks that container shares, aliases included, and needs no firewall
  opening on the host, since the traffic never leaves the namespace;
* names it does not know are forwarded to the host's resolvers from the daemon's own
  namespace, where even a loopback resolver (systemd-resolved's 127.0.0.53) is reachable;
  on an internal network nothing is forwarded.

Records are kept per network: :meth:`EmbeddedDns.set_endpoint` when a container is attached
(its name, aliases, short id), :meth:`EmbeddedDns.remove_endpoint` when it is detached. While
the daemon is down the containers cannot resolve names (as with dockerd); at start the daemon
calls :meth:`EmbeddedDns.serve` again for every running container.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import socket
import struct
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import cast

from declarun.daemon.networks import dnswire
from declarun.daemon.networks.netns import run_in_netns

__all__ = ["EMBEDDED_DNS_IP", "EmbeddedDns", "Endpoint"]

EMBEDDED_DNS_IP = "127.0.0.11"
_log = logging.getLogger(__name__)
_FORWARD_TIMEOUT = 2.0
_TCP_IDLE_TIMEOUT = 10.0


@dataclass(frozen=True)
class Endpoint:
    """A container's presence on one network: the names it answers to and its address."""

    names: tuple[str, ...]
    ip: ipaddress.IPv4Address


@dataclass(frozen=True)
class _Index:
    """One network's records by name and by address, in the order of its members (the
    order a scan of the members would answer in): a query on a network of 1,000 containers
    is one dict lookup, not 1,000 comparisons."""

    #: name -> the ids of the members answering to it.
    names: dict[str, list[str]]
    #: address -> the first name of the first member with that address (and a name).
    addresses: dict[ipaddress.IPv4Address, str]

    @classmethod
    def of(cls, members: dict[str, Endpoint]) -> _Index:
        """The index of ``members`` (container id -> endpoint)."""
        names: dict[str, list[str]] = {}
        addresses: dict[ipaddress.IPv4Address, str] = {}
        for member, endpoint in members.items():
            for name in endpoint.names:  # unique within an endpoint (set_endpoint)
                names.setdefault(name, []).append(member)
            if endpoint.names:
                addresses.setdefault(endpoint.ip, endpoint.names[0])
        return cls(names, addresses)


@dataclass
class _Served:
    """What serves one container: its two sockets' servers, and how it resolves."""

    udp: asyncio.DatagramTransport
    udp_closed: asyncio.Future[None]
    tcp: asyncio.Server
    forward: bool
    upstreams: tuple[tuple[str, int], ...]
    tasks: set[asyncio.Task[None]] = field(default_factory=set)


class EmbeddedDns:
    """Per-network records and the per-container DNS listeners that answer from them.

    ``upstreams`` are ``(address, port)`` pairs to forward unknown names to (by default the
    host's nameservers, read by the caller from ``/etc/resolv.conf``); ``ttl`` is the TTL of
    answers (0, so a recreated peer's new address is never hidden by a cache).
    """

    def __init__(self, upstreams: Sequence[tuple[str, int]] = (), ttl: int = 0) -> None:
        self.upstreams = tuple(upstreams)
        self.ttl = ttl
        self._networks: dict[str, dict[str, Endpoint]] = {}
        #: Per network, built at its first query after a change: what a query looks up
        #: instead of reading every member (see :class:`_Index`).
        self._indexes: dict[str, _Index] = {}
        self._served: dict[str, _Served] = {}
        #: Per asking container: link alias -> the linked container (``--link`` on a
        #: user network: a name only that container resolves).
        self._links: dict[str, dict[str, str]] = {}

    # -- records ---------------------------------------------------------------------------

    def set_endpoint(
        self, network_id: str, container_id: str, names: Iterable[str], ip: ipaddress.IPv4Address
    ) -> None:
        """Add or replace ``container_id``'s names and address on ``network_id``."""
        clean = tuple(dict.fromkeys(n.lower().rstrip(".") for n in names if n))
        self._networks.setdefault(network_id, {})[container_id] = Endpoint(clean, ip)
        self._indexes.pop(network_id, None)

    def remove_endpoint(self, network_id: str, container_id: str) -> None:
        """Forget ``container_id`` on ``network_id`` (idempotent)."""
        members = self._networks.get(network_id)
        self._indexes.pop(network_id, None)
        if members is not None:
            members.pop(container_id, None)
            if not members:
                del self._networks[network_id]

    def remove_network(self, network_id: str) -> None:
        """Forget every record of ``network_id``."""
        self._networks.pop(network_id, None)
        self._indexes.pop(network_id, None)

    def set_links(self, container_id: str, links: dict[str, str]) -> None:
        """The link aliases ``container_id`` resolves (alias -> linked container id)."""
        if links:
            self._links[container_id] = {k.lower(): v for k, v in links.items()}
        else:
            self._links.pop(container_id, None)

    def lookup(self, container_id: str, name: str) -> list[ipaddress.IPv4Address]:
        """Addresses of ``name`` on the networks ``container_id`` is on (all peers sharing
        an alias are returned, as Docker does); a link alias of the asking container
        names its linked container first."""
        wanted = name.lower().rstrip(".")
        found: list[ipaddress.IPv4Address] = []
        linked = self._links.get(container_id, {}).get(wanted)
        if linked is not None:
            for _network_id, members in self._scope(container_id):
                endpoint = members.get(linked)
                if endpoint is not None and endpoint.ip not in found:
                    found.append(endpoint.ip)
            if found:
                return found
        for network_id, members in self._scope(container_id):
            for member in self._index(network_id, members).names.get(wanted, ()):
                address = members[member].ip
                if address not in found:
                    found.append(address)
        return found

    def reverse(self, container_id: str, ip: ipaddress.IPv4Address) -> str | None:
        """The first name of the endpoint with address ``ip`` on the container's networks."""
        for network_id, members in self._scope(container_id):
            name = self._index(network_id, members).addresses.get(ip)
            if name is not None:
                return name
        return None

    def _scope(self, container_id: str) -> list[tuple[str, dict[str, Endpoint]]]:
        return [(n, m) for n, m in self._networks.items() if container_id in m]

    def _index(self, network_id: str, members: dict[str, Endpoint]) -> _Index:
        index = self._indexes.get(network_id)
        if index is None:
            index = _Index.of(members)
            self._indexes[network_id] = index
        return index

    # -- serving ---------------------------------------------------------------------------

    async def serve(
        self,
        container_id: str,
        netns: Path,
        *,
        forward: bool = True,
        upstreams: Sequence[tuple[str, int]] | None = None,
    ) -> None:
        """Listen on ``127.0.0.11:53`` (UDP and TCP) inside ``netns`` for ``container_id``.

        ``forward=False`` (internal networks) answers unknown names with NXDOMAIN instead of
        forwarding; ``upstreams`` overrides the server's for this container (``--dns``).
        Replaces an earlier listener of the same container.
        """
        await self.stop(container_id)

        def open_sockets() -> tuple[socket.socket, socket.socket]:
            udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            try:
                # The previous listener's socket is closed by then (stop() waits), but a
                # child forked meanwhile by another request (runc, conmon, a CNI plugin)
                # may still hold a copy until it execs: under load the soak saw EADDRINUSE
                # on "network connect". SO_REUSEADDR lets the new socket bind past it.
                udp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                udp.bind((EMBEDDED_DNS_IP, 53))
                tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                tcp.bind((EMBEDDED_DNS_IP, 53))
                tcp.listen(64)
            except BaseException:
                udp.close()
                tcp.close()
                raise
            udp.setblocking(False)
            tcp.setblocking(False)
            return udp, tcp

        udp_sock, tcp_sock = await asyncio.to_thread(run_in_netns, netns, open_sockets)
        loop = asyncio.get_running_loop()
        served_box: list[_Served] = []
        udp, udp_protocol = await loop.create_datagram_endpoint(
            lambda: _UdpServer(self, container_id, served_box), sock=udp_sock
        )

        async def on_tcp(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await self._serve_tcp(container_id, reader, writer)

        tcp = await asyncio.start_server(on_tcp, sock=tcp_sock)
        served = _Served(
            udp,
            udp_protocol.closed,
            tcp,
            forward,
            tuple(upstreams) if upstreams else self.upstreams,
        )
        served_box.append(served)
        self._served[container_id] = served

    async def stop(self, container_id: str) -> None:
        """Close ``container_id``'s listeners (idempotent); ``127.0.0.11:53`` in its
        namespace is free again when this returns."""
        served = self._served.pop(container_id, None)
        if served is None:
            return
        # A datagram transport closes its socket only on a later turn of the loop, after
        # ``connection_lost``; until then the address stays bound, and a ``serve`` right
        # after (``network connect`` on a running container) raced that close and could
        # fail with EADDRINUSE. abort(): replies still queued are not worth waiting for.
        served.udp.abort()
        served.tcp.close()  # closes the listening socket at once
        for task in list(served.tasks):
            task.cancel()
        await served.udp_closed
        with contextlib.suppress(OSError):
            await served.tcp.wait_closed()

    async def close(self) -> None:
        """Close every listener (daemon shutdown)."""
        for container_id in list(self._served):
            await self.stop(container_id)

    def serving(self) -> list[str]:
        """The containers with a listener."""
        return list(self._served)

    # -- answering -------------------------------------------------------------------------

    async def answer(self, container_id: str, query: bytes, *, tcp: bool = False) -> bytes | None:
        """The response to one query from ``container_id``; ``None`` to send nothing."""
        try:
            question = dnswire.parse_query(query)
        except dnswire.DnsFormatError:
            return None
        if question.opcode != 0:
            return dnswire.build_error(question, dnswire.NOTIMP)
        limit = None if tcp else dnswire.MAX_UDP_ANSWER
        if question.qclass == dnswire.CLASS_IN:
            local = self._answer_local(container_id, question, limit)
            if local is not None:
                return local
        served = self._served.get(container_id)
        if served is not None and not served.forward:
            return dnswire.build_error(question, dnswire.NXDOMAIN)
        upstreams = served.upstreams if served is not None else self.upstreams
        if not upstreams:
            return dnswire.build_error(question, dnswire.SERVFAIL)
        for upstream in upstreams:
            with contextlib.suppress(OSError, asyncio.TimeoutError, asyncio.IncompleteReadError):
                if tcp:
                    return await asyncio.wait_for(_forward_tcp(upstream, query), _FORWARD_TIMEOUT)
                return await asyncio.wait_for(_forward_udp(upstream, query), _FORWARD_TIMEOUT)
        return dnswire.build_error(question, dnswire.SERVFAIL)

    def _answer_local(
        self, container_id: str, q: dnswire.Question, limit: int | None
    ) -> bytes | None:
        if q.qtype == dnswire.TYPE_PTR:
            address = dnswire.ptr_address(q.name)
            name = self.reverse(container_id, address) if address is not None else None
            if name is None:
                return None
            return dnswire.build_answer(q, ptr_name=name, ttl=self.ttl, limit=limit)
        addresses = self.lookup(container_id, q.name)
        if not addresses:
            return None
        if q.qtype in (dnswire.TYPE_A, dnswire.TYPE_ANY):
            return dnswire.build_answer(q, addresses, ttl=self.ttl, limit=limit)
        # A known name without records of this type (AAAA...): "no data", not forwarded,
        # so the host's resolvers never see container names.
        return dnswire.build_error(q, dnswire.NOERROR)

    async def _serve_tcp(
        self, container_id: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        try:
            while True:
                size = struct.unpack(
                    "!H", await asyncio.wait_for(reader.readexactly(2), _TCP_IDLE_TIMEOUT)
                )[0]
                query = await reader.readexactly(size)
                response = await self.answer(container_id, query, tcp=True)
                if response is None:
                    break
                writer.write(struct.pack("!H", len(response)) + response)
                await writer.drain()
        except (TimeoutError, OSError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()


class _UdpServer(asyncio.DatagramProtocol):
    """Answers datagrams for one container; each query runs as its own task."""

    def __init__(self, dns: EmbeddedDns, container_id: str, served: list[_Served]) -> None:
        self.dns = dns
        self.container_id = container_id
        self.served = served
        self.transport: asyncio.DatagramTransport | None = None
        # Done once the transport has let go of the socket (see EmbeddedDns.stop).
        self.closed: asyncio.Future[None] = asyncio.get_running_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio 3.11\'s selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def connection_lost(self, exc: Exception | None) -> None:
        # The transport closes its socket right after this returns, in the same callback,
        # so whoever awaits ``closed`` resumes with the address already released.
        if not self.closed.done():
            self.closed.set_result(None)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        task = asyncio.ensure_future(self._reply(data, addr))
        if self.served:
            self.served[0].tasks.add(task)
            task.add_done_callback(self.served[0].tasks.discard)

    async def _reply(self, data: bytes, addr: tuple[str, int]) -> None:
        try:
            response = await self.dns.answer(self.container_id, data)
        except Exception:  # a bug must not kill the listener
            _log.exception("embedded DNS failed to answer")
            return
        if response is not None and self.transport is not None and not self.transport.is_closing():
            self.transport.sendto(response, addr)


class _ForwardProtocol(asyncio.DatagramProtocol):
    def __init__(self, ident: bytes) -> None:
        self.ident = ident
        self.reply: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        # Only the reply to our query (same id) counts; anything else is noise or spoofing.
        if data[:2] == self.ident and not self.reply.done():
            self.reply.set_result(data)

    def error_received(self, exc: Exception) -> None:
        if not self.reply.done():
            self.reply.set_exception(exc)


async def _forward_udp(upstream: tuple[str, int], query: bytes) -> bytes:
    """Send ``query`` from a fresh socket (a random source port) and await the reply."""
    loop = asyncio.get_running_loop()
    transport, protocol = await loop.create_datagram_endpoint(
        lambda: _ForwardProtocol(query[:2]), remote_addr=upstream
    )
    try:
        transport.sendto(query)
        return await protocol.reply
    finally:
        transport.close()


async def _forward_tcp(upstream: tuple[str, int], query: bytes) -> bytes:
    reader, writer = await asyncio.open_connection(*upstream)
    try:
        writer.write(struct.pack("!H", len(query)) + query)
        await writer.drain()
        size = struct.unpack("!H", await reader.readexactly(2))[0]
        return await reader.readexactly(size)
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
