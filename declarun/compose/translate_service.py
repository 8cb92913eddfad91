"""One Compose service as one entry of the stack language's ``containers:``.

Each field is written in the stack language's own form, so the stack language's normaliser
and checks decide what it means (one meaning for both front ends). Compose's spellings are
mapped here: ``deploy.replicas``/``scale`` to ``replicas``, ``deploy.resources.limits``
(or ``cpus``, ``mem_limit``, ``pids_limit``) to ``resources``, ``service_healthy`` to
``healthy``, a ``build:`` (or a ``pull_policy``, a ``platform``) to a declared image named
after the service, and a service that others wait for with
``service_completed_successfully`` to a one-shot job (``run: once``). Values Compose reads
from text after interpolation (``replicas: "${N}"``) are converted as docker compose does.
"""

from __future__ import annotations

from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translate_context import ServiceContext
from declarun.compose.translate_env import translate_environment
from declarun.compose.translate_image import translate_image
from declarun.compose.translate_limits import (
    translate_healthcheck,
    translate_replicas,
    translate_resources,
    translate_restart,
)
from declarun.compose.translate_mounts import translate_mounts
from declarun.compose.translate_values import as_argv, as_bool, as_strings, as_text
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text

__all__ = ["ServiceContext", "translate_service"]

_CONDITIONS = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed",
}


def _put(
    t: Translation,
    container: dict[str, Any],
    spath: DataPath,
    cpath: DataPath,
    key: str,
    node: Node | None,
    value: Any,
) -> None:
    if node is None or value is None:
        return
    container[key] = value
    t.record((*spath, key), node, cpath)


def _ports(t: Translation, node: Node | None, spath: DataPath, cpath: DataPath) -> list[Any] | None:
    if node is None:
        return None
    ports: list[Any] = []
    for index, item in enumerate(node.elements()):
        item_cpath = (*cpath, "ports", index)
        if item.is_map:
            entry: dict[str, Any] = {}
            for key in ("target", "published"):
                found = item.get(key)
                if found is None or found.value in (None, ""):
                    continue
                text = scalar_text(found.value)
                entry[key] = int(text) if text.isdigit() else text
            for key in ("host_ip", "protocol"):
                text_value = as_text(item.get(key))
                if text_value:
                    entry[key] = text_value
            value: Any = entry
        elif isinstance(item.value, int) and not isinstance(item.value, bool):
            value = item.value
        else:
            value = scalar_text(item.value)
        t.record((*spath, "ports", len(ports)), item, item_cpath)
        ports.append(value)
    t.record((*spath, "ports"), node, (*cpath, "ports"))
    return ports


def _networks(
    t: Translation,
    service: Node,
    spath: DataPath,
    cpath: DataPath,
    container: dict[str, Any],
) -> None:
    node = service.get("networks")
    alias = as_text(service.get("container_name"))
    extra = [alias] if alias else []
    entries: dict[str, dict[str, Any] | None] = {}
    nodes: dict[str, Node] = {}
    for network, options in node.items() if node is not None else ():
        chosen: dict[str, Any] = {}
        if options.is_map:
            aliases = as_strings(options.get("aliases"))
            if aliases:
                chosen["aliases"] = aliases
            address = as_text(options.get("ipv4_address"))
            if address:
                chosen["ipv4_address"] = address
        entries[network] = chosen
        nodes[network] = options
    if not entries and extra:
        entries["default"] = {}
        nodes["default"] = service.get("container_name") or service
    for network in entries:
        if extra:
            options_dict = entries[network] or {}
            options_dict["aliases"] = list(
                dict.fromkeys([*options_dict.get("aliases", []), *extra])
            )
            entries[network] = options_dict
    if not entries:
        return
    if any(entries.values()):
        container["networks"] = {name: (value or None) for name, value in entries.items()}
        for network, options in nodes.items():
            t.record((*spath, "networks", network), options, (*cpath, "networks", network))
    else:
        container["networks"] = list(entries)
        for index, network in enumerate(entries):
            t.record((*spath, "networks", index), nodes[network], (*cpath, "networks", network))
    if node is not None:
        t.record((*spath, "networks"), node, (*cpath, "networks"))
    for index, network in enumerate(entries):
        t.alias(f"containers.{spath[1]}.networks[{index}]", (*cpath, "networks", network))
    if extra:
        t.note(
            (*spath, "networks"),
            f"container_name {alias!r} is a network alias here: declarun names the container "
            f"{t.data.get('stack', '')}-{spath[1]}",
        )


