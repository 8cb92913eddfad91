"""A hijacked connection carries a raw bidirectional stream, as attach and exec need.

The server here is the daemon's own application (make_app with test-only routes) served
in a thread; the clients are a raw socket speaking the upgrade by hand, and docker-py.
"""

from __future__ import annotations

import asyncio
import json
import socket
import struct
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path

import docker
import pytest
from aiohttp import web

from declarun.daemon.api.hijack import (
    MULTIPLEXED_STREAM,
    RAW_STREAM,
    hijack,
    hijacked_response,
    wants_upgrade,
)
from declarun.daemon.api.http import read_json
from declarun.daemon.api.server import make_app
from tests.support.daemon import http_request, serving_app

ENDED = threading.Event()


def _stream_routes() -> Iterable[web.RouteDef]:
    async def attach(request: web.Request) -> web.StreamResponse:
        """Echo stdin upper-cased until the client half-closes, then say bye."""
        reader, writer = await hijack(request, content_type=RAW_STREAM)
        try:
            while chunk := await reader.read(4096):
                writer.write(chunk.upper())
                await writer.drain()
            writer.write(b"bye\n")
            await writer.drain()
            writer.write_eof()
        finally:
            writer.close()
        return hijacked_response(request)

    async def exec_start(request: web.Request) -> web.StreamResponse:
        """Read the JSON body first, then stream: raw echo with a TTY, framed output without."""
        options = await read_json(request, default={})
        upgraded = wants_upgrade(request)
        tty = bool(options.get("Tty"))
        reader, writer = await hijack(
            request, content_type=RAW_STREAM if tty else MULTIPLEXED_STREAM
        )
        try:
            if tty:
                # Nothing before the client speaks: see the docker-py caveat in hijack.py.
                while chunk := await reader.read(4096):
                    writer.write(chunk[::-1])
                    await writer.drain()
                writer.write(f"|upgraded={upgraded}".encode())
            else:
                out = b"hello from exec\n"
                writer.write(struct.pack(">BxxxL", 1, len(out)) + out)
                await writer.drain()
        finally:
            writer.close()
        return hijacked_response(request)

    async def plain(request: web.Request) -> web.StreamResponse:
        return web.json_response({"ok": True})

    async def flood(request: web.Request) -> web.StreamResponse:
        """Writes output forever: only the client's going away can end it."""
        _reader, writer = await hijack(request)
        try:
            while True:
                writer.write(b"x" * 65536)
                await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            ENDED.set()
            raise
        finally:
            writer.close()
        return hijacked_response(request)

    return [
        web.post("/containers/{id}/attach", attach),
        web.post("/exec/{id}/start", exec_start),
        web.get("/plain", plain),
        web.post("/flood", flood),
    ]


@pytest.fixture
def app_socket(tmp_path: Path) -> Iterator[Path]:
    sock = tmp_path / "app.sock"
    with serving_app(lambda: make_app(_stream_routes()), sock):
        yield sock


def _read_head(sock: socket.socket) -> tuple[str, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(4096)
        assert chunk, f"connection closed during the response head: {data!r}"
        data += chunk
    head, rest = data.split(b"\r\n\r\n", 1)
    status, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in header_lines)
    return status, headers, rest


def _recv_exactly(sock: socket.socket, pending: bytes, size: int) -> tuple[bytes, bytes]:
    while len(pending) < size:
        chunk = sock.recv(4096)
        assert chunk, f"stream closed early after {pending!r}"
        pending += chunk
    return pending[:size], pending[size:]


def _recv_all(sock: socket.socket, pending: bytes) -> bytes:
    while chunk := sock.recv(4096):
        pending += chunk
    return pending


def _connect(path: Path) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(30)
    sock.connect(str(path))
    return sock


