"""Hijacking a connection: the raw bidirectional stream of attach and exec.

``POST /containers/{id}/attach`` and ``POST /exec/{id}/start`` stop speaking HTTP after the
response head: the client sends ``Connection: Upgrade`` / ``Upgrade: tcp``, the daemon
answers ``101 UPGRADED`` (or ``200 OK`` to a client that did not ask to upgrade), and from
then on the socket carries stdin one way and stdout/stderr the other (raw, or multiplexed
in 8-byte-header frames when there is no TTY). A client may half-close its side when stdin
ends and still read the output.

How a handler uses it::

    async def start_exec(request: web.Request) -> web.StreamResponse:
        options = await read_json(request, default={})   # read the body first
        reader, writer = await hijack(request, content_type=MULTIPLEXED_STREAM)
        try:
            ...  # reader.read() gives stdin (b"" at the client's half-close);
            ...  # writer.write() + await writer.drain() sends output
            writer.write_eof()                            # optional: half-close our side
        finally:
            writer.close()
        return hijacked_response(request)

A caveat from the clients: docker-py reads the response head through a buffer that it then
bypasses, so stream bytes that reach it together with the head can be lost to it. dockerd
has the same exposure; in practice output follows the head after the process starts. Send
nothing before there is real output (never a greeting right after hijack()).

Errors must be raised before hijack(); afterwards the connection no longer speaks HTTP, so
the server's error middleware only logs them. A client that closes the connection looks,
as in any TCP stream, like one that half-closed (``reader`` reaches EOF) until the next
write fails; then the handler gets a ConnectionError from ``drain()`` or is cancelled
(the server runs with handler cancellation, like dockerd's request context).

How it works: aiohttp's own upgrade support is for WebSocket only, so the helper takes the
transport over the way Go's ``http.Hijacker`` does. It makes sure the request body has
been read, swaps the transport's protocol for an asyncio stream protocol, writes the
response head itself, and leaves aiohttp a response that writes nothing. Connection loss
is still forwarded to aiohttp's protocol so its bookkeeping (open connections, handler
cancellation) stays right.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from aiohttp.abc import AbstractStreamWriter

from declarun.daemon.api.apiversion import standard_headers

__all__ = [
    "HIJACKED_KEY",
    "MULTIPLEXED_STREAM",
    "RAW_STREAM",
    "hijack",
    "hijacked_response",
    "is_hijacked",
    "wants_upgrade",
]

RAW_STREAM = "application/vnd.docker.raw-stream"
MULTIPLEXED_STREAM = "application/vnd.docker.multiplexed-stream"
# request[HIJACKED_KEY] holds the do-nothing response once a request has been hijacked.
HIJACKED_KEY: web.RequestKey[web.StreamResponse] = web.RequestKey(
    "declarun_hijacked", web.StreamResponse
)
_STREAM_LIMIT = 1 << 20


class _HijackedResponse(web.StreamResponse):
    """What aiohttp finishes after a hijack: the head was already written by hand."""

    async def prepare(self, request: web.BaseRequest) -> AbstractStreamWriter | None:
        self.force_close()
        return None

    async def write_eof(self, data: bytes = b"") -> None:
        return None


class _HijackedProtocol(asyncio.StreamReaderProtocol):
    """A stream protocol that also tells aiohttp's protocol when the connection is lost."""

    def __init__(self, reader: asyncio.StreamReader, previous: asyncio.BaseProtocol) -> None:
        super().__init__(reader)
        self._previous = previous

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        self._previous.connection_lost(exc)


def wants_upgrade(request: web.BaseRequest) -> bool:
    """True when the client asked for ``Upgrade: tcp`` (docker CLI and docker-py do)."""
    connection = {t.strip().lower() for t in request.headers.get("Connection", "").split(",")}
    return "upgrade" in connection and request.headers.get("Upgrade", "").lower() == "tcp"


def is_hijacked(request: web.BaseRequest) -> bool:
    """True once hijack() has taken this request's connection."""
    return HIJACKED_KEY in request


def hijacked_response(request: web.BaseRequest) -> web.StreamResponse:
    """The response a handler returns after hijack(); aiohttp then just closes the socket."""
    response: web.StreamResponse | None = request.get(HIJACKED_KEY)
    if response is None:
        raise RuntimeError("hijacked_response() called on a request that was not hijacked")
    return response


async def hijack(
    request: web.BaseRequest, *, content_type: str = RAW_STREAM
) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Answer ``101 UPGRADED`` (or ``200 OK``) and hand the raw connection to the caller."""
    if is_hijacked(request):
        raise RuntimeError("this request was already hijacked")
    # Whatever body the request has must be consumed by aiohttp's parser before the
    # protocol swap, or its bytes would show up as stream data.
    await request.read()
    transport = request.transport
    protocol = request.protocol
    if transport is None or transport.is_closing():
        raise ConnectionResetError("the client went away before the stream started")

    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=_STREAM_LIMIT, loop=loop)
    stream_protocol = _HijackedProtocol(reader, protocol)
    transport.set_protocol(stream_protocol)
    stream_protocol.connection_made(transport)
    # Bytes aiohttp buffered past an accepted upgrade belong to the stream.
    tail = getattr(protocol, "_message_tail", b"")
    if tail:
        reader.feed_data(tail)
    if isinstance(transport, asyncio.ReadTransport) and not transport.is_reading():
        transport.resume_reading()
    writer = asyncio.StreamWriter(transport, stream_protocol, reader, loop)

    upgrade = wants_upgrade(request)
    lines = ["HTTP/1.1 101 UPGRADED" if upgrade else "HTTP/1.1 200 OK"]
    lines.append(f"Content-Type: {content_type}")
    if upgrade:
        lines += ["Connection: Upgrade", "Upgrade: tcp"]
    lines += [f"{name}: {value}" for name, value in standard_headers().items()]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))

    request[HIJACKED_KEY] = _HijackedResponse()
    return reader, writer
