"""Our reading of the corpus agrees with Compose's own: Debian's docker-compose (v1.29)
``config`` output, on every field both know.

Two checks per project: (1) each service's fields in our model equal those in
``docker-compose config``'s output, read by small parsers here that share nothing with the
front end; (2) reading ``docker-compose config``'s fully resolved output with the front end
gives the same model as reading the original files (interpolation, ``.env``, overrides,
``extends`` and merging resolved by docker-compose instead of by us).
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml

from declarun.compose.pipeline import load_compose
from declarun.compose.project import ComposeOptions
from declarun.stack.model import Container, Stack
from declarun.stack.units import parse_duration, parse_size
from tests.compose.helpers import CORPUS

ENVIRON = {
    "REGISTRY": "127.0.0.1:5000",
    "TAG": "test",
    "GREETING": "hello",
    "BOTH": "from the environment",
    "DB_PASSWORD": "s3cret",
}
ALL_PROFILES = frozenset({"debug", "tools"})
# interpolation-v2 uses what docker compose v2 added; v1 refuses it.
PROJECTS = sorted(
    p.name
    for p in CORPUS.iterdir()
    if (p / "compose.yaml").is_file() and p.name != "interpolation-v2"
)
_CONDITIONS = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed",
}


def _environ() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG")}
    return {**keep, **ENVIRON}


def _unescape(value: Any) -> Any:
    """config's output is Compose text again: ``$$`` in it stands for ``$``."""
    if isinstance(value, str):
        return value.replace("$$", "$")
    if isinstance(value, dict):
        return {key: _unescape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_unescape(item) for item in value]
    return value


