"""declarun and docker-compose make the same containers from the corpus.

On the session's private dockerd, each project is applied with ``declarun apply compose.yaml
--engine docker``, its containers inspected, and destroyed; then brought up with Debian's
``docker-compose up -d``, inspected, and taken down. Per service, the containers must have the
same image, command, entrypoint, environment, mounts, published ports, networks and aliases,
healthcheck, restart policy, labels and other settings — names and each tool's own labels
aside (declarun's containers are ``<project>-<service>``, docker-compose's
``<project>_<service>_1``).

And every corpus project applies on declarund too, after which a plan has nothing to do.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from tests.compose.helpers import CORPUS
from tests.support.engine_fixtures import Engine

pytestmark = pytest.mark.root

PROJECTS = ["webapp", "wordpress", "queue", "profiles", "health", "interpolation"]
#: The external networks a project joins, made before and removed after, as an operator would.
EXTERNAL_NETWORKS = {"webapp": ["webproxy"]}
PROFILES = ("debug", "tools")
_NS = 1_000_000_000
_HEALTH_DEFAULTS = {"Interval": 30 * _NS, "Timeout": 30 * _NS, "Retries": 3, "StartPeriod": 0}
_DEFAULT_STOP_TIMEOUT = 10  # seconds, the engine's when a container names none
_OWN_LABELS = re.compile(r"^(com\.docker\.compose\.|dev\.declarun\.)")


def _environ(engine: Engine) -> dict[str, str]:
    registry, _, tag = engine.image.rpartition("/busybox:")
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "DECLARUN_SETTLE")}
    return {
        **keep,
        "REGISTRY": registry,
        "TAG": tag,
        "GREETING": "hello",
        "BOTH": "from the environment",
        "DB_PASSWORD": "s3cret",
        "DOCKER_HOST": engine.host,
        "NO_COLOR": "1",
        "COLUMNS": "200",
        "DECLARUN_HOST": engine.host,
    }


def _run(command: list[str], directory: Path, environ: dict[str, str]) -> str:
    done = subprocess.run(
        command,
        cwd=directory,
        env=environ,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout + done.stderr


def _declarun(*args: str) -> list[str]:
    return [sys.executable, "-m", "declarun", *args]


@contextmanager
def _applied_by_declarun(directory: Path, project: str, engine: Engine) -> Iterator[None]:
    environ = _environ(engine)
    common = ["--engine", "docker", "--host", engine.host, "-p", project]
    profiles = [arg for name in PROFILES for arg in ("--profile", name)]
    _run(_declarun("apply", "compose.yaml", *common, *profiles), directory, environ)
    try:
        yield
    finally:
        _run(
            _declarun("destroy", "compose.yaml", *common, *profiles, "--volumes", "--yes"),
            directory,
            environ,
        )


@contextmanager
def _up_by_docker_compose(directory: Path, project: str, engine: Engine) -> Iterator[None]:
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (see scripts/install-deps.sh)")
    environ = _environ(engine)
    profiles = [arg for name in PROFILES for arg in ("--profile", name)]
    base = ["docker-compose", "-p", project, *profiles]
    try:
        _run([*base, "up", "-d"], directory, environ)
        yield
    finally:
        _run([*base, "down", "-v", "--remove-orphans"], directory, environ)


def _strip(name: str, project: str) -> str:
    for separator in ("-", "_"):
        if name.startswith(project + separator):
            return name[len(project) + 1 :]
    return name


def _shape(info: dict[str, Any], project: str, service: str) -> dict[str, Any]:
    """What matters about one container, with each tool's naming taken out."""
    config, host = info["Config"], info["HostConfig"]
    short_id = info["Id"][:12]
    names = {service, short_id, info["Name"].lstrip("/"), config.get("Hostname")}
    names.update(f"{service}-{index}" for index in range(1, 10))
    mounts = set()
    for mount in info["Mounts"]:
        if mount["Type"] == "tmpfs":
            continue
        if mount["Type"] == "volume":
            name = mount.get("Name", "")
            source = _strip(name, project) if name.startswith(project) else None
        else:
            source = mount["Source"]
        mounts.add((mount["Type"], source, mount["Destination"], mount["RW"]))
    tmpfs = set(host.get("Tmpfs") or {}) | {
        m["Target"] for m in host.get("Mounts") or [] if m.get("Type") == "tmpfs"
    }
    mounts.update(("tmpfs", None, target, True) for target in tmpfs)
    ports = {
        (port, binding.get("HostIp") or "", binding.get("HostPort") or "")
        for port, bindings in (host.get("PortBindings") or {}).items()
        for binding in bindings or []
    }
    ports = {(p, "" if ip in ("0.0.0.0", "::") else ip, hp) for p, ip, hp in ports}
    networks = {
        _strip(network, project): sorted(set(endpoint.get("Aliases") or []) - names)
        for network, endpoint in info["NetworkSettings"]["Networks"].items()
    }
    health = config.get("Healthcheck")
    if health is not None:
        health = {
            "Test": health.get("Test") or [],
            **{k: health.get(k) or default for k, default in _HEALTH_DEFAULTS.items()},
        }
    restart = host.get("RestartPolicy") or {}
    restart_name = restart.get("Name") or "no"
    labels = {k: v for k, v in (config.get("Labels") or {}).items() if not _OWN_LABELS.match(k)}
    return {
        "image": config["Image"],
        "command": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        # An entry without '=' removes a variable (docker-compose passes an unset one so).
        "env": sorted(e for e in config.get("Env") or [] if "=" in e),
        "mounts": sorted(mounts, key=repr),
        "ports": sorted(ports),
        "networks": networks,
        "healthcheck": health,
        "restart": (
            restart_name,
            restart.get("MaximumRetryCount") if restart_name == "on-failure" else None,
        ),
        "labels": labels,
        "user": config.get("User") or "",
        "working_dir": config.get("WorkingDir") or "",
        "read_only": bool(host.get("ReadonlyRootfs")),
        "init": bool(host.get("Init")),
        "cap_add": sorted(host.get("CapAdd") or []),
        "cap_drop": sorted(host.get("CapDrop") or []),
        "extra_hosts": sorted(host.get("ExtraHosts") or []),
        "dns": host.get("Dns") or [],
        "memory": host.get("Memory") or 0,
        "cpus": (host.get("NanoCpus") or 0) / _NS or (host.get("CpuQuota") or 0) / 100_000,
        "stop_signal": config.get("StopSignal"),
        "stop_timeout": config.get("StopTimeout") or _DEFAULT_STOP_TIMEOUT,
    }


