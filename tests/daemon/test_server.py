"""The daemon's HTTP frame and process life: routes, versions, errors, socket, lock, signals."""

from __future__ import annotations

import importlib
import json
import logging
import os
import pkgutil
import shutil
import signal
import socket
import stat
import subprocess
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import ModuleType

import docker
import pytest
from aiohttp import web

from declarun.daemon import api as api_package
from declarun.daemon import wiring
from declarun.daemon.api.server import API_VERSION_KEY, make_app
from declarun.errdefs import Conflict, InvalidArgument, NotFound
from tests.support.daemon import (
    DaemonProcess,
    cli_command,
    http_request,
    run_daemon_briefly,
    running_daemon,
    serving_app,
)

STANDARD_HEADERS = {
    "Api-Version": "1.45",
    "Docker-Experimental": "false",
    "Ostype": "linux",
}


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("server")) as d:
        yield d


def assert_docker_error(result_body: bytes, message: str) -> None:
    assert json.loads(result_body) == {"message": message}


# --- routing, versions, errors (real daemon) -------------------------------------------


def test_unknown_route_is_404_page_not_found(daemon: DaemonProcess) -> None:
    for path in ("/no/such/thing", "/v1.45/no/such/thing"):
        result = http_request(daemon.socket_path, "GET", path)
        assert result.status == 404
        assert result.headers["Content-Type"].startswith("application/json")
        assert_docker_error(result.body, "page not found")


def test_wrong_method_is_404_like_dockerd(daemon: DaemonProcess) -> None:
    result = http_request(daemon.socket_path, "POST", "/v1.45/version")
    assert result.status == 404
    assert_docker_error(result.body, "page not found")


def test_too_old_api_version_is_refused(daemon: DaemonProcess) -> None:
    result = http_request(daemon.socket_path, "GET", "/v1.12/version")
    assert result.status == 400
    assert_docker_error(
        result.body,
        "client version 1.12 is too old. Minimum supported API version is 1.24, "
        "please upgrade your client to a newer version",
    )


def test_too_new_api_version_is_refused(daemon: DaemonProcess) -> None:
    result = http_request(daemon.socket_path, "GET", "/v1.46/_ping")
    assert result.status == 400
    assert_docker_error(
        result.body, "client version 1.46 is too new. Maximum supported API version is 1.45"
    )


def test_every_response_carries_docker_headers(daemon: DaemonProcess) -> None:
    for method, path in (("GET", "/v1.45/info"), ("GET", "/nope"), ("GET", "/v1.0/version")):
        headers = http_request(daemon.socket_path, method, path).headers
        for name, value in STANDARD_HEADERS.items():
            assert headers[name] == value, (path, name)
        assert headers["Server"].startswith("Declarun/")


def test_docker_py_with_old_pinned_version(daemon: DaemonProcess) -> None:
    client = docker.DockerClient(base_url=daemon.url, version="1.24")
    try:
        assert client.version()["ApiVersion"] == "1.45"
    finally:
        client.close()


# --- the Unix socket ---------------------------------------------------------------------


def test_socket_is_0660_and_root_group(daemon: DaemonProcess) -> None:
    st = os.stat(daemon.socket_path)
    assert stat.S_ISSOCK(st.st_mode)
    assert stat.S_IMODE(st.st_mode) == 0o660
    if os.geteuid() == 0:
        assert (st.st_uid, st.st_gid) == (0, 0)


def test_socket_parent_directory_is_created(tmp_path: Path) -> None:
    nested = tmp_path / "run" / "declarun"
    with running_daemon(tmp_path, socket_path=nested / "d.sock") as d:
        assert stat.S_IMODE(os.stat(nested).st_mode) == 0o711
        assert http_request(d.socket_path, "GET", "/_ping").status == 200


def test_stale_socket_is_replaced(tmp_path: Path) -> None:
    sock_path = tmp_path / "declarund.sock"
    # A socket file nobody listens on, as a crashed daemon leaves behind.
    with socket.socket(socket.AF_UNIX) as stale:
        stale.bind(str(sock_path))
    assert stat.S_ISSOCK(os.stat(sock_path).st_mode)
    with running_daemon(tmp_path) as d:
        assert http_request(d.socket_path, "GET", "/_ping").body == b"OK"