def compose_config(directory: Path) -> dict[str, Any]:
    """``docker-compose -p corpus config`` in ``directory``, parsed."""
    if shutil.which("docker-compose") is None:
        pytest.skip("docker-compose is not installed (see scripts/install-deps.sh)")
    done = subprocess.run(
        ["docker-compose", "-p", "corpus", "config"],
        cwd=directory,
        env=_environ(),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    config: dict[str, Any] = yaml.safe_load(done.stdout)
    return config


def ours(main: Path) -> Stack:
    options = ComposeOptions(project_name="corpus", environ=_environ(), profiles=ALL_PROFILES)
    return load_compose(main, options).stack


# -- docker-compose config's output, read independently --------------------------------------


def _argv(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    return tuple(shlex.split(value)) if isinstance(value, str) else tuple(map(str, value))


def _ports(service: dict[str, Any]) -> set[tuple[str | None, int | None, int, str]]:
    found = set()
    for port in service.get("ports", []):
        if isinstance(port, dict):
            published = port.get("published")
            found.add(
                (
                    port.get("host_ip"),
                    None if published is None else int(published),
                    int(port["target"]),
                    port.get("protocol", "tcp"),
                )
            )
            continue
        spec, _, protocol = str(port).partition("/")
        parts = spec.rsplit(":", 2)
        ip = parts[0] if len(parts) == 3 else None
        host = parts[-2] if len(parts) >= 2 else ""
        found.add((ip or None, int(host) if host else None, int(parts[-1]), protocol or "tcp"))
    return found


def _mounts(service: dict[str, Any], config: dict[str, Any]) -> set[tuple[str, Any, str, bool]]:
    found = set()
    for volume in service.get("volumes", []):
        parts = str(volume).split(":")
        if len(parts) == 1:
            found.add(("volume", None, parts[0], False))
            continue
        kind = "bind" if parts[0].startswith("/") else "volume"
        found.add((kind, parts[0], parts[1], len(parts) > 2 and parts[2] == "ro"))
    for target in service.get("tmpfs", []):
        found.add(("tmpfs", None, target, False))
    for secret in service.get("secrets", []):
        name = secret["source"] if isinstance(secret, dict) else secret
        found.add(("bind", config["secrets"][name]["file"], f"/run/secrets/{name}", True))
    return found


def _networks(service: dict[str, Any]) -> dict[str, set[str]]:
    networks = service.get("networks")
    if not networks:
        return {"default": set()}
    if isinstance(networks, list):
        return {name: set() for name in networks}
    return {name: set((options or {}).get("aliases", [])) for name, options in networks.items()}


def _healthcheck(check: dict[str, Any] | None) -> Any:
    if check is None:
        return None
    test = check.get("test")
    if check.get("disable") or test == ["NONE"]:
        return ("NONE",)
    if isinstance(test, str):
        test = ["CMD-SHELL", test]
    elif test and test[0] not in ("CMD", "CMD-SHELL", "NONE"):
        test = ["CMD", *test]
    return (
        tuple(test or ()),
        parse_duration(check.get("interval", "30s")),
        parse_duration(check.get("timeout", "30s")),
        int(check.get("retries", 3)),
        parse_duration(check.get("start_period", "0s")),
    )


def _their_fields(service: dict[str, Any], config: dict[str, Any]) -> dict[str, Any]:
    deploy = service.get("deploy") or {}
    limits = (deploy.get("resources") or {}).get("limits") or {}
    memory = limits.get("memory")
    return {
        "image": service["image"],
        "command": _argv(service.get("command")),
        "entrypoint": _argv(service.get("entrypoint")),
        "env": {k: str(v) for k, v in (service.get("environment") or {}).items() if v is not None},
        "ports": _ports(service),
        "mounts": _mounts(service, config),
        "networks": _networks(service),
        "depends_on": {
            name: _CONDITIONS[options["condition"]]
            for name, options in (service.get("depends_on") or {}).items()
        },
        "healthcheck": _healthcheck(service.get("healthcheck")),
        "restart": service.get("restart", "no"),
        "labels": {k: str(v) for k, v in (service.get("labels") or {}).items()},
        "user": service.get("user"),
        "working_dir": service.get("working_dir"),
        "hostname": service.get("hostname"),
        "read_only": bool(service.get("read_only", False)),
        "init": service.get("init"),
        "cap_add": set(service.get("cap_add", [])),
        "cap_drop": set(service.get("cap_drop", [])),
        "stop_signal": service.get("stop_signal"),
        "stop_grace_period": parse_duration(service.get("stop_grace_period", "10s")),
        "extra_hosts": sorted(service.get("extra_hosts", [])),
        "dns": list(service.get("dns", [])),
        "profiles": set(service.get("profiles", [])),
        "replicas": int(deploy.get("replicas", service.get("scale", 1))),
        "cpus": None if "cpus" not in limits else float(limits["cpus"]),
        "memory": None if memory is None else parse_size(memory),
    }


def _our_fields(stack: Stack, container: Container) -> dict[str, Any]:
    check = container.healthcheck
    restart = container.restart.name
    if container.restart.max_retries:
        restart += f":{container.restart.max_retries}"
    return {
        "image": stack.images[container.image].ref,
        "command": container.command,
        "entrypoint": container.entrypoint,
        "env": {k: v.value for k, v in container.env.items()},
        "ports": {(p.host_ip, p.host_port, p.container_port, p.protocol) for p in container.ports},
        "mounts": {(m.type, m.source, m.target, m.read_only) for m in container.mounts},
        "networks": {a.network: set(a.aliases) for a in container.networks},
        "depends_on": {d.container: d.condition for d in container.depends_on},
        "healthcheck": None
        if check is None
        else ("NONE",)
        if check.disabled
        else (check.test, check.interval, check.timeout, check.retries, check.start_period),
        "restart": restart,
        "labels": dict(container.labels),
        "user": container.user,
        "working_dir": container.working_dir,
        "hostname": container.hostname,
        "read_only": container.read_only,
        "init": container.init,
        "cap_add": set(container.cap_add),
        "cap_drop": set(container.cap_drop),
        "stop_signal": container.stop_signal,
        "stop_grace_period": container.stop_grace_period,
        "extra_hosts": sorted(container.extra_hosts),
        "dns": list(container.dns),
        "profiles": set(container.profiles),
        "replicas": container.replicas,
        "cpus": container.resources.cpus,
        "memory": container.resources.memory,
    }


@pytest.mark.parametrize("name", PROJECTS)
def test_our_model_agrees_with_docker_compose_config(name: str) -> None:
    directory = CORPUS / name
    config = _unescape(compose_config(directory))
    stack = ours(directory / "compose.yaml")
    assert set(stack.containers) == set(config["services"])
    for service_name, service in config["services"].items():
        theirs = _their_fields(service, config)
        mine = _our_fields(stack, stack.containers[service_name])
        assert mine == theirs, service_name
    declared = {n for n, v in stack.volumes.items()}
    assert declared == set(config.get("volumes") or {})
    networks = {n for n, v in stack.networks.items() if not v.implicit}
    assert networks == set(config.get("networks") or {})
    for network_name, network in (config.get("networks") or {}).items():
        network = network or {}
        ours_network = stack.networks[network_name]
        assert ours_network.internal == bool(network.get("internal", False))
        pools = (network.get("ipam") or {}).get("config") or [{}]
        assert ours_network.subnet == pools[0].get("subnet")
    for volume_name, volume in (config.get("volumes") or {}).items():
        assert dict(stack.volumes[volume_name].labels) == (volume or {}).get("labels", {})


@pytest.mark.parametrize("name", PROJECTS)
def test_docker_compose_resolved_output_reads_to_the_same_model(name: str, tmp_path: Path) -> None:
    directory = tmp_path / name
    shutil.copytree(CORPUS / name, directory)
    config = compose_config(directory)
    resolved = directory / "resolved.yaml"
    resolved.write_text(yaml.safe_dump(config))
    original, theirs = ours(directory / "compose.yaml"), ours(resolved)
    # docker-compose config writes env files' values into environment (no env_file remains)
    # and sorts what has no order in Compose: dependencies, mounts (by target), profiles.
    assert {n: _unordered(replace(c, env_files=())) for n, c in original.containers.items()} == {
        n: _unordered(c) for n, c in theirs.containers.items()
    }
    assert replace(original, containers=theirs.containers, source_file=resolved) == theirs


def _unordered(container: Container) -> Container:
    return replace(
        container,
        depends_on=tuple(sorted(container.depends_on, key=lambda d: d.container)),
        mounts=tuple(sorted(container.mounts, key=lambda m: m.target)),
        profiles=tuple(sorted(container.profiles)),
    )
