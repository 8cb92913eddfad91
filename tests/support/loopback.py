"""Small real servers on 127.0.0.1 for fault tests: an aiohttp app runner and a TCP proxy
that cuts connections after a number of bytes (a real dropped connection, not a mock)."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

__all__ = ["CuttingProxy", "serve_app"]


@contextlib.asynccontextmanager
async def serve_app(app: web.Application) -> AsyncIterator[str]:
    """Serve ``app`` on a free loopback port; yields its base URL (``http://127.0.0.1:N``)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    try:
        site = web.SockSite(runner, sock)
        await site.start()
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
        sock.close()


@dataclass
class CuttingProxy:
    """Forwards TCP to ``upstream_port``. The n-th connection that carries a blob request
    (``/blobs/`` in the path) is cut after ``cuts[n]`` response bytes from that request on
    (None or past the list: never cut). ``requests`` keeps the raw request bytes."""

    upstream_port: int
    cuts: list[int | None] = field(default_factory=list)
    requests: list[bytes] = field(default_factory=list)
    connections: int = 0
    port: int = 0
    _blob_connections: int = 0
    _server: asyncio.Server | None = None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)
    _writers: list[asyncio.StreamWriter] = field(default_factory=list)

    async def __aenter__(self) -> CuttingProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
        for writer in self._writers:
            writer.transport.abort()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            await self._server.wait_closed()

    def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.ensure_future(self._handle(reader, writer))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _handle(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        self.connections += 1
        self._writers.append(client_w)
        try:
            up_r, up_w = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            client_w.transport.abort()
            return
        self._writers.append(up_w)
        state: dict[str, int | None] = {"limit": None, "sent": 0}

        async def to_upstream() -> None:
            while data := await client_r.read(65536):
                self.requests.append(data)
                if b"/blobs/" in data and state["limit"] is None:
                    index = self._blob_connections
                    self._blob_connections += 1
                    state["limit"] = self.cuts[index] if index < len(self.cuts) else -1
                    state["sent"] = 0
                up_w.write(data)
                await up_w.drain()

        async def to_client() -> None:
            while data := await up_r.read(65536):
                limit, sent = state["limit"], state["sent"] or 0
                if limit is not None and limit >= 0 and sent + len(data) > limit:
                    client_w.write(data[: limit - sent])
                    await client_w.drain()
                    return
                state["sent"] = sent + len(data)
                client_w.write(data)
                await client_w.drain()

        forward = asyncio.ensure_future(to_upstream())
        try:
            await to_client()
        except OSError:
            pass
        finally:
            # abort: a hard close, as when a network path breaks mid-transfer
            client_w.transport.abort()
            up_w.transport.abort()
            await asyncio.gather(forward, return_exceptions=True)
