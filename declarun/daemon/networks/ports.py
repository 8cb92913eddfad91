"""Published ports: host-port reservation and the userland proxy.

For every published port the daemon binds the host socket itself (``host_ip:host_port``,
``0.0.0.0`` for "every address"). That socket

* **refuses a port in use** at container start with dockerd's message (``Bind for
  0.0.0.0:8080 failed: port is already allocated``), followed by what holds it when /proc
  tells (``(held by pid 4242: python3 -m http.server)``, or ``(published by another
  container)`` when it is declarund's own), and keeps other processes from taking the port
  while the container runs;
* **allocates random ports** (``-p 80``): binding port 0 lets the kernel pick a free one from
  ``/proc/sys/net/ipv4/ip_local_port_range`` (32768-60999 by default), as dockerd's range;
* **proxies** what reaches it to ``container_ip:container_port`` — TCP through ``splice(2)``
  between the two sockets (zero copy, two threads per connection, so the event loop never
  touches the bytes), UDP through a datagram relay with a 90-second idle flow timeout
  (docker-proxy's).

Traffic that the ``portmap`` plugin's DNAT rules catch never reaches the socket: the kernel
path handles it (and keeps working while the daemon restarts). The proxy serves whatever the
rules do not cover — loopback where DNAT to 127.0.0.1 is not routed, or attachments without
``portmap``. Proxied connections drop when the daemon stops; at start the daemon calls
:func:`publish` again, with the recorded host ports, for every running container.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import fcntl
import ipaddress
import os
import socket
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import cast

from declarun.daemon.networks.cniconf import PortMapping
from declarun.daemon.networks.errors import NetworkError, PortAllocatedError
from declarun.hostports import port_holder

__all__ = ["BoundPort", "Publication", "PublishedPort", "publish"]

_CHUNK = 1 << 20
_F_SETPIPE_SZ = 1031
_UDP_IDLE = 90.0
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class PublishedPort:
    """A port to publish. ``host_port`` 0: any free port; with ``host_port_end`` a range."""

    container_port: int
    protocol: str = "tcp"
    host_ip: str = ""
    host_port: int = 0
    host_port_end: int = 0


@dataclass(frozen=True)
class BoundPort:
    """A published port as bound: what ``NetworkSettings.Ports`` and ``docker port`` show."""

    container_port: int
    protocol: str
    host_ip: str
    host_port: int

    def mapping(self) -> PortMapping:
        """The ``portmap`` entry for this port."""
        return PortMapping(self.host_port, self.container_port, self.protocol, self.host_ip)


@dataclass
class Publication:
    """The bound sockets of one container and the proxies serving them."""

    ports: tuple[BoundPort, ...]
    _servers: list[_TcpListener | asyncio.DatagramTransport] = field(default_factory=list)
    _connections: set[socket.socket] = field(default_factory=set)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def port_mappings(self) -> list[PortMapping]:
        """All ports as ``portmap`` runtime config entries."""
        return [p.mapping() for p in self.ports]

    async def close(self) -> None:
        """Stop listening and cut every proxied connection (idempotent)."""
        for server in self._servers:
            server.close()
        self._servers.clear()
        with self._lock:
            for sock in self._connections:
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)
            self._connections.clear()


async def publish(
    ports: Sequence[PublishedPort], container_ip: ipaddress.IPv4Address
) -> Publication:
    """Bind every port and start proxying to ``container_ip``; all or nothing.

    Raises :class:`PortAllocatedError` (dockerd's wording) when a port is taken, after
    releasing the ones already bound.
    """
    publication = Publication(())
    bound: list[BoundPort] = []
    try:
        for port in ports:
            sock = _bind(port)
            host_ip, host_port = sock.getsockname()[:2]
            bound.append(BoundPort(port.container_port, port.protocol, host_ip, host_port))
            target = (str(container_ip), port.container_port)
            if port.protocol == "udp":
                publication._servers.append(await _serve_udp(sock, target))
            else:
                publication._servers.append(_TcpListener(sock, target, publication))
    except BaseException:
        await publication.close()
        raise
    publication.ports = tuple(bound)
    return publication


def _bind(port: PublishedPort) -> socket.socket:
    if port.protocol not in ("tcp", "udp"):
        raise NetworkError(f"publishing {port.protocol} ports is not supported")
    host_ip = port.host_ip or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if port.protocol == "udp" else socket.SOCK_STREAM
    candidates = range(port.host_port, max(port.host_port, port.host_port_end) + 1)
    last: OSError | None = None
    for number in candidates:
        sock = socket.socket(family, kind)
        try:
            if kind == socket.SOCK_STREAM:
                # Only to ignore TIME_WAIT leftovers: Linux still refuses a second listener.
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind((host_ip, number))
            if kind == socket.SOCK_STREAM:
                sock.listen(512)
            sock.setblocking(False)
            return sock
        except OSError as exc:
            sock.close()
            last = exc
    shown = f"[{host_ip}]" if family == socket.AF_INET6 else host_ip
    what = f"{port.host_port}-{port.host_port_end}" if port.host_port_end else str(port.host_port)
    if last is not None and last.errno == errno.EADDRINUSE:
        holder = port_holder(port.host_port, host_ip, port.protocol)
        if holder is None:
            held = ""
        elif holder.pid == os.getpid():
            held = " (published by another container)"
        else:
            held = f" (held by {holder.describe()})"
        raise PortAllocatedError(f"Bind for {shown}:{what} failed: port is already allocated{held}")
    reason = last.strerror if last is not None else "no port"
    raise PortAllocatedError(f"Bind for {shown}:{what} failed: {reason}")


class _TcpListener:
    """Accepts on a published TCP port and hands each connection to a proxy thread.

    Accepting happens on the event loop (a reader callback, no transport, so asyncio never
    reads a byte); the bytes move in threads.
    """

    def __init__(self, sock: socket.socket, target: tuple[str, int], publication: Publication):
        self.sock = sock
        self.target = target
        self.publication = publication
        self.loop = asyncio.get_running_loop()
        self.loop.add_reader(sock.fileno(), self._accept)

    def _accept(self) -> None:
        for _ in range(64):
            try:
                client, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and friends: try again on the next wake-up
                return
            client.setblocking(True)
            threading.Thread(
                target=_proxy_tcp,
                args=(client, self.target, self.publication),
                daemon=True,
                name="declarun-proxy",
            ).start()

    def close(self) -> None:
        """Stop accepting and release the port."""
        if self.sock.fileno() >= 0:
            self.loop.remove_reader(self.sock.fileno())
            self.sock.close()


def _proxy_tcp(client: socket.socket, target: tuple[str, int], publication: Publication) -> None:
    try:
        upstream = socket.create_connection(target, timeout=_CONNECT_TIMEOUT)
    except OSError:
        client.close()
        return
    upstream.settimeout(None)
    for sock in (client, upstream):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    with publication._lock:
        publication._connections.update((client, upstream))
    back = threading.Thread(
        target=_pump, args=(upstream, client), daemon=True, name="declarun-proxy"
    )
    back.start()
    _pump(client, upstream)
    back.join()
    with publication._lock:
        publication._connections.difference_update((client, upstream))
    client.close()
    upstream.close()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    """Move bytes from ``src`` to ``dst`` until EOF, then half-close ``dst``."""
    try:
        _splice(src, dst)
    except OSError as exc:
        if exc.errno == errno.EINVAL:  # no splice for this pair: copy through user space
            with contextlib.suppress(OSError):
                _copy(src, dst)
    finally:
        with contextlib.suppress(OSError):
            dst.shutdown(socket.SHUT_WR)


def _splice(src: socket.socket, dst: socket.socket) -> None:
    read_end, write_end = os.pipe2(os.O_CLOEXEC)
    try:
        with contextlib.suppress(OSError):
            fcntl.fcntl(write_end, _F_SETPIPE_SZ, _CHUNK)
        src_fd, dst_fd = src.fileno(), dst.fileno()
        while True:
            try:
                moved = os.splice(src_fd, write_end, _CHUNK, flags=os.SPLICE_F_MOVE)
            except ConnectionResetError:
                return
            if moved == 0:
                return
            while moved:
                moved -= os.splice(read_end, dst_fd, moved, flags=os.SPLICE_F_MOVE)
    finally:
        os.close(read_end)
        os.close(write_end)


def _copy(src: socket.socket, dst: socket.socket) -> None:
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    while True:
        size = src.recv_into(buffer)
        if not size:
            return
        dst.sendall(view[:size])


class _UdpFlow(asyncio.DatagramProtocol):
    """The container side of one client's UDP flow: replies go back to that client."""

    def __init__(self, front: asyncio.DatagramTransport, client: tuple[str, int]) -> None:
        self.front = front
        self.client = client
        self.transport: asyncio.DatagramTransport | None = None
        self.last = asyncio.get_running_loop().time()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio 3.11\'s selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        self.last = asyncio.get_running_loop().time()
        if not self.front.is_closing():
            self.front.sendto(data, self.client)


class _UdpFront(asyncio.DatagramProtocol):
    """The host side of a published UDP port: one flow per client address."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.flows: dict[tuple[str, int], _UdpFlow] = {}
        self.pending: dict[tuple[str, int], list[bytes]] = {}
        self.opening: set[asyncio.Future[None]] = set()
        self.transport: asyncio.DatagramTransport | None = None
        self.reaper: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # asyncio 3.11\'s selector datagram transport does not subclass DatagramTransport.
        self.transport = cast(asyncio.DatagramTransport, transport)
        self._schedule_reap()

    def connection_lost(self, exc: Exception | None) -> None:
        if self.reaper is not None:
            self.reaper.cancel()
        for flow in self.flows.values():
            if flow.transport is not None:
                flow.transport.close()
        self.flows.clear()

    def datagram_received(self, data: bytes, addr: tuple[str, int]) -> None:
        flow = self.flows.get(addr)
        if flow is not None and flow.transport is not None:
            flow.last = asyncio.get_running_loop().time()
            flow.transport.sendto(data)
        elif addr in self.pending:
            self.pending[addr].append(data)
        else:
            self.pending[addr] = [data]
            task = asyncio.ensure_future(self._open_flow(addr))
            self.opening.add(task)
            task.add_done_callback(self.opening.discard)

    async def _open_flow(self, addr: tuple[str, int]) -> None:
        assert self.transport is not None
        loop = asyncio.get_running_loop()
        front = self.transport
        try:
            transport, flow = await loop.create_datagram_endpoint(
                lambda: _UdpFlow(front, addr), remote_addr=self.target
            )
        except OSError:
            self.pending.pop(addr, None)
            return
        self.flows[addr] = flow
        for data in self.pending.pop(addr, []):
            transport.sendto(data)

    def _schedule_reap(self) -> None:
        self.reaper = asyncio.get_running_loop().call_later(_UDP_IDLE / 3, self._reap)

    def _reap(self) -> None:
        now = asyncio.get_running_loop().time()
        for addr, flow in list(self.flows.items()):
            if now - flow.last > _UDP_IDLE and flow.transport is not None:
                flow.transport.close()
                del self.flows[addr]
        self._schedule_reap()


async def _serve_udp(sock: socket.socket, target: tuple[str, int]) -> asyncio.DatagramTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(lambda: _UdpFront(target), sock=sock)
    return transport
