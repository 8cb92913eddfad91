"""Health-gated replacement of a running container.

The new container is created under a temporary name (``<name>-next``) and must prove itself —
healthy when it has a health check, running otherwise — before the old one is stopped,
removed and the new one renamed into place. When the two would fight over a fixed host port
or address, the old one has to stop first: then a failing new container is removed and the
old one started again. Either way a failed replace leaves the old container serving and
raises :class:`StepFailed` with the new container's report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import docker.errors

from declarun.plan.identity import LABEL_STACK
from declarun.reconcile.actions import (
    create_container,
    remove_container,
    rename_container,
    restore_quietly,
    run_once,
    start_container,
    stop_container,
)
from declarun.reconcile.conditions import Condition, failure_report, wait_for
from declarun.reconcile.executor import StepContext, StepFailed

__all__ = ["TEMP_SUFFIX", "bodies_clash", "has_healthcheck", "replace_container", "start_gated"]

TEMP_SUFFIX = "-next"


def _fixed_ports(host_config: dict[str, Any]) -> set[tuple[str, str]]:
    ports: set[tuple[str, str]] = set()
    for container_port, bindings in (host_config.get("PortBindings") or {}).items():
        protocol = container_port.partition("/")[2] or "tcp"
        for binding in bindings or []:
            if binding.get("HostPort"):
                ports.add((str(binding["HostPort"]), protocol))
    return ports


def _fixed_addresses(body: dict[str, Any]) -> set[str]:
    endpoints = (body.get("NetworkingConfig") or {}).get("EndpointsConfig") or {}
    found = set()
    for endpoint in endpoints.values():
        address = ((endpoint or {}).get("IPAMConfig") or {}).get("IPv4Address")
        if address:
            found.add(str(address))
    return found


def bodies_clash(new_body: dict[str, Any], old_inspect: dict[str, Any]) -> bool:
    """True when the new container cannot run beside the old: a shared host port or address."""
    new_ports = _fixed_ports(new_body.get("HostConfig") or {})
    old_ports = _fixed_ports(old_inspect.get("HostConfig") or {})
    if new_ports & old_ports:
        return True
    old_networks = (old_inspect.get("NetworkSettings") or {}).get("Networks") or {}
    old_addresses = {
        str(((n or {}).get("IPAMConfig") or {}).get("IPv4Address"))
        for n in old_networks.values()
        if ((n or {}).get("IPAMConfig") or {}).get("IPv4Address")
    }
    return bool(_fixed_addresses(new_body) & old_addresses)


def has_healthcheck(inspect: dict[str, Any]) -> bool:
    """True when the container (its own config or its image's) runs a health check."""
    test = ((inspect.get("Config") or {}).get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def start_gated(client: Any, name: str, ctx: StepContext | None = None) -> None:
    """Start ``name`` and wait until it is healthy (with a health check) or running."""
    start_container(client, name)
    inspect = client.api.inspect_container(name)
    gate: Condition = "healthy" if has_healthcheck(inspect) else "started"
    wait_for(client, name, gate, report=ctx.update if ctx else None)


def _inspect_or_none(client: Any, name: str) -> dict[str, Any] | None:
    try:
        data: dict[str, Any] = client.api.inspect_container(name)
    except docker.errors.NotFound:
        return None
    return data


def _clear_leftover(client: Any, temp: str, body: dict[str, Any]) -> None:
    # A crash mid-replace can leave <name>-next behind; remove it only if it is ours.
    leftover = _inspect_or_none(client, temp)
    if leftover is None:
        return
    ours = (body.get("Labels") or {}).get(LABEL_STACK)
    theirs = ((leftover.get("Config") or {}).get("Labels") or {}).get(LABEL_STACK)
    if ours is None or ours != theirs:
        raise StepFailed(f"{temp} exists and is not owned by this stack; remove or rename it")
    remove_container(client, temp)


def replace_container(
    client: Any,
    name: str,
    body: dict[str, Any],
    *,
    extra_networks: Sequence[tuple[str, Mapping[str, Any]]] = (),
    grace: timedelta = timedelta(seconds=10),
    job: bool = False,
    ctx: StepContext | None = None,
) -> None:
    """Replace container ``name`` with one made from ``body``, keeping the old one on failure.

    ``job`` containers (``run: once``) are not services: the old one is removed and the new
    one run to completion.
    """
    old = _inspect_or_none(client, name)
    if job or old is None or not (old.get("State") or {}).get("Running"):
        if old is not None:
            remove_container(client, name, grace)
        create_container(client, name, body, extra_networks)
        if job:
            run_once(client, name, ctx=ctx)
        else:
            start_gated(client, name, ctx)
        return
    temp = f"{name}{TEMP_SUFFIX}"
    _clear_leftover(client, temp, body)
    clash = bodies_clash(body, old)
    create_container(client, temp, body, extra_networks)
    if clash:
        if ctx:
            ctx.update(f"stopping {name}: the new one needs its port or address")
        stop_container(client, name, grace)
    try:
        start_gated(client, temp, ctx)
    except StepFailed as exc:
        report = exc.report or failure_report(client, temp)
        with contextlib.suppress(StepFailed):
            remove_container(client, temp)
        if clash:
            restore_quietly(client, name)
            kept = "the old container was started again"
        else:
            kept = "the old container keeps running"
        raise StepFailed(f"the new {name} failed: {exc}; {kept}", report) from None
    remove_container(client, name, grace)
    rename_container(client, temp, name)
