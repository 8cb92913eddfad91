"""declarun's own Engine API client (the plan's reads): paths, versions, error kinds.

Against a small stdlib HTTP server on a Unix socket that answers as an engine does; the real
engines are driven through it by the CLI, reconcile and observe tests on both engines.
"""

from __future__ import annotations

import json
import socketserver
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from declarun.engine.apiclient import EngineAPIClient, path_of, supports
from declarun.engine.dockerpy import DockerEngine
from declarun.errdefs import Conflict, NotFound, SystemFailure, Unavailable, Unsupported


class _Engine(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    api_version = "1.45"
    seen: list[str] = []  # noqa: RUF012 (one server per test, reset by the fixture)

    def log_message(self, *args: object) -> None:
        pass

    def _answer(self, status: int, body: object, *, close: bool = False) -> None:
        data = b"" if body is None else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if close:
            self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        type(self).seen.append(f"GET {self.path}")
        if self.path == "/version":
            self._answer(200, {"Version": "x", "ApiVersion": type(self).api_version})
        elif self.path == "/_ping":
            self._answer(200, None)
        elif self.path == "/v1.45/containers/json?all=1":
            self._answer(200, [{"Id": "c1", "Names": ["/web"], "State": "running"}])
        elif self.path.startswith("/v1.45/images/"):
            self._answer(404, {"message": "No such image: nope:1"})
        else:
            self._answer(500, {"message": "boom"}, close=True)

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length))
        type(self).seen.append(f"POST {self.path} {json.dumps(body, sort_keys=True)}")
        self._answer(409, {"message": f"volume {body['Name']} is taken"})


class _UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


@pytest.fixture
def engine_host(tmp_path: Path) -> Iterator[str]:
    _Engine.seen = []
    _Engine.api_version = "1.45"
    path = tmp_path / "engine.sock"
    server = _UnixServer(str(path), _Engine)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"unix://{path}"
    server.shutdown()
    server.server_close()


def test_reads_ask_the_api_version_once_and_use_it_in_the_path(engine_host: str) -> None:
    engine = DockerEngine.open(engine_host, timeout=10)
    try:
        engine.ping()
        assert engine.version().api_version == "1.45"
        assert [c.name for c in engine.list_containers()] == ["web"]
    finally:
        engine.close()
    assert _Engine.seen == ["GET /_ping", "GET /version", "GET /v1.45/containers/json?all=1"]


def test_error_answers_become_kinds_with_the_engines_message(engine_host: str) -> None:
    engine = DockerEngine.open(engine_host, timeout=10)
    try:
        with pytest.raises(NotFound, match=r"No such image: nope:1"):
            engine.inspect_image("nope:1")
        with pytest.raises(Conflict, match="volume v is taken"):
            engine.create_volume({"Name": "v", "Labels": {"a": "b"}})
        with pytest.raises(SystemFailure, match="boom"):
            engine.inspect_container("x")
        # The engine closed that connection: the next request opens another.
        assert engine.version().version == "x"
    finally:
        engine.close()
    assert 'POST /v1.45/volumes/create {"Driver": "local", "Labels": {"a": "b"}, "Name": "v"}' in (
        _Engine.seen
    )


def test_an_engine_older_than_api_1_24_is_refused(engine_host: str) -> None:
    _Engine.api_version = "1.12"
    client = EngineAPIClient(engine_host, timeout=10)
    try:
        with pytest.raises(Unsupported, match=r"1\.12"):
            client.request("GET", "/containers/json")
    finally:
        client.close()


def test_nothing_answering_is_unavailable(tmp_path: Path) -> None:
    client = EngineAPIClient(f"unix://{tmp_path / 'none.sock'}", timeout=2)
    with pytest.raises(Unavailable):
        client.request("GET", "/_ping", versioned=False)


def test_addresses_and_paths() -> None:
    assert supports("unix:///run/x.sock") and supports("tcp://127.0.0.1:2375")
    assert not supports("ssh://me@host") and not supports("unix://")
    assert path_of("/images/{}/json", "127.0.0.1:5000/app:1") == "/images/127.0.0.1:5000/app:1/json"
    assert path_of("/containers/{}/json", "a b") == "/containers/a%20b/json"