def test_live_socket_of_another_daemon_is_not_stolen(tmp_path: Path, daemon: DaemonProcess) -> None:
    result = run_daemon_briefly(
        "--host", f"unix://{daemon.socket_path}", "--data-root", str(tmp_path / "other")
    )
    assert result.returncode != 0
    assert "another daemon is serving it" in result.stderr
    assert "Traceback" not in result.stderr
    assert http_request(daemon.socket_path, "GET", "/_ping").status == 200


# --- lock, signals, flags -----------------------------------------------------------------


def test_second_daemon_on_same_data_root_is_refused(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as first:
        result = subprocess.run(
            cli_command(
                "daemon",
                "--host",
                f"unix://{tmp_path / 'second.sock'}",
                "--data-root",
                str(first.data_root),
            ),
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert result.returncode != 0
        assert f"data root {first.data_root} is in use by another declarund" in result.stderr
        assert f"(pid {first.process.pid})" in result.stderr
        assert "Traceback" not in result.stderr
        assert not (tmp_path / "second.sock").exists()
        assert http_request(first.socket_path, "GET", "/_ping").status == 200


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_signal_stops_cleanly_and_removes_socket(tmp_path: Path, sig: int) -> None:
    with running_daemon(tmp_path) as d:
        assert d.stop(sig) == 0
        assert not d.socket_path.exists()
        assert "Traceback" not in d.log()
    # The lock went with the process: a new daemon can take the data root.
    with running_daemon(tmp_path) as again:
        assert http_request(again.socket_path, "GET", "/_ping").status == 200


def test_sigterm_ends_open_event_streams(tmp_path: Path) -> None:
    with running_daemon(tmp_path) as d:
        client = docker.APIClient(base_url=d.url, timeout=30)
        stream = client.events(decode=True)  # headers are back: the stream is open
        assert d.stop() == 0
        assert list(stream) == []
        client.close()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--host", "tcp://127.0.0.1:23760"], "a TCP listener needs --tlsverify"),
        (["--host", "ftp://x"], "expected unix:///PATH or tcp://HOST:PORT"),
        (["--host", "unix://relative.sock"], "the socket path must be absolute"),
        (["--max-concurrent-downloads", "0"], "--max-concurrent-downloads"),
        (["--runtime", "kata"], "--runtime"),
        (["--registry-mirror", "mirror.example"], "invalid --registry-mirror"),
        (["--insecure-registry", "http://r.example"], "should not contain '://'"),
        (["--tlscacert", "/nonexistent"], "need --tlsverify"),
        (["--log-level", "loud"], "--log-level"),
        (["--default-address-pool", "10.30.0.0/16"], "expected base=CIDR,size=PREFIX-LENGTH"),
        (["--default-address-pool", "base=10.30.0.0/16"], "both base= and size= are needed"),
        (["--default-address-pool", "base=10.30.0.300/16,size=24"], "base:"),
        (["--default-address-pool", "base=10.30.0.0/16,size=8"], "size must be a prefix"),
    ],
)
def test_bad_flags_exit_nonzero_without_traceback(
    tmp_path: Path, args: list[str], message: str
) -> None:
    result = run_daemon_briefly(*args, "--data-root", str(tmp_path / "root"))
    assert result.returncode != 0
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "root").exists()  # nothing started