def _containers(engine: Engine, label: str, project: str, service_label: str) -> dict[str, Any]:
    found: dict[str, list[dict[str, Any]]] = {}
    for summary in engine.client.api.containers(all=True, filters={"label": f"{label}={project}"}):
        info = engine.client.api.inspect_container(summary["Id"])
        service = info["Config"]["Labels"][service_label].removeprefix("container:")
        found.setdefault(service, []).append(_shape(info, project, service))
    return {service: sorted(shapes, key=repr) for service, shapes in found.items()}


@contextmanager
def _external_networks(name: str, engine: Engine) -> Iterator[None]:
    made = []
    try:
        for network in EXTERNAL_NETWORKS.get(name, []):
            engine.client.api.create_network(network)
            made.append(network)
        yield
    finally:
        for network in made:
            engine.client.api.remove_network(network)


@pytest.mark.parametrize("name", PROJECTS)
def test_declarun_and_docker_compose_make_the_same_containers(
    name: str, dockerd_engine: Engine, tmp_path: Path
) -> None:
    directory = tmp_path / name
    shutil.copytree(CORPUS / name, directory)
    project = f"p{name.replace('-', '')}"
    with (
        _external_networks(name, dockerd_engine),
        _applied_by_declarun(directory, project, dockerd_engine),
    ):
        ours = _containers(dockerd_engine, "dev.declarun.stack", project, "dev.declarun.resource")
    with (
        _external_networks(name, dockerd_engine),
        _up_by_docker_compose(directory, project, dockerd_engine),
    ):
        theirs = _containers(
            dockerd_engine, "com.docker.compose.project", project, "com.docker.compose.service"
        )
    assert set(ours) == set(theirs)
    for service in theirs:
        assert len(ours[service]) == len(theirs[service]), service
        for mine, compose in zip(ours[service], theirs[service], strict=True):
            differing = {k: (mine[k], compose[k]) for k in compose if mine[k] != compose[k]}
            assert not differing, f"{service}: {differing}"


@pytest.mark.parametrize("name", PROJECTS)
def test_the_corpus_applies_on_declarund_and_then_plans_nothing(
    name: str, declarund_engine: Engine, tmp_path: Path
) -> None:
    directory = tmp_path / name
    shutil.copytree(CORPUS / name, directory)
    project = f"d{name.replace('-', '')}"
    environ = _environ(declarund_engine)
    common = ["--host", declarund_engine.host, "-p", project]
    profiles = [arg for profile in PROFILES for arg in ("--profile", profile)]
    with _external_networks(name, declarund_engine):
        _apply_plan_destroy(directory, environ, [*common, *profiles])


def _apply_plan_destroy(directory: Path, environ: dict[str, str], options: list[str]) -> None:
    try:
        _run(_declarun("apply", "compose.yaml", *options), directory, environ)
        again = subprocess.run(
            _declarun("plan", "compose.yaml", *options),
            cwd=directory,
            env=environ,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert again.returncode == 0, again.stdout + again.stderr
    finally:
        _run(
            _declarun("destroy", "compose.yaml", *options, "--volumes", "--yes"), directory, environ
        )
