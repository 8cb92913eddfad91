"""Semantic checks on a normalised stack: what JSON Schema cannot see.

References between resources, dependency cycles, host ports published twice, replica names that
collide with other containers, addresses outside their network. Each check returns located
problems; :func:`check_stack` runs them all so the user sees everything at once.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Iterable, Iterator

import networkx as nx

from declarun.errors import Problem
from declarun.stack.check_builds import check_builds
from declarun.stack.model import PortBinding, Stack
from declarun.stack.naming import replica_names
from declarun.stack.schema import suggest

__all__ = ["check_stack"]

Check = Callable[[Stack], Iterable[Problem]]


def _unknown(kind: str, name: str, choices: Iterable[str]) -> tuple[str, str | None]:
    return f"unknown {kind} '{name}'", suggest(name, choices)


def check_references(stack: Stack, inactive: frozenset[str] = frozenset()) -> Iterator[Problem]:
    """Every image, volume, network and container a container names must be declared.

    ``inactive`` containers exist but are outside the active profiles; a dependency on one is
    reported by the profile selection, not as an unknown name.
    """
    for name, container in stack.containers.items():
        if container.image not in stack.images:
            message, hint = _unknown("image", container.image, stack.images)
            yield Problem(container.location, f"containers.{name}.image", message, hint)
        for index, mount in enumerate(container.mounts):
            if (
                mount.type == "volume"
                and mount.source is not None
                and mount.source not in stack.volumes
            ):
                message, hint = _unknown("volume", mount.source, stack.volumes)
                hint = hint or "declare it under volumes:, or use ./path for a bind mount"
                yield Problem(mount.location, f"containers.{name}.mounts[{index}]", message, hint)
        for index, attachment in enumerate(container.networks):
            if attachment.network not in stack.networks:
                message, hint = _unknown("network", attachment.network, stack.networks)
                yield Problem(
                    attachment.location, f"containers.{name}.networks[{index}]", message, hint
                )
        for index, dependency in enumerate(container.depends_on):
            path = f"containers.{name}.depends_on[{index}]"
            if dependency.container == name:
                yield Problem(dependency.location, path, "a container cannot depend on itself")
            elif (
                dependency.container not in stack.containers
                and dependency.container not in inactive
            ):
                message, hint = _unknown("container", dependency.container, stack.containers)
                yield Problem(dependency.location, path, message, hint)


def check_cycles(stack: Stack) -> Iterator[Problem]:
    """depends_on must not loop; each loop is printed as ``web -> api -> db -> web``."""
    graph = nx.DiGraph()
    for name, container in stack.containers.items():
        graph.add_node(name)
        for dependency in container.depends_on:
            if dependency.container in stack.containers and dependency.container != name:
                graph.add_edge(name, dependency.container)
    reported: set[frozenset[str]] = set()
    for cycle in nx.simple_cycles(graph):
        members = frozenset(cycle)
        if members in reported:
            continue
        reported.add(members)
        start = min(cycle)  # report each loop from a stable starting point
        turn = cycle.index(start)
        ordered = cycle[turn:] + cycle[:turn]
        loop = " -> ".join([*ordered, start])
        first = stack.containers[start]
        yield Problem(first.location, f"containers.{start}.depends_on", f"dependency cycle: {loop}")
        if len(reported) >= 10:
            break


_ANY_ADDRESS = (None, "0.0.0.0", "::")


def _clashes(a: PortBinding, b: PortBinding) -> bool:
    if a.host_port is None or a.host_port != b.host_port or a.protocol != b.protocol:
        return False
    return a.host_ip in _ANY_ADDRESS or b.host_ip in _ANY_ADDRESS or a.host_ip == b.host_ip


def check_host_ports(stack: Stack) -> Iterator[Problem]:
    """A fixed host port can be published once (replicas of a container count separately)."""
    # (port, protocol) -> the bindings seen so far; only bindings of one port can clash.
    seen: dict[tuple[int, str], list[tuple[str, str, PortBinding]]] = {}
    for name, container in stack.containers.items():
        for replica in replica_names(container):
            for binding in container.ports:
                if binding.host_port is None:
                    continue
                same_port = seen.setdefault((binding.host_port, binding.protocol), [])
                clash = next(
                    (
                        (owner, other_replica)
                        for owner, other_replica, other in same_port
                        if _clashes(binding, other)
                    ),
                    None,
                )
                if clash is None:
                    same_port.append((name, replica, binding))
                    continue
                owner, other_replica = clash
                where = f"{binding.host_ip or '0.0.0.0'}:{binding.host_port}/{binding.protocol}"
                hint = None
                if owner == name:
                    hint = (
                        f"replicas cannot share a fixed host port; publish "
                        f"'{binding.container_port}' alone for a random host port"
                    )
                yield Problem(
                    binding.location,
                    f"containers.{name}.ports",
                    f"host port {where} is already published by '{other_replica}'",
                    hint,
                )


def check_replica_names(stack: Stack) -> Iterator[Problem]:
    """``web`` with 2 replicas becomes ``web-1`` and ``web-2``: no other container may be so named."""
    owners: dict[str, str] = {}
    for name, container in stack.containers.items():
        for replica in replica_names(container):
            owner = owners.get(replica)
            if owner is not None and owner != name:
                yield Problem(
                    container.location,
                    f"containers.{name}",
                    f"the name '{replica}' is used both by container '{owner}' and by "
                    f"a replica of '{name}'"
                    if container.replicas > 1
                    else f"the name '{replica}' is also a replica of '{owner}'",
                )
            owners.setdefault(replica, name)


def check_addresses(stack: Stack) -> Iterator[Problem]:
    """A fixed container address needs a network with a subnet that contains it."""
    for name, container in stack.containers.items():
        for index, attachment in enumerate(container.networks):
            if attachment.ipv4_address is None:
                continue
            path = f"containers.{name}.networks[{index}]"
            network = stack.networks.get(attachment.network)
            if network is None or network.external:  # its subnet is not the stack's to know
                continue
            if network.subnet is None:
                yield Problem(
                    attachment.location,
                    path,
                    f"a fixed ipv4_address needs a subnet on network '{network.name}'",
                )
                continue
            if ipaddress.ip_address(attachment.ipv4_address) not in ipaddress.ip_network(
                network.subnet, strict=False
            ):
                yield Problem(
                    attachment.location,
                    path,
                    f"{attachment.ipv4_address} is outside network "
                    f"'{network.name}' ({network.subnet})",
                )
            if container.replicas > 1:
                yield Problem(
                    attachment.location, path, "replicas cannot share one fixed ipv4_address"
                )


def check_healthy_dependencies(stack: Stack) -> Iterator[Problem]:
    """``condition: healthy`` needs a health check that can pass: one whose dependency has its
    health check switched off can never start. (Without one of its own, the image's counts;
    the plan checks that once the image is there.)"""
    for name, container in stack.containers.items():
        for index, dependency in enumerate(container.depends_on):
            target = stack.containers.get(dependency.container)
            if dependency.condition != "healthy" or target is None:
                continue
            check = target.healthcheck
            if check is not None and check.disabled:
                yield Problem(
                    dependency.location,
                    f"containers.{name}.depends_on[{index}]",
                    f"'{target.name}' can never be healthy: its health check is disabled",
                    "give it a health check, or wait for condition started",
                )


CHECKS: tuple[Check, ...] = (
    check_builds,
    check_cycles,
    check_healthy_dependencies,
    check_host_ports,
    check_replica_names,
    check_addresses,
)


def check_stack(stack: Stack, inactive: frozenset[str] = frozenset()) -> list[Problem]:
    """Every semantic problem in ``stack`` (whose ``inactive`` containers were left out)."""
    problems: list[Problem] = list(check_references(stack, inactive))
    for check in CHECKS:
        problems.extend(check(stack))
    return problems