def test_upgrade_gives_raw_bidirectional_stream_with_half_close(app_socket: Path) -> None:
    with _connect(app_socket) as sock:
        sock.sendall(
            b"POST /v1.45/containers/abc/attach?stream=1&stdin=1&stdout=1 HTTP/1.1\r\n"
            b"Host: docker\r\nContent-Length: 0\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        status, headers, pending = _read_head(sock)
        assert status == "HTTP/1.1 101 UPGRADED"
        assert headers["Content-Type"] == RAW_STREAM
        assert headers["Upgrade"] == "tcp"
        assert headers["Api-Version"] == "1.45"

        sock.sendall(b"hello")
        echoed, pending = _recv_exactly(sock, pending, 5)
        assert echoed == b"HELLO"
        sock.sendall(b" world")
        echoed, pending = _recv_exactly(sock, pending, 6)
        assert echoed == b" WORLD"

        # stdin ends; the server still writes its last words, then closes.
        sock.shutdown(socket.SHUT_WR)
        assert _recv_all(sock, pending) == b"bye\n"


def test_without_upgrade_header_answers_200_and_still_streams(app_socket: Path) -> None:
    with _connect(app_socket) as sock:
        sock.sendall(
            b"POST /containers/abc/attach?stream=1 HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n\r\n"
        )
        status, headers, pending = _read_head(sock)
        assert status == "HTTP/1.1 200 OK"
        assert "Upgrade" not in headers
        sock.sendall(b"abc")
        echoed, pending = _recv_exactly(sock, pending, 3)
        assert echoed == b"ABC"
        sock.shutdown(socket.SHUT_WR)
        assert _recv_all(sock, pending) == b"bye\n"


def test_request_body_is_consumed_before_the_stream(app_socket: Path) -> None:
    body = json.dumps({"Detach": False, "Tty": True}).encode()
    with _connect(app_socket) as sock:
        sock.sendall(
            b"POST /v1.45/exec/e1/start HTTP/1.1\r\nHost: d\r\n"
            b"Content-Type: application/json\r\n"
            + f"Content-Length: {len(body)}\r\n".encode()
            + b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            + body
        )
        status, _headers, pending = _read_head(sock)
        assert status == "HTTP/1.1 101 UPGRADED"
        sock.sendall(b"stressed")
        echoed, pending = _recv_exactly(sock, pending, 8)
        assert echoed == b"desserts"  # the JSON body never leaked into the stream
        sock.shutdown(socket.SHUT_WR)
        assert _recv_all(sock, pending) == b"|upgraded=True"


def test_docker_py_exec_socket_is_bidirectional(app_socket: Path) -> None:
    client = docker.APIClient(base_url=f"unix://{app_socket}", version="1.45", timeout=30)
    try:
        stream = client.exec_start("e1", tty=True, socket=True)
        raw: socket.socket = stream._sock
        raw.settimeout(30)
        raw.sendall(b"live")
        echoed, pending = _recv_exactly(raw, b"", 4)
        assert echoed == b"evil"
        raw.sendall(b"stop")
        echoed, pending = _recv_exactly(raw, pending, 4)
        assert echoed == b"pots"
        raw.shutdown(socket.SHUT_WR)
        assert _recv_all(raw, pending) == b"|upgraded=True"
        stream.close()
        raw.close()
    finally:
        client.close()


def test_multiplexed_content_type_without_tty(app_socket: Path) -> None:
    body = json.dumps({"Tty": False}).encode()
    with _connect(app_socket) as sock:
        sock.sendall(
            b"POST /exec/e2/start HTTP/1.1\r\nHost: d\r\n"
            + f"Content-Length: {len(body)}\r\n".encode()
            + b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
            + body
        )
        _status, headers, pending = _read_head(sock)
        assert headers["Content-Type"] == MULTIPLEXED_STREAM
        frame = _recv_all(sock, pending)
        stream_type, size = struct.unpack(">BxxxL", frame[:8])
        assert (stream_type, frame[8 : 8 + size]) == (1, b"hello from exec\n")


def test_ordinary_requests_after_a_hijack_on_another_connection(app_socket: Path) -> None:
    with _connect(app_socket) as sock:
        sock.sendall(
            b"POST /containers/x/attach HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        _read_head(sock)
        assert http_request(app_socket, "GET", "/plain").status == 200
        sock.shutdown(socket.SHUT_WR)
        assert _recv_all(sock, b"") == b"bye\n"


def test_client_disconnect_ends_hijacked_handler(app_socket: Path) -> None:
    ENDED.clear()
    with _connect(app_socket) as sock:
        sock.sendall(
            b"POST /flood HTTP/1.1\r\nHost: d\r\nContent-Length: 0\r\n"
            b"Connection: Upgrade\r\nUpgrade: tcp\r\n\r\n"
        )
        status, _headers, _pending = _read_head(sock)
        assert status == "HTTP/1.1 101 UPGRADED"
        assert sock.recv(65536)
    # The client hung up mid-stream: the handler must not write into the void forever.
    assert ENDED.wait(20), "the handler outlived its client"
    assert http_request(app_socket, "GET", "/plain").status == 200
