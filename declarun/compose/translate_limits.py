"""How a service runs: its ``healthcheck``, ``restart`` (or ``deploy.restart_policy``),
resources (``deploy.resources.limits``, or ``cpus``, ``mem_limit``, ``pids_limit``) and
replicas (``deploy.replicas`` or ``scale``; written twice, the values must agree, as docker
compose requires)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translate_values import as_argv, as_bool, as_int, as_text
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text

__all__ = [
    "translate_healthcheck",
    "translate_replicas",
    "translate_resources",
    "translate_restart",
]

_RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


def translate_healthcheck(
    t: Translation, node: Node | None, cpath: DataPath
) -> dict[str, Any] | None:
    """The stack language's ``healthcheck`` (None when the service has none)."""
    if node is None or not node.is_map:
        return None
    check: dict[str, Any] = {}
    test = node.get("test")
    if as_bool(t, node.get("disable"), (*cpath, "disable")):
        check["disable"] = True
    elif test is not None:
        check["test"] = as_argv(test)
    for key in ("interval", "timeout", "start_period"):
        found = node.get(key)
        if found is not None and found.value is not None:
            check[key] = found.value
    retries = as_int(t, node.get("retries"), (*cpath, "retries"))
    if retries is not None:
        check["retries"] = retries
    return check


def translate_restart(
    t: Translation, service: Node, cpath: DataPath
) -> tuple[str | None, Node | None]:
    """The restart policy as the stack language writes it, and the node it came from."""
    restart = service.get("restart")
    if restart is not None:
        return scalar_text(restart.value), restart
    deploy = service.get("deploy")
    policy = deploy.get("restart_policy") if deploy is not None else None
    if policy is None or not policy.is_map:
        return None, None
    condition = as_text(policy.get("condition")) or "any"
    name = _RESTART_CONDITIONS.get(condition)
    if name is None:
        t.problem(
            policy.where,
            (*cpath, "deploy", "restart_policy", "condition"),
            f"unknown restart condition {condition!r}; expected none, on-failure or any",
        )
        return None, None
    attempts = as_int(t, policy.get("max_attempts"), (*cpath, "deploy", "restart_policy"))
    if name == "on-failure" and attempts:
        name = f"on-failure:{attempts}"
    return name, policy


def _one_of(
    t: Translation,
    first: tuple[Node | None, DataPath],
    second: tuple[Node | None, DataPath],
    same: Callable[[Any, Any], bool],
) -> Node | None:
    """The node of a setting Compose lets people write in two places; both must agree."""
    (a, a_path), (b, b_path) = first, second
    if a is not None and b is not None and not same(a.value, b.value):
        t.problem(
            b.where,
            b_path,
            f"{b.value!r} differs from {'.'.join(str(p) for p in a_path[2:])}: {a.value!r}",
            "docker compose refuses two different values; keep one",
        )
    return a if a is not None else b


def translate_resources(
    t: Translation, service: Node, spath: DataPath, cpath: DataPath, container: dict[str, Any]
) -> None:
    """Set ``container``'s ``resources`` from the limits the service sets."""
    deploy = service.get("deploy")
    resources = deploy.get("resources") if deploy is not None else None
    limits = resources.get("limits") if resources is not None else None
    limits_path = (*cpath, "deploy", "resources", "limits")

    def limit(key: str) -> Node | None:
        return limits.get(key) if limits is not None else None

    def equal_text(a: Any, b: Any) -> bool:
        return scalar_text(a).strip().lower() == scalar_text(b).strip().lower()

    chosen: dict[str, Any] = {}
    for key, legacy in (("cpus", "cpus"), ("memory", "mem_limit"), ("pids", "pids_limit")):
        node = _one_of(
            t,
            (limit(key), (*limits_path, key)),
            (service.get(legacy), (*cpath, legacy)),
            equal_text,
        )
        if node is None or node.value is None:
            continue
        value: Any = as_int(t, node, (*cpath, legacy)) if key == "pids" else node.value
        if value is None:
            continue
        chosen[key] = value
        from_limits = limit(key) is node
        t.record(
            (*spath, "resources", key),
            node,
            (*limits_path, key) if from_limits else (*cpath, legacy),
        )
    if chosen:
        container["resources"] = chosen
        t.record((*spath, "resources"), limits or service, limits_path if limits else cpath)


def translate_replicas(
    t: Translation, service: Node, spath: DataPath, cpath: DataPath, container: dict[str, Any]
) -> None:
    """Set ``container``'s ``replicas`` from ``deploy.replicas`` or ``scale``."""
    deploy = service.get("deploy")
    node = _one_of(
        t,
        (deploy.get("replicas") if deploy is not None else None, (*cpath, "deploy", "replicas")),
        (service.get("scale"), (*cpath, "scale")),
        lambda a, b: scalar_text(a).strip() == scalar_text(b).strip(),
    )
    replicas = as_int(t, node, cpath)
    if node is None or replicas is None:
        return
    container["replicas"] = replicas
    from_deploy = deploy is not None and deploy.get("replicas") is node
    t.record(
        (*spath, "replicas"),
        node,
        (*cpath, "deploy", "replicas") if from_deploy else (*cpath, "scale"),
    )
    if replicas > 1 and service.get("container_name") is not None:
        t.problem(
            service.at,
            (*cpath, "container_name"),
            f"container_name cannot be used with {replicas} replicas: names must be unique",
        )
