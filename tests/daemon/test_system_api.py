"""/_ping, /version and /info of the real daemon, seen by the docker CLI and docker-py."""

from __future__ import annotations

import json
import os
import platform
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import docker
import pytest

from declarun import __version__
from tests.support.daemon import DaemonProcess, http_request, running_daemon
from tests.support.swagger import validate

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
MIRROR = "https://mirror.example.test:5000"
GO_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    tmp = tmp_path_factory.mktemp("system")
    with running_daemon(
        tmp,
        "--registry-mirror",
        MIRROR,
        "--insecure-registry",
        "registry.test:5000",
        "--insecure-registry",
        "10.1.0.0/16",
    ) as d:
        yield d


@pytest.fixture
def client(daemon: DaemonProcess) -> Iterator[docker.DockerClient]:
    c = docker.DockerClient(base_url=daemon.url, timeout=30)
    try:
        yield c
    finally:
        c.close()


def docker_cli(daemon: DaemonProcess, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [DOCKER, *args], capture_output=True, text=True, env=daemon.env(), timeout=60, check=False
    )


def test_docker_version_negotiates_api_145(daemon: DaemonProcess) -> None:
    result = docker_cli(daemon, "version", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["Client"]["ApiVersion"] == "1.45"  # downgraded from the CLI's newer default
    server = doc["Server"]
    assert server["ApiVersion"] == "1.45"
    assert server["MinAPIVersion"] == "1.24"
    assert server["Version"] == __version__
    assert server["Os"] == "linux"
    assert server["Arch"] == GO_ARCH
    assert server["KernelVersion"] == platform.release()
    assert server["Components"][0]["Name"] == "Engine"


def test_docker_version_prints_server_section(daemon: DaemonProcess) -> None:
    result = docker_cli(daemon, "version")
    assert result.returncode == 0, result.stderr
    assert "Server: declarun" in result.stdout
    assert "API version:      1.45 (minimum version 1.24)" in result.stdout


def test_docker_info_reports_daemon_configuration(daemon: DaemonProcess) -> None:
    result = docker_cli(daemon, "info", "--format", "{{json .}}")
    assert result.returncode == 0, result.stderr
    info = json.loads(result.stdout)
    assert info["DockerRootDir"] == str(daemon.data_root)
    assert info["ServerVersion"] == __version__
    assert info["NCPU"] == len(os.sched_getaffinity(0))
    assert info["DefaultRuntime"] == "runc"
    assert info["RegistryConfig"]["Mirrors"] == [MIRROR + "/"]
    assert "10.1.0.0/16" in info["RegistryConfig"]["InsecureRegistryCIDRs"]
    assert info["RegistryConfig"]["IndexConfigs"]["registry.test:5000"]["Secure"] is False


def test_docker_info_text(daemon: DaemonProcess) -> None:
    result = docker_cli(daemon, "info")
    assert result.returncode == 0, result.stderr
    assert f"Docker Root Dir: {daemon.data_root}" in result.stdout
    assert "Server Version: " + __version__ in result.stdout
    assert "registry.test:5000" in result.stdout


def test_docker_py_ping_version_info(client: docker.DockerClient, daemon: DaemonProcess) -> None:
    assert client.ping() is True
    version = client.version()
    validate(version, "SystemVersion")
    assert version["ApiVersion"] == "1.45"
    info = client.info()
    validate(info, "SystemInfo")
    assert info["Containers"] == 0
    assert info["Images"] == 0
    assert info["OSType"] == "linux"
    assert info["Driver"] == "overlay2"
    assert info["Name"] == platform.node()
    assert info["MemTotal"] > 0
    assert info["CgroupDriver"] == "cgroupfs"
    assert info["CgroupVersion"] in ("1", "2")
    assert "runc" in info["Runtimes"]
    assert info["IndexServerAddress"] == "https://index.docker.io/v1/"
    with open("/etc/os-release") as f:
        pretty = next(line for line in f if line.startswith("PRETTY_NAME="))
    assert info["OperatingSystem"] == pretty.split("=", 1)[1].strip().strip('"')


def test_engine_id_survives_restart(tmp_path: Path) -> None:
    ids = []
    for _ in range(2):
        with running_daemon(tmp_path) as d:
            client = docker.DockerClient(base_url=d.url)
            ids.append(client.info()["ID"])
            client.close()
    assert ids[0] and ids[0] == ids[1]


@pytest.mark.parametrize("method", ["GET", "HEAD"])
def test_ping_headers(daemon: DaemonProcess, method: str) -> None:
    result = http_request(daemon.socket_path, method, "/_ping")
    assert result.status == 200
    assert result.body == (b"OK" if method == "GET" else b"")
    headers = result.headers
    assert headers["Api-Version"] == "1.45"
    assert headers["Builder-Version"]
    assert headers["Cache-Control"] == "no-cache, no-store, must-revalidate"
    assert headers["Pragma"] == "no-cache"
    assert headers["Docker-Experimental"] == "false"
    assert headers["Ostype"] == "linux"
    assert headers["Server"] == f"Declarun/{__version__} (linux)"
    assert headers["Content-Type"].startswith("text/plain")


def test_versioned_and_unversioned_paths_answer_alike(daemon: DaemonProcess) -> None:
    plain = json.loads(http_request(daemon.socket_path, "GET", "/version").body)
    for prefix in ("/v1.24", "/v1.40", "/v1.45"):
        result = http_request(daemon.socket_path, "GET", prefix + "/version")
        assert result.status == 200
        assert json.loads(result.body)["ApiVersion"] == plain["ApiVersion"]