def test_tcp_without_tls_listens_nowhere(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_daemon_briefly(
        "--host", f"tcp://127.0.0.1:{port}", "--data-root", str(tmp_path / "root")
    )
    assert result.returncode != 0
    with socket.socket() as client, pytest.raises(ConnectionRefusedError):
        client.connect(("127.0.0.1", port))


# --- the frame itself, with a test-only area (in-process server, real clients) ----------


class Boom(RuntimeError):
    pass


def _error_routes() -> Iterable[web.RouteDef]:
    async def not_found(request: web.Request) -> web.StreamResponse:
        raise NotFound("No such container: abc")

    async def conflict(request: web.Request) -> web.StreamResponse:
        raise Conflict('The container name "/web" is already in use')

    async def bad(request: web.Request) -> web.StreamResponse:
        raise InvalidArgument("invalid reference format")

    async def boom(request: web.Request) -> web.StreamResponse:
        raise Boom("disk on fire")

    async def version_echo(request: web.Request) -> web.StreamResponse:
        return web.json_response({"v": request[API_VERSION_KEY]})

    async def named(request: web.Request) -> web.StreamResponse:
        return web.json_response({"name": request.match_info["name"]})

    return [
        web.get("/t/notfound", not_found),
        web.post("/t/conflict", conflict),
        web.get("/t/bad", bad),
        web.get("/t/boom", boom),
        web.get("/t/version", version_echo),
        web.get("/t/{name:.+}/json", named),
    ]


@pytest.fixture
def error_app(tmp_path: Path) -> Iterator[Path]:
    sock = tmp_path / "app.sock"
    with serving_app(lambda: make_app(_error_routes()), sock):
        yield sock


@pytest.mark.parametrize(
    ("method", "path", "status", "message"),
    [
        ("GET", "/t/notfound", 404, "No such container: abc"),
        ("POST", "/v1.41/t/conflict", 409, 'The container name "/web" is already in use'),
        ("GET", "/t/bad", 400, "invalid reference format"),
        ("GET", "/v1.45/t/boom", 500, "disk on fire"),
    ],
)
def test_error_classes_map_to_docker_statuses(
    error_app: Path, method: str, path: str, status: int, message: str
) -> None:
    result = http_request(error_app, method, path)
    assert result.status == status
    assert_docker_error(result.body, message)
    assert result.headers["Api-Version"] == "1.45"


def test_unexpected_error_is_logged_with_traceback(
    error_app: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.ERROR, logger="declarun.daemon.api.server"):
        http_request(error_app, "GET", "/t/boom")
    records = [r for r in caplog.records if r.name == "declarun.daemon.api.server"]
    assert records and records[0].exc_info is not None
    assert isinstance(records[0].exc_info[1], Boom)


def test_handlers_see_requested_version(error_app: Path) -> None:
    assert json.loads(http_request(error_app, "GET", "/v1.30/t/version").body) == {"v": "1.30"}
    assert json.loads(http_request(error_app, "GET", "/t/version").body) == {"v": "1.45"}


def test_route_patterns_keep_working_under_prefix(error_app: Path) -> None:
    result = http_request(error_app, "GET", "/v1.45/t/localhost:5000/busybox/json")
    assert json.loads(result.body) == {"name": "localhost:5000/busybox"}


def test_docker_py_raises_api_errors_with_message(error_app: Path) -> None:
    client = docker.APIClient(base_url=f"unix://{error_app}", version="1.45")
    try:
        with pytest.raises(docker.errors.NotFound, match="No such container: abc"):
            client._result(client._get(client._url("/t/notfound")))
    finally:
        client.close()


def test_composition_root_lists_every_api_area() -> None:
    areas = {
        info.name
        for info in pkgutil.iter_modules(api_package.__path__)
        if callable(
            getattr(importlib.import_module(f"{api_package.__name__}.{info.name}"), "routes", None)
        )
    }
    wired = {
        value.__name__.rsplit(".", 1)[-1]
        for value in vars(wiring).values()
        if isinstance(value, ModuleType) and value.__name__.startswith(api_package.__name__ + ".")
    }
    assert "system" in areas and "errors" not in areas and "http" not in areas
    assert areas == wired


# --- TCP with mutual TLS ---------------------------------------------------------------------


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("certs")
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make test certificates")
    _openssl(
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        "ca-key.pem",
        "-out",
        "ca.pem",
        "-days",
        "2",
        "-subj",
        "/CN=declarun test CA",
        cwd=d,
    )
    for name, ext in (
        ("server", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth"),
        ("client", "extendedKeyUsage=clientAuth"),
    ):
        (d / f"{name}.ext").write_text(ext + "\n")
        _openssl(
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            f"{name}-key.pem",
            "-out",
            f"{name}.csr",
            "-subj",
            f"/CN={name}",
            cwd=d,
        )
        _openssl(
            "x509",
            "-req",
            "-in",
            f"{name}.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca-key.pem",
            "-CAcreateserial",
            "-out",
            f"{name}.pem",
            "-days",
            "2",
            "-extfile",
            f"{name}.ext",
            cwd=d,
        )
    return d


def _wait_for_tcp(port: int) -> None:
    deadline = time.monotonic() + 20
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                return
        except OSError:
            assert time.monotonic() < deadline, "TLS listener never came up"
            time.sleep(0.05)


def test_tcp_with_tls_requires_client_certificate(tmp_path: Path, certs: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls_flags = [
        "--tlsverify",
        "--tlscacert",
        str(certs / "ca.pem"),
        "--tlscert",
        str(certs / "server.pem"),
        "--tlskey",
        str(certs / "server-key.pem"),
    ]
    with running_daemon(tmp_path, "--host", f"tcp://127.0.0.1:{port}", *tls_flags) as d:
        _wait_for_tcp(port)
        env = d.env()
        env.pop("DOCKER_HOST")
        base = [shutil.which("docker") or "/usr/local/bin/docker", "-H", f"tcp://127.0.0.1:{port}"]
        ok = subprocess.run(
            [
                *base,
                "--tlsverify",
                "--tlscacert",
                str(certs / "ca.pem"),
                "--tlscert",
                str(certs / "client.pem"),
                "--tlskey",
                str(certs / "client-key.pem"),
                "version",
                "--format",
                "{{.Server.APIVersion}}",
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert ok.returncode == 0, ok.stderr
        assert ok.stdout.strip() == "1.45"
        refused = subprocess.run(
            [*base, "--tlsverify", "--tlscacert", str(certs / "ca.pem"), "version"],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert refused.returncode != 0
        assert "1.45" not in refused.stdout


def test_tcp_with_tls_refuses_a_client_certificate_from_another_ca(
    tmp_path: Path, certs: Path
) -> None:
    # A client certificate that is well formed but signed by a CA the daemon does not trust.
    rogue = tmp_path / "rogue"
    rogue.mkdir()
    _openssl(
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca-key.pem",
        "-out", "ca.pem", "-days", "2", "-subj", "/CN=rogue CA", cwd=rogue,
    )  # fmt: skip
    (rogue / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    _openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-keyout", "client-key.pem",
        "-out", "client.csr", "-subj", "/CN=client", cwd=rogue,
    )  # fmt: skip
    _openssl(
        "x509", "-req", "-in", "client.csr", "-CA", "ca.pem", "-CAkey", "ca-key.pem",
        "-CAcreateserial", "-out", "client.pem", "-days", "2", "-extfile", "client.ext",
        cwd=rogue,
    )  # fmt: skip
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    tls_flags = [
        "--tlsverify",
        "--tlscacert", str(certs / "ca.pem"),
        "--tlscert", str(certs / "server.pem"),
        "--tlskey", str(certs / "server-key.pem"),
    ]  # fmt: skip
    with running_daemon(tmp_path / "d", "--host", f"tcp://127.0.0.1:{port}", *tls_flags) as d:
        _wait_for_tcp(port)
        env = d.env()
        env.pop("DOCKER_HOST")
        refused = subprocess.run(
            [
                shutil.which("docker") or "/usr/local/bin/docker",
                "-H", f"tcp://127.0.0.1:{port}",
                "--tlsverify",
                "--tlscacert", str(certs / "ca.pem"),  # the client trusts the real server
                "--tlscert", str(rogue / "client.pem"),
                "--tlskey", str(rogue / "client-key.pem"),
                "version", "--format", "{{.Server.APIVersion}}",
            ],
            capture_output=True, text=True, env=env, timeout=60, check=False,
        )  # fmt: skip
        assert refused.returncode != 0
        assert "1.45" not in refused.stdout
        # (TLS 1.3: the server checks the certificate after the handshake, so the client
        # sees the connection close: "EOF".)
