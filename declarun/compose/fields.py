"""Every field of the Compose Specification and what declarun does with it.

One table, used three ways: loading a Compose file warns (located) about each field written
that declarun does not support or supports differently, so nothing is dropped silently;
``specs/compose.md`` lists the table (a test keeps the two equal, and keeps the table covering
every field of the vendored schema, ``schema/compose-spec.json``); ``convert`` repeats the
warnings as comments.

Paths use ``*`` for a name chosen by the file's author (a service, a network, a variable) and
``[]`` for the items of a list. A field not in the table has the status of its nearest
ancestor that is. Values some of which are unsupported (a volume's ``:z`` mode, a
``pull_policy`` of ``build``) are warned about where they are read, in ``translate``.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

from declarun.compose.nodes import Node
from declarun.errors import Problem
from declarun.stack.load import DataPath, format_path

__all__ = ["FIELDS", "Support", "field_warnings", "support_of", "support_table_markdown"]

Status = Literal["supported", "ignored", "differently", "unsupported"]


@dataclass(frozen=True)
class Support:
    """What declarun does with one Compose field, and a word on how or why."""

    status: Status
    note: str = ""


def _s(note: str = "") -> Support:
    return Support("supported", note)


def _ignored(note: str) -> Support:
    return Support("ignored", note)


def _differently(note: str) -> Support:
    return Support("differently", note)


def _no(note: str) -> Support:
    return Support("unsupported", note)


_SWARM = (
    "a Swarm (docker stack deploy) setting; docker compose does not use it on one engine either"
)
_CPU = "only cpus is modelled (as a limit in CPUs); use cpus or deploy.resources.limits.cpus"
_BUILD = "declarun's builds take context, dockerfile, args and target"
_FILE_MODE = (
    "docker compose ignores it too for file-based secrets and configs: a bind mount keeps the "
    "file's owner and mode"
)

S = "services.*"

FIELDS: dict[str, Support] = {
    "version": _ignored("informational; docker compose ignores it too"),
    "name": _s("the project name, which is the stack's name"),
    "include": _no("other Compose projects are not imported; name the files with -f instead"),
    "services": _s(),
    f"{S}.develop": _no("docker compose watch's file sync; declarun watch re-applies on changes"),
    f"{S}.deploy": _s(),
    f"{S}.deploy.mode": _ignored(_SWARM),
    f"{S}.deploy.endpoint_mode": _ignored(_SWARM),
    f"{S}.deploy.replicas": _s("the container's replicas"),
    f"{S}.deploy.labels": _ignored("labels of a Swarm service; docker compose does not use them"),
    f"{S}.deploy.rollback_config": _ignored(_SWARM),
    f"{S}.deploy.update_config": _ignored(_SWARM),
    f"{S}.deploy.resources": _s(),
    f"{S}.deploy.resources.limits": _s("cpus, memory and pids: the container's resources"),
    f"{S}.deploy.resources.reservations": _no("only limits are set; reservations are not"),
    f"{S}.deploy.restart_policy": _s("when restart is not set"),
    f"{S}.deploy.restart_policy.condition": _s("none: no, on-failure: on-failure, any: always"),
    f"{S}.deploy.restart_policy.delay": _no("Docker's restart policies have no delay"),
    f"{S}.deploy.restart_policy.max_attempts": _s("the on-failure retry count"),
    f"{S}.deploy.restart_policy.window": _no("Docker's restart policies have no window"),
    f"{S}.deploy.placement": _ignored(_SWARM),
    f"{S}.annotations": _no("OCI annotations are not set on containers"),
    f"{S}.attach": _ignored("only decides whether docker compose up streams the logs"),
    f"{S}.build": _s("the service's image is built from it (an image named after the service)"),
    f"{S}.build.context": _s("a directory; a Git or HTTP URL is not supported"),
    f"{S}.build.dockerfile": _s(),
    f"{S}.build.dockerfile_inline": _no("write the Dockerfile to a file"),
    f"{S}.build.entitlements": _no(_BUILD),
    f"{S}.build.args": _s(),
    f"{S}.build.ssh": _no(_BUILD),
    f"{S}.build.labels": _s(),
    f"{S}.build.cache_from": _no(_BUILD),
    f"{S}.build.cache_to": _no(_BUILD),
    f"{S}.build.no_cache": _no(_BUILD),
    f"{S}.build.additional_contexts": _no(_BUILD),
    f"{S}.build.network": _no(_BUILD),
    f"{S}.build.provenance": _no(_BUILD),
    f"{S}.build.sbom": _no(_BUILD),
    f"{S}.build.pull": _no(_BUILD),
    f"{S}.build.target": _s(),
    f"{S}.build.shm_size": _no(_BUILD),
    f"{S}.build.extra_hosts": _no(_BUILD),
    f"{S}.build.isolation": _no(_BUILD),
    f"{S}.build.privileged": _no(_BUILD),
    f"{S}.build.secrets": _no(_BUILD),
    f"{S}.build.tags": _no(_BUILD + "; the image has one tag, image: or <project>-<service>"),
    f"{S}.build.ulimits": _no(_BUILD),
    f"{S}.build.platforms": _no(_BUILD + "; platform: sets the one platform"),
    f"{S}.blkio_config": _no("block I/O limits are not modelled"),
    f"{S}.cap_add": _s(),
    f"{S}.cap_drop": _s(),
    f"{S}.cgroup": _no("the cgroup namespace is the engine's default"),
    f"{S}.cgroup_parent": _no("the cgroup parent is the engine's default"),
    f"{S}.command": _s(),
    f"{S}.configs": _s("a file config is a read-only bind mount at /<name>, as docker compose"),
    f"{S}.configs[].source": _s(),
    f"{S}.configs[].target": _s(),
    f"{S}.configs[].uid": _ignored(_FILE_MODE),
    f"{S}.configs[].gid": _ignored(_FILE_MODE),
    f"{S}.configs[].mode": _ignored(_FILE_MODE),
    f"{S}.container_name": _differently(
        "declarun names the container <project>-<service>; the name becomes a network alias, "
        "so other containers still reach it by that name"
    ),
    f"{S}.cpu_count": _no(_CPU),
    f"{S}.cpu_percent": _no(_CPU),
    f"{S}.cpu_shares": _no(_CPU),
    f"{S}.cpu_quota": _no(_CPU),
    f"{S}.cpu_period": _no(_CPU),
    f"{S}.cpu_rt_period": _no(_CPU),
    f"{S}.cpu_rt_runtime": _no(_CPU),
    f"{S}.cpus": _s("the container's resources.cpus"),
    f"{S}.cpuset": _no(_CPU),
    f"{S}.credential_spec": _no("Windows containers only"),
    f"{S}.depends_on": _s(),
    f"{S}.depends_on.*.restart": _s("false only: declarun does not restart dependants"),
    f"{S}.depends_on.*.required": _s("false: the dependency is dropped when the service is absent"),
    f"{S}.depends_on.*.condition": _s(
        "service_started: started, service_healthy: healthy, "
        "service_completed_successfully: completed (and the dependency runs once)"
    ),
    f"{S}.device_cgroup_rules": _no("device access is not modelled"),
    f"{S}.devices": _no("device access is not modelled"),
    f"{S}.dns": _s(),
    f"{S}.dns_opt": _no("only DNS servers are modelled"),
    f"{S}.dns_search": _no("only DNS servers are modelled"),
    f"{S}.domainname": _no("only hostname is modelled"),
    f"{S}.entrypoint": _s(),
    f"{S}.env_file": _s("read with Compose's rules; referenced when declarun reads it alike"),
    f"{S}.env_file[].path": _s(),
    f"{S}.env_file[].format": _s("raw: values as written"),
    f"{S}.env_file[].required": _s(),
    f"{S}.label_file": _no("write the labels in labels:"),
    f"{S}.environment": _s("a bare KEY takes the value from the environment (or .env)"),
    f"{S}.expose": _no(
        "exposed ports are not set; containers on a common network reach every port anyway"
    ),
    f"{S}.extends": _s("same file or another file, resolved before anything else"),
    f"{S}.extends.service": _s(),
    f"{S}.extends.file": _s(),
    f"{S}.provider": _no("services run by a provider plugin have no equivalent"),
    f"{S}.external_links": _no("only the stack's own containers are reachable by name"),
    f"{S}.extra_hosts": _s(),
    f"{S}.gpus": _no("GPU access is not modelled"),
    f"{S}.group_add": _no("supplementary groups are not modelled"),
    f"{S}.healthcheck": _s(),
    f"{S}.healthcheck.disable": _s(),
    f"{S}.healthcheck.interval": _s(),
    f"{S}.healthcheck.retries": _s(),
    f"{S}.healthcheck.test": _s(),
    f"{S}.healthcheck.timeout": _s(),
    f"{S}.healthcheck.start_period": _s(),
    f"{S}.healthcheck.start_interval": _no("declarun's healthchecks have no start interval"),
    f"{S}.hostname": _s(),
    f"{S}.image": _s(),
    f"{S}.init": _s(),
    f"{S}.ipc": _no("the IPC namespace is the engine's default"),
    f"{S}.isolation": _no("Windows containers only"),
    f"{S}.labels": _s(),
    f"{S}.links": _no("use networks aliases: containers on a network reach each other by name"),
    f"{S}.logging": _no("containers use the engine's default log driver"),
    f"{S}.mac_address": _no("MAC addresses are the engine's choice"),
    f"{S}.mem_limit": _s("the container's resources.memory"),
    f"{S}.mem_reservation": _no("only limits are set; reservations are not"),
    f"{S}.mem_swappiness": _no("swap settings are not modelled"),
    f"{S}.memswap_limit": _no("swap settings are not modelled"),
    f"{S}.network_mode": _no(
        "containers always join the stack's networks (the default network when none is listed)"
    ),
    f"{S}.models": _no("AI models (Docker Model Runner) have no equivalent"),
    f"{S}.networks": _s(),
    f"{S}.networks.*.aliases": _s(),
    f"{S}.networks.*.interface_name": _no("interface names are the engine's choice"),
    f"{S}.networks.*.ipv4_address": _s(),
    f"{S}.networks.*.ipv6_address": _no("only fixed IPv4 addresses are modelled"),
    f"{S}.networks.*.link_local_ips": _no("link-local addresses are not modelled"),
    f"{S}.networks.*.mac_address": _no("MAC addresses are the engine's choice"),
    f"{S}.networks.*.driver_opts": _no("endpoint driver options are not modelled"),
    f"{S}.networks.*.priority": _no("networks are joined in the order listed"),
    f"{S}.networks.*.gw_priority": _no("the first network listed provides the default route"),
    f"{S}.oom_kill_disable": _no("OOM settings are not modelled"),
    f"{S}.oom_score_adj": _no("OOM settings are not modelled"),
    f"{S}.pid": _no("the PID namespace is the engine's default"),
    f"{S}.pids_limit": _s("the container's resources.pids"),
    f"{S}.platform": _s("the platform of the service's image"),
    f"{S}.ports": _s(),
    f"{S}.ports[].name": _ignored("a name for people; docker compose does not use it either"),
    f"{S}.ports[].mode": _ignored(_SWARM),
    f"{S}.ports[].host_ip": _s(),
    f"{S}.ports[].target": _s(),
    f"{S}.ports[].published": _s(),
    f"{S}.ports[].protocol": _s(),
    f"{S}.ports[].app_protocol": _ignored("a hint for people; docker compose does not use it"),
    f"{S}.post_start": _no("lifecycle hooks are not modelled"),
    f"{S}.pre_stop": _no("lifecycle hooks are not modelled"),
    f"{S}.privileged": _no("privileged containers are not modelled; use cap_add"),
    f"{S}.profiles": _s(),
    f"{S}.pull_policy": _s("always, never, missing, if_not_present; not build or refresh periods"),
    f"{S}.pull_refresh_after": _no("use pull_policy: always"),
    f"{S}.read_only": _s(),
    f"{S}.restart": _s(),
    f"{S}.runtime": _no("containers use the engine's default runtime"),
    f"{S}.scale": _s("the container's replicas"),
    f"{S}.security_opt": _no("security options are not modelled"),
    f"{S}.shm_size": _no("/dev/shm keeps the engine's default size"),
    f"{S}.secrets": _s("a file secret is a read-only bind mount at /run/secrets/<name>"),
    f"{S}.secrets[].source": _s(),
    f"{S}.secrets[].target": _s(),
    f"{S}.secrets[].uid": _ignored(_FILE_MODE),
    f"{S}.secrets[].gid": _ignored(_FILE_MODE),
    f"{S}.secrets[].mode": _ignored(_FILE_MODE),
    f"{S}.sysctls": _no("kernel parameters are not modelled"),
    f"{S}.stdin_open": _no("containers run detached, without a terminal or standard input"),
    f"{S}.stop_grace_period": _s(),
    f"{S}.stop_signal": _s(),
    f"{S}.storage_opt": _no("storage driver options are not modelled"),
    f"{S}.tmpfs": _s("size and mode options; others are not supported"),
    f"{S}.tty": _no("containers run detached, without a terminal or standard input"),
    f"{S}.ulimits": _no("resource limits other than cpus, memory and pids are not modelled"),
    f"{S}.use_api_socket": _no("the engine's socket is never mounted implicitly"),
    f"{S}.user": _s(),
    f"{S}.uts": _no("the UTS namespace is the engine's default"),
    f"{S}.userns_mode": _no("the user namespace is the engine's default"),
    f"{S}.volumes": _s("modes ro and rw; z, Z, nocopy and propagation modes are not supported"),
    f"{S}.volumes[].type": _s("volume, bind and tmpfs"),
    f"{S}.volumes[].source": _s(),
    f"{S}.volumes[].target": _s(),
    f"{S}.volumes[].read_only": _s(),
    f"{S}.volumes[].consistency": _ignored("macOS only; no effect on Linux"),
    f"{S}.volumes[].bind": _s(),
    f"{S}.volumes[].bind.propagation": _no("mount propagation is not modelled"),
    f"{S}.volumes[].bind.create_host_path": _s(
        "false only: declarun never creates a missing host path (docker compose does by default)"
    ),
    f"{S}.volumes[].bind.recursive": _no("recursive read-only mounts are not modelled"),
    f"{S}.volumes[].bind.selinux": _no("SELinux relabelling is not modelled"),
    f"{S}.volumes[].volume": _s(),
    f"{S}.volumes[].volume.labels": _no("declare the volume at the top level with its labels"),
    f"{S}.volumes[].volume.nocopy": _no("a new volume is always filled from the image"),
    f"{S}.volumes[].volume.subpath": _no("a volume is always mounted whole"),
    f"{S}.volumes[].tmpfs": _s(),
    f"{S}.volumes[].tmpfs.size": _s(),
    f"{S}.volumes[].tmpfs.mode": _s(),
    f"{S}.volumes[].image": _no("image mounts are not modelled"),
    f"{S}.volumes_from": _no("name each volume in volumes: instead"),
    f"{S}.working_dir": _s(),
    "models": _no("AI models (Docker Model Runner) have no equivalent"),
    "networks": _s(),
    "networks.*.name": _s("the network's engine_name (default <project>-<key>)"),
    "networks.*.driver": _s(),
    "networks.*.driver_opts": _s(),
    "networks.*.ipam": _s(),
    "networks.*.ipam.driver": _no("the default IPAM driver is used"),
    "networks.*.ipam.config": _s("the first entry's subnet and gateway"),
    "networks.*.ipam.config[].subnet": _s(),
    "networks.*.ipam.config[].ip_range": _no("addresses come from the whole subnet"),
    "networks.*.ipam.config[].gateway": _s(),
    "networks.*.ipam.config[].aux_addresses": _no("auxiliary addresses are not modelled"),
    "networks.*.ipam.options": _no("IPAM driver options are not modelled"),
    "networks.*.external": _s(
        "used, never created, changed or removed; a missing one is a plan error"
    ),
    "networks.*.internal": _s(),
    "networks.*.enable_ipv4": _no("networks always have IPv4"),
    "networks.*.enable_ipv6": _differently("IPv6 is enabled when the subnet is an IPv6 one"),
    "networks.*.attachable": _ignored(_SWARM),
    "networks.*.labels": _s(),
    "volumes": _s(),
    "volumes.*.name": _s("the volume's engine_name (default <project>-<key>)"),
    "volumes.*.driver": _s(),
    "volumes.*.driver_opts": _s(),
    "volumes.*.external": _s(
        "used, never created, changed or removed; a missing one is a plan error"
    ),
    "volumes.*.labels": _s(),
    "secrets": _s("file secrets"),
    "secrets.*.name": _ignored("the name in a Swarm secret store; file secrets have none"),
    "secrets.*.environment": _no("declarun cannot write a variable into a file; use file:"),
    "secrets.*.file": _s(),
    "secrets.*.external": _no("secrets from a Swarm secret store have no equivalent"),
    "secrets.*.labels": _ignored(_SWARM),
    "secrets.*.driver": _ignored(_SWARM),
    "secrets.*.driver_opts": _ignored(_SWARM),
    "secrets.*.template_driver": _ignored(_SWARM),
    "configs": _s("file configs"),
    "configs.*.name": _ignored("the name in a Swarm config store; file configs have none"),
    "configs.*.content": _no("declarun cannot write content into a file; use file:"),
    "configs.*.environment": _no("declarun cannot write a variable into a file; use file:"),
    "configs.*.file": _s(),
    "configs.*.external": _no("configs from a Swarm config store have no equivalent"),
    "configs.*.labels": _ignored(_SWARM),
    "configs.*.template_driver": _ignored(_SWARM),
}

#: Collections whose keys are names the author chose (a service, a network, ...).
_NAMED = frozenset(
    {
        "services",
        "networks",
        "volumes",
        "secrets",
        "configs",
        "models",
        f"{S}.depends_on",
        f"{S}.networks",
    }
)


def support_of(path: str) -> Support:
    """The support of a field path (``services.*.ports[].mode``), inherited from an ancestor."""
    probe = path
    while probe:
        found = FIELDS.get(probe)
        if found is not None:
            return found
        cut = max(probe.rfind("."), probe.rfind("["))
        probe = probe[:cut] if cut > 0 else ""
    return Support("supported")


def _children(generic: str) -> bool:
    prefix_dot, prefix_list = generic + ".", generic + "[]"
    return any(key.startswith((prefix_dot, prefix_list)) for key in FIELDS)


def _walk(node: Node, generic: str, path: DataPath) -> Iterator[tuple[str, DataPath, Node]]:
    if isinstance(node.value, dict):
        named = generic in _NAMED
        for key, child in node.value.items():
            if key.startswith("x-"):
                continue
            child_generic = f"{generic}.*" if named else (f"{generic}.{key}" if generic else key)
            if child_generic not in FIELDS and not _children(child_generic):
                continue  # a free-form mapping (labels, environment) or an unknown field
            yield child_generic, (*path, key), child
            if support_of(child_generic).status in ("supported", "differently"):
                yield from _walk(child, child_generic, (*path, key))
    elif isinstance(node.value, list) and _children(generic):
        for index, child in enumerate(node.value):
            yield from _walk(child, f"{generic}[]", (*path, index))


def field_warnings(root: Node) -> list[Problem]:
    """A located warning for each field written that declarun ignores or supports differently
    (fields that have no effect in docker compose either are not warned about)."""
    warnings: list[Problem] = []
    for generic, path, node in _walk(root, "", ()):
        if generic not in FIELDS:
            continue
        support = FIELDS[generic]
        if support.status == "unsupported":
            message = f"not supported, ignored: {support.note}"
        elif support.status == "differently":
            message = f"supported differently: {support.note}"
        else:
            continue
        warnings.append(Problem(node.at, format_path(path), message))
    return warnings


_STATUS_WORDS = {
    "supported": "supported",
    "ignored": "no effect",
    "differently": "differently",
    "unsupported": "**not supported**",
}


def support_table_markdown(paths: list[str]) -> str:
    """The table of ``specs/compose.md``: one row per field path given, in that order."""
    lines = ["| Field | declarun | How / why |", "|---|---|---|"]
    for path in paths:
        support = support_of(path)
        note = support.note.replace("|", "\\|")
        inherited = "" if path in FIELDS else " (as its parent)"
        lines.append(f"| `{path}` | {_STATUS_WORDS[support.status]}{inherited} | {note} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":  # pragma: no cover - a maintainer's tool: regenerate the spec table
    from declarun.compose.schema import schema_field_paths

    sys.stdout.write(support_table_markdown(schema_field_paths()))
