"""Malformed HTTP at declarund's socket: each request answered with a 4xx or the connection
closed, in bounded time and memory, and the daemon still serving afterwards.

Raw bytes over the Unix socket (no client library tidies them up). The limits relied on:
aiohttp's 8,190-byte request line and header field, 32 MiB for a JSON body (the server's
``CLIENT_MAX_SIZE``); the daemon's resident memory may grow by at most ``RSS_BOUND`` over
the whole module, 1,000 idle connections included.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.hostile.apifuzz import daemon_tracebacks
from tests.support.daemon import DaemonProcess, http_request, running_daemon

RSS_BOUND = 64 << 20
_ANSWER_TIMEOUT = 30.0


def rss(pid: int) -> int:
    """Resident bytes of ``pid`` (``VmRSS`` of /proc/PID/status)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert match is not None
    return int(match.group(1)) * 1024


def open_fds(pid: int) -> int:
    """How many file descriptors ``pid`` holds."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("malformed")) as running:
        start = rss(running.process.pid)
        yield running
        assert daemon_tracebacks(running.log()) == [], running.log()[-3000:]
        assert rss(running.process.pid) - start < RSS_BOUND


def exchange(path: Path, data: bytes | list[bytes], *, pause: float = 0.0) -> bytes:
    """Send ``data`` (pieces, with ``pause`` between) and read until the daemon closes or
    answers one full response; returns what came back (b"" when it just closed)."""
    pieces = data if isinstance(data, list) else [data]
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(_ANSWER_TIMEOUT)
        sock.connect(str(path))
        try:
            for piece in pieces:
                sock.sendall(piece)
                if pause:
                    time.sleep(pause)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the daemon gave up on us first: fine, as long as it answered or closed
        received = b""
        deadline = time.monotonic() + _ANSWER_TIMEOUT
        while time.monotonic() < deadline:
            try:
                chunk = sock.recv(65536)
            except ConnectionResetError:
                break
            if not chunk:
                break
            received += chunk
            if _complete(received):
                break
        else:
            raise AssertionError(f"no answer and no close within {_ANSWER_TIMEOUT} s")
        return received


def _complete(received: bytes) -> bool:
    head, sep, body = received.partition(b"\r\n\r\n")
    if not sep:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)", head)
    return match is None or len(body) >= int(match.group(1))


def status_of(answer: bytes) -> int | None:
    """The status of an HTTP answer, None when the connection was closed without one."""
    if not answer:
        return None
    match = re.match(rb"HTTP/1\.[01] (\d{3})", answer)
    assert match is not None, answer[:200]
    return int(match.group(1))


def assert_refused(answer: bytes, *allowed: int) -> None:
    """A 4xx among ``allowed`` (or any 4xx when none given), or a clean close."""
    status = status_of(answer)
    if status is None:
        return
    assert 400 <= status < 500, answer[:500]
    if allowed:
        assert status in allowed, answer[:500]


def post(path: str, body: bytes, *, headers: str = "") -> bytes:
    return (
        f"POST {path} HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n{headers}\r\n"
    ).encode() + body


def still_serving(daemon: DaemonProcess) -> None:
    ping = http_request(daemon.socket_path, "GET", "/_ping")
    assert (ping.status, ping.body) == (200, b"OK")


@pytest.mark.parametrize(
    "request_bytes",
    [
        pytest.param(b"GET /" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: d\r\n\r\n", id="long-url"),
        pytest.param(
            b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Big: " + b"v" * 100_000 + b"\r\n\r\n",
            id="long-header",
        ),
        pytest.param(
            b"GET /_ping HTTP/1.1\r\n"
            + b"".join(b"X-%d: 1\r\n" % i for i in range(20_000))
            + b"\r\n",
            id="20000-headers",
        ),
        pytest.param(b"GET /_ping HTTP/1.1\r\nHost d\r\n\r\n", id="header-without-colon"),
        pytest.param(
            b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + os.urandom(500), id="tls-hello"
        ),
        pytest.param(os.urandom(4096), id="random-bytes"),
        pytest.param(b"GET /_ping HTTP/9.9\r\n\r\n", id="bad-version"),
        pytest.param(b"GET /_ping HTTP/1.1\r\nContent-Length: -1\r\n\r\n", id="negative-length"),
        pytest.param(
            b"GET /_ping HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab",
            id="two-lengths",
        ),
        pytest.param(
            b"POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"zz\r\n{}\r\n0\r\n\r\n",
            id="bad-chunk-size",
        ),
        pytest.param(
            b"POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"ffffffffffffffffff\r\n{}\r\n",
            id="huge-chunk-size",
        ),
        pytest.param(
            b"POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n"
            b"Content-Length: 4\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
            id="chunked-and-length",
        ),
        pytest.param(
            b"POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"
            b"2\r\n{}\r\n0\r\n\r\n",
            id="unknown-coding",
        ),
        pytest.param(b"GET /\xff\xfe/json HTTP/1.1\r\nHost: d\r\n\r\n", id="non-utf8-path"),
        pytest.param(
            b"GET /images/json?filters=\xff\xfe HTTP/1.1\r\nHost: d\r\n\r\n", id="non-utf8-query"
        ),
        pytest.param(
            b"GET /_ping HTTP/1.1\r\nHost: d\r\nX-Registry-Auth: \xff\xfe\r\n\r\n",
            id="non-utf8-header",
        ),
    ],
)
def test_malformed_requests_are_refused(daemon: DaemonProcess, request_bytes: bytes) -> None:
    answer = exchange(daemon.socket_path, request_bytes)
    status = status_of(answer)
    # A few of these are still valid HTTP for the parts the server reads (a header it does
    # not use, a path it does not know): any answer is fine as long as it is not a 5xx.
    assert status is None or status < 500, answer[:500]
    still_serving(daemon)


def test_chunked_body_that_stops_is_dropped(daemon: DaemonProcess) -> None:
    head = b"POST /containers/create HTTP/1.1\r\nHost: d\r\nTransfer-Encoding: chunked\r\n\r\n"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.settimeout(_ANSWER_TIMEOUT)
        sock.connect(str(daemon.socket_path))
        sock.sendall(head + b'10\r\n{"Image": ')
        sock.shutdown(socket.SHUT_WR)  # and then nothing: the body never ends
        assert_refused(sock.recv(4096), 400)  # answered or closed, not left hanging
    still_serving(daemon)


def test_oversized_json_body_is_413(daemon: DaemonProcess) -> None:
    body = b'{"Image": "x", "Env": ["' + b"A" * (40 << 20) + b'"]}'
    answer = exchange(daemon.socket_path, post("/containers/create", body))
    assert_refused(answer, 413)
    still_serving(daemon)


def test_declared_length_beyond_the_limit_is_refused_before_reading(daemon: DaemonProcess) -> None:
    head = (
        b"POST /containers/create HTTP/1.1\r\nHost: d\r\nContent-Type: application/json\r\n"
        b"Content-Length: 1099511627776\r\n\r\n{"
    )
    assert_refused(exchange(daemon.socket_path, head), 413)
    still_serving(daemon)


@pytest.mark.parametrize("opener", [b"[", b'{"a":'])
def test_deeply_nested_json_is_400(daemon: DaemonProcess, opener: bytes) -> None:
    depth = 200_000
    closer = b"]" if opener == b"[" else b"}"
    body = opener * depth + b"1" + closer * depth
    for path in ("/containers/create", "/networks/create", "/volumes/create"):
        assert_refused(exchange(daemon.socket_path, post(path, body)), 400)
    still_serving(daemon)


def test_huge_json_within_the_limit_is_answered(daemon: DaemonProcess) -> None:
    # 30 MB of labels: parsed, then refused for the image that does not exist.
    labels = {f"label.{i}": "v" * 200 for i in range(140_000)}
    body = json.dumps({"Image": "no-such-image:1", "Labels": labels}).encode()
    assert len(body) < 32 << 20
    answer = exchange(daemon.socket_path, post("/containers/create", body))
    assert status_of(answer) == 404, answer[:300]
    still_serving(daemon)


@pytest.mark.parametrize(
    "body",
    [
        b'{"Image": "\xff\xfe"}',
        b'{"Name": "\xed\xa0\x80"}',  # a UTF-16 surrogate in UTF-8: invalid
        b'{"Image": "busybox", "Env": ["\\ud800"]}',  # a lone surrogate escape: valid JSON
        b"\xef\xbb\xbf{}",  # a byte-order mark
        b"null",
        b"[]",
        b'"text"',
        b"1e999999",
        b'{"Image": 1e999999}',
        b'{"Image": NaN}',
        b'{"Image": "x", "Image": "y", "Labels": {"a": null}}',
    ],
)
def test_odd_json_bodies_are_answered(daemon: DaemonProcess, body: bytes) -> None:
    for path in ("/containers/create", "/networks/create", "/volumes/create"):
        answer = exchange(daemon.socket_path, post(path, body))
        status = status_of(answer)
        assert status is not None and status < 500, (path, answer[:500])
    still_serving(daemon)


def test_a_slow_client_is_answered(daemon: DaemonProcess) -> None:
    request = b"GET /_ping HTTP/1.1\r\nHost: d\r\n\r\n"
    answer = exchange(daemon.socket_path, [bytes([b]) for b in request], pause=0.01)
    assert status_of(answer) == 200


def test_a_thousand_idle_connections(daemon: DaemonProcess) -> None:
    pid = daemon.process.pid
    fds_before = open_fds(pid)
    rss_before = rss(pid)
    idle: list[socket.socket] = []
    try:
        for _ in range(1000):
            sock = socket.socket(socket.AF_UNIX)
            sock.connect(str(daemon.socket_path))
            idle.append(sock)
        still_serving(daemon)  # the thousand-and-first is answered at once
        assert rss(pid) - rss_before < RSS_BOUND
        # And a half-sent request among them does not block the others.
        idle[0].sendall(b"GET /_ping HTTP/1.1\r\nHost: d\r\n")
        still_serving(daemon)
    finally:
        for sock in idle:
            sock.close()
    deadline = time.monotonic() + 30
    while open_fds(pid) > fds_before + 5 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert open_fds(pid) <= fds_before + 5, "connections closed by the client are released"
