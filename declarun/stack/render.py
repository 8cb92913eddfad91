"""A stack written back as a stack file: what ``declarun render`` prints.

The output is the stack as declarun understands it — templated, every default filled in,
every short form in its long form, paths absolute, env files read into ``env:`` (the files
are still listed, so an edit to one is still noticed) — and it is itself a valid stack file:
``validate`` accepts it and it plans exactly as the original (a property the tests check on
the examples and on fuzzed stacks). Compose users know this as ``docker compose config``.

What does not round-trip on purpose: secret values are written as ``***`` unless asked for
(``reveal_secrets``), and only the active profiles' containers are there (the others were
left out when the stack was loaded). Text that looks like a template is wrapped in
``{% raw %}`` so loading it again gives the same text.
"""

from __future__ import annotations

from typing import Any

from declarun.stack.model import (
    Container,
    Healthcheck,
    Image,
    Mount,
    Network,
    PortBinding,
    RestartPolicy,
    Stack,
    Volume,
)
from declarun.stack.units import format_duration

__all__ = ["stack_to_file"]

_MASKED = "***"
_MARKERS = ("{{", "{%", "{#")


def _text(value: str) -> str:
    if any(marker in value for marker in _MARKERS):
        return "{% raw %}" + value + "{% endraw %}"
    return value


def _plain(value: Any) -> Any:
    """JSON-able data with every string safe from templating."""
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if hasattr(value, "items"):  # FrozenDict
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _image(image: Image) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if image.ref is not None:
        data["ref"] = image.ref
    data["pull"] = image.pull
    if image.platform is not None:
        data["platform"] = image.platform
    if image.build is not None:
        build: dict[str, Any] = {
            "context": str(image.build.context),
            "dockerfile": image.build.dockerfile,
            "args": dict(image.build.args),
        }
        if image.build.target is not None:
            build["target"] = image.build.target
        data["build"] = build
    return data


def _volume(volume: Volume) -> dict[str, Any]:
    return {
        "driver": volume.driver,
        "driver_opts": dict(volume.driver_opts),
        "labels": dict(volume.labels),
        "keep": volume.keep,
    }


def _network(network: Network) -> dict[str, Any]:
    data: dict[str, Any] = {"driver": network.driver}
    if network.subnet is not None:
        data["subnet"] = network.subnet
    if network.gateway is not None:
        data["gateway"] = network.gateway
    data["internal"] = network.internal
    data["labels"] = dict(network.labels)
    return data


def _port(port: PortBinding) -> dict[str, Any]:
    data: dict[str, Any] = {"target": port.container_port}
    if port.host_port is not None:
        data["published"] = port.host_port
    if port.host_ip is not None:
        data["host_ip"] = port.host_ip
    data["protocol"] = port.protocol
    return data


def _mount(mount: Mount) -> dict[str, Any]:
    data: dict[str, Any] = {"type": mount.type}
    if mount.source is not None:
        data["source"] = mount.source
    data["target"] = mount.target
    data["read_only"] = mount.read_only
    tmpfs: dict[str, Any] = {}
    if mount.tmpfs_size is not None:
        tmpfs["size"] = mount.tmpfs_size
    if mount.tmpfs_mode is not None:
        tmpfs["mode"] = f"{mount.tmpfs_mode:03o}"
    if tmpfs:
        data["tmpfs"] = tmpfs
    return data


def _healthcheck(check: Healthcheck) -> dict[str, Any]:
    data: dict[str, Any] = {}
    if check.test:  # () keeps the image's own test: no test written
        data["test"] = list(check.test)
    data.update(
        interval=format_duration(check.interval),
        timeout=format_duration(check.timeout),
        retries=check.retries,
        start_period=format_duration(check.start_period),
    )
    return data


def _restart(policy: RestartPolicy) -> str:
    if policy.name == "on-failure" and policy.max_retries:
        return f"on-failure:{policy.max_retries}"
    return policy.name


def _container(container: Container, reveal_secrets: bool) -> dict[str, Any]:
    data: dict[str, Any] = {"image": container.image}
    if container.command is not None:
        data["command"] = list(container.command)
    if container.entrypoint is not None:
        data["entrypoint"] = list(container.entrypoint)
    env: dict[str, Any] = {}
    for key, value in container.env.items():
        if value.secret:
            env[key] = {"value": value.value if reveal_secrets else _MASKED, "secret": True}
        else:
            env[key] = value.value
    data["env"] = env
    if container.env_files:
        data["env_file"] = [{"path": str(f.path), "secret": f.secret} for f in container.env_files]
    for field in ("working_dir", "user", "hostname"):
        value = getattr(container, field)
        if value is not None:
            data[field] = value
    data["ports"] = [_port(p) for p in container.ports]
    data["mounts"] = [_mount(m) for m in container.mounts]
    data["networks"] = {
        a.network: {
            "aliases": list(a.aliases),
            **({"ipv4_address": a.ipv4_address} if a.ipv4_address is not None else {}),
        }
        for a in container.networks
    }
    data["depends_on"] = {d.container: {"condition": d.condition} for d in container.depends_on}
    if container.healthcheck is not None:
        data["healthcheck"] = _healthcheck(container.healthcheck)
    data["restart"] = _restart(container.restart)
    resources = {
        name: getattr(container.resources, name)
        for name in ("cpus", "memory", "pids")
        if getattr(container.resources, name) is not None
    }
    if resources:
        data["resources"] = resources
    data["labels"] = dict(container.labels)
    if container.stop_signal is not None:
        data["stop_signal"] = container.stop_signal
    data.update(
        stop_grace_period=format_duration(container.stop_grace_period),
        read_only=container.read_only,
        cap_add=list(container.cap_add),
        cap_drop=list(container.cap_drop),
        replicas=container.replicas,
        run=container.run,
        profiles=list(container.profiles),
    )
    return data


def stack_to_file(stack: Stack, *, reveal_secrets: bool = False) -> dict[str, Any]:
    """``stack`` as the data of a stack file that loads back to the same stack (see the module
    docstring); keys in the order a person would write them."""
    data: dict[str, Any] = {"stack": stack.name}
    if stack.vars:
        data["vars"] = dict(stack.vars)
    images = {n: _image(i) for n, i in stack.images.items() if not i.implicit}
    if images:
        data["images"] = images
    if stack.volumes:
        data["volumes"] = {n: _volume(v) for n, v in stack.volumes.items()}
    networks = {n: _network(net) for n, net in stack.networks.items() if not net.implicit}
    if networks:
        data["networks"] = networks
    if stack.containers:
        data["containers"] = {n: _container(c, reveal_secrets) for n, c in stack.containers.items()}
    plain: dict[str, Any] = _plain(data)
    return plain
