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

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translate_env import translate_environment
from declarun.compose.translate_mounts import translate_mounts
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text

__all__ = ["ServiceContext", "translate_service"]

Lookup = Callable[[str], str | None]

_TRUE = frozenset({"y", "yes", "true", "on"})
_FALSE = frozenset({"n", "no", "false", "off"})
_CONDITIONS = {
    "service_started": "started",
    "service_healthy": "healthy",
    "service_completed_successfully": "completed",
}
_PULL = {"always": "always", "never": "never", "missing": "missing", "if_not_present": "missing"}
_RESTART_CONDITIONS = {"none": "no", "on-failure": "on-failure", "any": "always"}


@dataclass
class ServiceContext:
    """What translating one service needs to know about the others."""

    root: Node
    lookup: Lookup
    services: frozenset[str]  # every service of the project
    active: frozenset[str]  # those the active profiles select
    completed: frozenset[str]  # those others wait for with service_completed_successfully
    literal_refs: frozenset[str]  # image references services use as they stand
    images: dict[str, Any] = field(default_factory=dict)  # declared images, filled here


def _bool(t: Translation, node: Node | None, cpath: DataPath) -> bool | None:
    if node is None or node.value is None:
        return None
    if isinstance(node.value, bool):
        return node.value
    text = scalar_text(node.value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    t.problem(node.where, cpath, f"expected true or false, got {node.value!r}")
    return None


def _int(t: Translation, node: Node | None, cpath: DataPath) -> int | None:
    if node is None or node.value is None:
        return None
    value = node.value
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    text = scalar_text(value).strip()
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if text.lstrip("-").isdigit():
        return int(text)
    t.problem(node.where, cpath, f"expected a whole number, got {value!r}")
    return None


def _text(node: Node | None) -> str | None:
    return None if node is None or node.value is None else scalar_text(node.value)


def _strings(node: Node | None) -> list[str]:
    return [scalar_text(item.value) for item in node.elements()] if node is not None else []


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


def _image_name(name: str, ctx: ServiceContext) -> str:
    """A name for the image a service declares that no literal reference shadows."""
    candidate = name
    while candidate in ctx.literal_refs or candidate in ctx.images:
        candidate += "-image"
    return candidate


def _image(
    t: Translation,
    ctx: ServiceContext,
    name: str,
    service: Node,
    spath: DataPath,
    cpath: DataPath,
    container: dict[str, Any],
) -> None:
    image = service.get("image")
    ref = _text(image)
    build = service.get("build")
    pull_node = service.get("pull_policy")
    platform = service.get("platform")
    pull: str | None = None
    if pull_node is not None:
        written = scalar_text(pull_node.value)
        pull = _PULL.get(written)
        if pull is None:
            pull = "missing"
            t.warn(
                pull_node.where,
                (*cpath, "pull_policy"),
                f"pull_policy {written!r} is not supported: the image is pulled when missing",
            )
    built = _build(t, ctx, build, (*cpath, "build")) if build is not None else None
    if built is None and ref is None:
        t.problem(
            service.at,
            cpath,
            "a service needs an image or a build",
            "add image: with a reference such as busybox:1.36",
        )
        return
    if built is None and pull in (None, "missing") and platform is None:
        assert image is not None and ref is not None
        _put(t, container, spath, (*cpath, "image"), "image", image, ref)
        return
    image_name = _image_name(name, ctx)
    declared: dict[str, Any] = {}
    ipath: DataPath = ("images", image_name)
    t.record(ipath, service, cpath)
    if ref is not None and image is not None:
        declared["ref"] = ref
        t.record((*ipath, "ref"), image, (*cpath, "image"))
    if built is not None and build is not None:
        declared["build"] = built
        t.record((*ipath, "build"), build, (*cpath, "build"))
    if pull not in (None, "missing") and pull_node is not None:
        declared["pull"] = pull
        t.record((*ipath, "pull"), pull_node, (*cpath, "pull_policy"))
    if platform is not None:
        declared["platform"] = scalar_text(platform.value)
        t.record((*ipath, "platform"), platform, (*cpath, "platform"))
    ctx.images[image_name] = declared
    container["image"] = image_name
    t.record((*spath, "image"), image or build or service, (*cpath, "image"))
    if ref is None:
        t.note((*spath, "image"), f"built and tagged {t.data.get('stack', '')}-{image_name}")


def _build(
    t: Translation, ctx: ServiceContext, build: Node, cpath: DataPath
) -> dict[str, Any] | None:
    context = build.get("context")
    text = _text(context) or "."
    if "://" in text or text.startswith("git@"):
        t.warn(
            (context or build).where,
            (*cpath, "context"),
            "a build context from a URL is not supported: the build is left out",
        )
        return None
    built: dict[str, Any] = {"context": text}
    dockerfile = _text(build.get("dockerfile"))
    if dockerfile is not None:
        built["dockerfile"] = dockerfile
    args = build.get("args")
    if args is not None:
        values: dict[str, str] = {}
        for key, value in args.items():
            if value.value is None:
                found = ctx.lookup(key)
                if found is not None:
                    values[key] = found
            else:
                values[key] = scalar_text(value.value)
        if values:
            built["args"] = values
    target = _text(build.get("target"))
    if target is not None:
        built["target"] = target
    return built


def _argv(node: Node | None) -> Any:
    if node is None or node.value is None:
        return None
    if node.is_list:
        return _strings(node)
    return scalar_text(node.value)


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
                text_value = _text(item.get(key))
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
    alias = _text(service.get("container_name"))
    extra = [alias] if alias else []
    entries: dict[str, dict[str, Any] | None] = {}
    nodes: dict[str, Node] = {}
    for network, options in node.items() if node is not None else ():
        chosen: dict[str, Any] = {}
        if options.is_map:
            aliases = _strings(options.get("aliases"))
            if aliases:
                chosen["aliases"] = aliases
            address = _text(options.get("ipv4_address"))
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
            written = _text(options.get("condition"))
            if written is not None:
                condition = _CONDITIONS.get(written, "started")
            required = (
                _bool(t, options.get("required"), (*dependency_cpath, "required")) is not False
            )
            restart = options.get("restart")
            if _bool(t, restart, (*dependency_cpath, "restart")) and restart is not None:
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


def _healthcheck(t: Translation, node: Node | None, cpath: DataPath) -> dict[str, Any] | None:
    if node is None or not node.is_map:
        return None
    check: dict[str, Any] = {}
    test = node.get("test")
    if _bool(t, node.get("disable"), (*cpath, "disable")):
        check["disable"] = True
    elif test is not None:
        check["test"] = _argv(test)
    for key in ("interval", "timeout", "start_period"):
        found = node.get(key)
        if found is not None and found.value is not None:
            check[key] = found.value
    retries = _int(t, node.get("retries"), (*cpath, "retries"))
    if retries is not None:
        check["retries"] = retries
    return check


def _restart(t: Translation, service: Node, cpath: DataPath) -> tuple[str | None, Node | None]:
    restart = service.get("restart")
    if restart is not None:
        return scalar_text(restart.value), restart
    deploy = service.get("deploy")
    policy = deploy.get("restart_policy") if deploy is not None else None
    if policy is None or not policy.is_map:
        return None, None
    condition = _text(policy.get("condition")) or "any"
    name = _RESTART_CONDITIONS.get(condition)
    if name is None:
        t.problem(
            policy.where,
            (*cpath, "deploy", "restart_policy", "condition"),
            f"unknown restart condition {condition!r}; expected none, on-failure or any",
        )
        return None, None
    attempts = _int(t, policy.get("max_attempts"), (*cpath, "deploy", "restart_policy"))
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


def _resources(
    t: Translation, service: Node, spath: DataPath, cpath: DataPath, container: dict[str, Any]
) -> None:
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
        value: Any = _int(t, node, (*cpath, legacy)) if key == "pids" else node.value
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


def translate_service(
    t: Translation, ctx: ServiceContext, name: str, service: Node
) -> dict[str, Any]:
    """The stack language's container for service ``name`` (its problems go to ``t``)."""
    cpath: DataPath = ("services", name)
    spath: DataPath = ("containers", name)
    t.record(spath, service, cpath)
    container: dict[str, Any] = {}
    _image(t, ctx, name, service, spath, cpath, container)
    for key in ("command", "entrypoint"):
        _put(t, container, spath, (*cpath, key), key, service.get(key), _argv(service.get(key)))
    translate_environment(t, service, spath, cpath, ctx.lookup, container)
    for key in ("working_dir", "user", "hostname"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, _text(node))
    ports = service.get("ports")
    _put(t, container, spath, (*cpath, "ports"), "ports", ports, _ports(t, ports, spath, cpath))
    translate_mounts(t, ctx.root, service, spath, cpath, container)
    _networks(t, service, spath, cpath, container)
    _depends_on(t, ctx, service, spath, cpath, container)
    healthcheck = service.get("healthcheck")
    check = _healthcheck(t, healthcheck, (*cpath, "healthcheck"))
    _put(t, container, spath, (*cpath, "healthcheck"), "healthcheck", healthcheck, check)
    restart, restart_node = _restart(t, service, cpath)
    _put(t, container, spath, (*cpath, "restart"), "restart", restart_node, restart)
    _resources(t, service, spath, cpath, container)
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
        _put(t, container, spath, (*cpath, key), key, node, _text(node))
    for key in ("read_only", "init"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, _bool(t, node, (*cpath, key)))
    for key in ("cap_add", "cap_drop"):
        node = service.get(key)
        _put(t, container, spath, (*cpath, key), key, node, _strings(node) or None)
    hosts = service.get("extra_hosts")
    if hosts is not None:
        lines = [
            f"{host}:{scalar_text(address.value)}"
            for host, addresses in hosts.items()
            for address in addresses.elements()
        ]
        _put(t, container, spath, (*cpath, "extra_hosts"), "extra_hosts", hosts, lines or None)
    dns = service.get("dns")
    _put(t, container, spath, (*cpath, "dns"), "dns", dns, _strings(dns) or None)
    _replicas(t, service, spath, cpath, container)
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
        t, container, spath, (*cpath, "profiles"), "profiles", profiles, _strings(profiles) or None
    )
    return container


def _replicas(
    t: Translation, service: Node, spath: DataPath, cpath: DataPath, container: dict[str, Any]
) -> None:
    deploy = service.get("deploy")
    node = _one_of(
        t,
        (deploy.get("replicas") if deploy is not None else None, (*cpath, "deploy", "replicas")),
        (service.get("scale"), (*cpath, "scale")),
        lambda a, b: scalar_text(a).strip() == scalar_text(b).strip(),
    )
    replicas = _int(t, node, cpath)
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
