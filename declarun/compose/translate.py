"""A merged Compose project as stack data: the stack language's ``stack``, ``images``,
``volumes``, ``networks`` and ``containers``.

The project name is the stack's name (so ownership labels name the project), top-level
volumes and networks keep their keys, and each service becomes a container of the same name
(:mod:`declarun.compose.translate_service`). What the stack language cannot say is left out
with a located warning, here for values and in :mod:`declarun.compose.fields` for whole fields.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translate_context import ServiceContext
from declarun.compose.translate_service import translate_service
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text

__all__ = ["translate_project"]

Lookup = Callable[[str], str | None]


def _string_map(node: Node | None) -> dict[str, str] | None:
    if node is None:
        return None
    if node.is_list:
        pairs = (scalar_text(item.value).partition("=") for item in node.elements())
        return {key: value for key, _sep, value in pairs}
    return {key: scalar_text(value.value) for key, value in node.items()} or None


def _volume(t: Translation, name: str, node: Node) -> dict[str, Any] | None:
    path: DataPath = ("volumes", name)
    t.record(path, node, path)
    volume: dict[str, Any] = {}
    for key in ("driver_opts", "labels"):
        found = _string_map(node.get(key))
        if found:
            volume[key] = found
            t.record((*path, key), node.get(key) or node, (*path, key))
    driver = node.get("driver")
    if driver is not None and driver.value is not None:
        volume["driver"] = scalar_text(driver.value)
        t.record((*path, "driver"), driver, (*path, "driver"))
    _external_and_name(t, node, path, volume)
    return volume or None


def _external_and_name(t: Translation, node: Node, path: DataPath, entry: dict[str, Any]) -> None:
    """``external`` (true, or the old ``{name: ...}`` form) and ``name``: the stack language's
    ``external`` and ``engine_name``. An external resource is used as it stands."""
    external = node.get("external")
    name = node.get("name")
    old_form = external.get("name") if external is not None else None
    if external is not None and (external.value in (True, "true") or external.is_map):
        # How to make it does not apply; the stack language refuses it, as Compose does.
        entry["external"] = True
        t.record((*path, "external"), external, (*path, "external"))
        name = old_form or name
    if name is not None and name.value not in (None, ""):
        entry["engine_name"] = scalar_text(name.value)
        t.record((*path, "engine_name"), name, (*path, "name"))


def _network(t: Translation, name: str, node: Node) -> dict[str, Any] | None:
    path: DataPath = ("networks", name)
    t.record(path, node, path)
    network: dict[str, Any] = {}
    driver = node.get("driver")
    if driver is not None and driver.value is not None:
        network["driver"] = scalar_text(driver.value)
        t.record((*path, "driver"), driver, (*path, "driver"))
    options = _string_map(node.get("driver_opts"))
    if options:
        network["driver_opts"] = options
        t.record((*path, "driver_opts"), node.get("driver_opts") or node, (*path, "driver_opts"))
    ipam = node.get("ipam")
    config = ipam.get("config") if ipam is not None else None
    pools = config.elements() if config is not None else []
    if pools:
        first = pools[0]
        for key in ("subnet", "gateway"):
            found = first.get(key)
            if found is not None and found.value is not None:
                network[key] = scalar_text(found.value)
                t.record((*path, key), found, (*path, "ipam", "config", 0, key))
        for index, extra in enumerate(pools[1:], start=1):
            t.warn(
                extra.where,
                (*path, "ipam", "config", index),
                "not supported, ignored: only the first address pool of a network is used",
            )
    internal = node.get("internal")
    if internal is not None and internal.value in (True, "true"):
        network["internal"] = True
        t.record((*path, "internal"), internal, (*path, "internal"))
    labels = _string_map(node.get("labels"))
    if labels:
        network["labels"] = labels
        t.record((*path, "labels"), node.get("labels") or node, (*path, "labels"))
    enable_ipv6 = node.get("enable_ipv6")
    subnet = network.get("subnet")
    if enable_ipv6 is not None and enable_ipv6.value in (True, "true"):
        is_v6 = False
        if isinstance(subnet, str):
            try:
                is_v6 = ipaddress.ip_network(subnet, strict=False).version == 6
            except ValueError:
                is_v6 = False
        if not is_v6:
            t.note(path, "enable_ipv6 without an IPv6 subnet: the network has IPv4 only")
    _external_and_name(t, node, path, network)
    return network or None


def _completed(services: Node) -> frozenset[str]:
    waited: set[str] = set()
    for _name, service in services.items():
        depends_on = service.get("depends_on")
        for dependency, options in depends_on.items() if depends_on is not None else ():
            condition = options.get("condition") if options.is_map else None
            if condition is not None and condition.value == "service_completed_successfully":
                waited.add(dependency)
    return frozenset(waited)


def _active(services: Node, profiles: frozenset[str]) -> frozenset[str]:
    active: set[str] = set()
    for name, service in services.items():
        listed = service.get("profiles")
        names = {scalar_text(p.value) for p in listed.elements()} if listed is not None else set()
        if not names or names & profiles:
            active.add(name)
    return frozenset(active)


def translate_project(
    root: Node,
    *,
    name: str,
    name_node: Node | None,
    lookup: Lookup,
    profiles: frozenset[str],
) -> Translation:
    """The stack data of a merged, canonical Compose project named ``name``."""
    t = Translation(origin=root.where)
    t.data["stack"] = name
    t.record(("stack",), name_node or root, ("name",))
    services = root.get("services") or Node({}, root.where)
    literal = {
        scalar_text(image.value)
        for _name, service in services.items()
        if (image := service.get("image")) is not None
    }
    context = ServiceContext(
        root=root,
        lookup=lookup,
        services=frozenset(n for n, _ in services.items()),
        active=_active(services, profiles),
        completed=_completed(services),
        literal_refs=frozenset(literal),
    )
    containers = {
        service_name: translate_service(t, context, service_name, service)
        for service_name, service in services.items()
    }
    # A service that cannot be a container (no image) is left out, not half-made.
    t.removed.update(name for name, container in containers.items() if "image" not in container)
    containers = {n: c for n, c in containers.items() if n not in t.removed}
    if context.images:
        t.data["images"] = context.images
    for section, make in (("volumes", _volume), ("networks", _network)):
        entries = root.get(section)
        if entries is not None and entries.is_map:
            t.data[section] = {key: make(t, key, node) for key, node in entries.items()}
    t.data["containers"] = containers
    return t