def _depends_on(
    t: Translation,
    ctx: ServiceContext,
    service: Node,
    spath: DataPath,
    cpath: DataPath,
    container: dict[str, Any],
) -> None:
    node = service.get("depends_on")
    if node is None:
        return
    chosen: dict[str, str] = {}
    for dependency, options in node.items():
        condition = "started"
        required = True
        dependency_cpath = (*cpath, "depends_on", dependency)
        if options.is_map:
            written = as_text(options.get("condition"))
            if written is not None:
                condition = _CONDITIONS.get(written, "started")
            required = (
                as_bool(t, options.get("required"), (*dependency_cpath, "required")) is not False
            )
            restart = options.get("restart")
            if as_bool(t, restart, (*dependency_cpath, "restart")) and restart is not None:
                t.warn(
                    restart.at,
                    (*dependency_cpath, "restart"),
                    "not supported, ignored: declarun does not restart this service when "
                    f"{dependency} is restarted",
                )
        if not required and (dependency not in ctx.services or dependency not in ctx.active):
            t.note((*spath, "depends_on"), f"{dependency} is optional and absent: left out")
            continue
        t.record((*spath, "depends_on", dependency), options, dependency_cpath)
        t.record((*spath, "depends_on", len(chosen)), options, dependency_cpath)
        t.alias(f"containers.{spath[1]}.depends_on[{len(chosen)}]", dependency_cpath)
        chosen[dependency] = condition
    if not chosen:
        return
    t.record((*spath, "depends_on"), node, (*cpath, "depends_on"))
    if all(condition == "started" for condition in chosen.values()):
        container["depends_on"] = list(chosen)
    else:
        container["depends_on"] = {
            name: ({"condition": condition} if condition != "started" else None)
            for name, condition in chosen.items()
        }


def translate_service(
    t: Translation, ctx: ServiceContext, name: str, service: Node
) -> dict[str, Any]:
    """The stack language's container for service ``name`` (its problems go to ``t``)."""
    cpath: DataPath = ("services", name)
    spath: DataPath = ("containers", name)
    t.record(spath, service, cpath)
    container: dict[str, Any] = {}
    translate_image(t, ctx, name, service, spath, cpath, container)
    for key in ("command", "entrypoint"):
        _put(t, container, spath, (*cpath, key), key, service.get(key), as_argv(service.get(key)))
    translate_environment(t, service, spath, cpath, ctx.lookup, container)
    for key in ("working_dir", "user", "hostname"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, as_text(node))
    ports = service.get("ports")
    _put(t, container, spath, (*cpath, "ports"), "ports", ports, _ports(t, ports, spath, cpath))
    translate_mounts(t, ctx.root, service, spath, cpath, container)
    _networks(t, service, spath, cpath, container)
    _depends_on(t, ctx, service, spath, cpath, container)
    healthcheck = service.get("healthcheck")
    check = translate_healthcheck(t, healthcheck, (*cpath, "healthcheck"))
    _put(t, container, spath, (*cpath, "healthcheck"), "healthcheck", healthcheck, check)
    restart, restart_node = translate_restart(t, service, cpath)
    _put(t, container, spath, (*cpath, "restart"), "restart", restart_node, restart)
    translate_resources(t, service, spath, cpath, container)
    labels = service.get("labels")
    if labels is not None and labels.is_map:
        _put(
            t,
            container,
            spath,
            (*cpath, "labels"),
            "labels",
            labels,
            {key: scalar_text(value.value) for key, value in labels.items()},
        )
    for key in ("stop_signal", "stop_grace_period"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, as_text(node))
    for key in ("read_only", "init"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, as_bool(t, node, (*cpath, key)))
    for key in ("cap_add", "cap_drop"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, as_strings(node) or None)
    hosts = service.get("extra_hosts")
    if hosts is not None:
        lines = [
            f"{host}:{scalar_text(address.value)}"
            for host, addresses in hosts.items()
            for address in addresses.elements()
        ]
        _put(t, container, spath, (*cpath, "extra_hosts"), "extra_hosts", hosts, lines or None)
    dns = service.get("dns")
    _put(t, container, spath, (*cpath, "dns"), "dns", dns, as_strings(dns) or None)
    translate_replicas(t, service, spath, cpath, container)
    if name in ctx.completed:
        if restart is None or restart.split(":")[0] not in ("always", "unless-stopped"):
            container["run"] = "once"
            t.note(
                (*spath, "run"),
                "others wait for it with service_completed_successfully: a one-shot job",
            )
        else:
            assert restart_node is not None
            t.problem(
                restart_node.where,
                (*cpath, "restart"),
                f"restart: {restart} would never let it complete, yet other services wait for "
                "it with condition: service_completed_successfully",
                "use restart: on-failure to retry a failed run",
            )
    profiles = service.get("profiles")
    _put(
        t,
        container,
        spath,
        (*cpath, "profiles"),
        "profiles",
        profiles,
        as_strings(profiles) or None,
    )
    return container
