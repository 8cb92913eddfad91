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

from declarun.engine.port import Engine
from declarun.engine.types import ContainerDetails
from declarun.errdefs import NotFound
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


def bodies_clash(new_body: dict[str, Any], old: ContainerDetails) -> bool:
    """True when the new container cannot run beside the old: a shared host port or address."""
    new_ports = _fixed_ports(new_body.get("HostConfig") or {})
    old_ports = {
        (b.host_port, b.container_port.partition("/")[2] or "tcp")
        for b in old.port_bindings
        if b.host_port
    }
    if new_ports & old_ports:
        return True
    return bool(_fixed_addresses(new_body) & set(old.ipv4_addresses.values()))


def has_healthcheck(details: ContainerDetails) -> bool:
    """True when the container (its own config or its image's) runs a health check."""
    check = details.healthcheck
    return check is not None and bool(check.test) and check.test[0] != "NONE"


def start_gated(engine: Engine, name: str, ctx: StepContext | None = None) -> None:
    """Start ``name`` and wait until it is healthy (with a health check) or running."""
    start_container(engine, name)
    gate: Condition = "healthy" if has_healthcheck(engine.inspect_container(name)) else "started"
    wait_for(engine, name, gate, report=ctx.update if ctx else None)


def _inspect_or_none(engine: Engine, name: str) -> ContainerDetails | None:
    try:
        return engine.inspect_container(name)
    except NotFound:
        return None


def _clear_leftover(engine: Engine, temp: str, body: dict[str, Any]) -> None:
    # A crash mid-replace can leave <name>-next behind; remove it only if it is ours.
    leftover = _inspect_or_none(engine, temp)
    if leftover is None:
        return
    ours = (body.get("Labels") or {}).get(LABEL_STACK)
    theirs = leftover.labels.get(LABEL_STACK)
    if ours is None or ours != theirs:
        raise StepFailed(f"{temp} exists and is not owned by this stack; remove or rename it")
    remove_container(engine, temp)


def replace_container(
    engine: Engine,
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
    old = _inspect_or_none(engine, name)
    if job or old is None or not old.state.running:
        if old is not None:
            remove_container(engine, name, grace)
        create_container(engine, name, body, extra_networks)
        if job:
            run_once(engine, name, ctx=ctx)
        else:
            start_gated(engine, name, ctx)
        return
    temp = f"{name}{TEMP_SUFFIX}"
    _clear_leftover(engine, temp, body)
    clash = bodies_clash(body, old)
    create_container(engine, temp, body, extra_networks)
    if clash:
        if ctx:
            ctx.update(f"stopping {name}: the new one needs its port or address")
        stop_container(engine, name, grace)
    try:
        start_gated(engine, temp, ctx)
    except StepFailed as exc:
        report = exc.report or failure_report(engine, temp)
        with contextlib.suppress(StepFailed):
            remove_container(engine, temp)
        if clash:
            restore_quietly(engine, name)
            kept = "the old container was started again"
        else:
            kept = "the old container keeps running"
        raise StepFailed(f"the new {name} failed: {exc}; {kept}", report) from None
    remove_container(engine, name, grace)
    rename_container(engine, temp, name)
