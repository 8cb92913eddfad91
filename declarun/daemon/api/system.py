"""The System API area: ``/_ping``, ``/version``, ``/info`` and ``/events``.

Shapes follow the Swagger definitions ``SystemVersion``, ``SystemInfo`` and
``EventMessage``; values are the host's real ones (see :mod:`declarun.daemon.sysinfo`).
What ``/info`` counts comes from an :class:`Inventory` (the daemon's services).
"""

from __future__ import annotations

import asyncio
import logging
import os
import platform
import time
from collections.abc import Iterable
from datetime import datetime
from typing import Any, Protocol

from aiohttp import web

from declarun import __version__
from declarun.daemon import sysinfo
from declarun.daemon.api.apiversion import API_VERSION, MIN_API_VERSION
from declarun.daemon.api.event_filter import ACCEPTED_FILTERS, event_matcher
from declarun.daemon.api.http import json_response, start_json_stream, write_json_line
from declarun.daemon.config import DaemonConfig
from declarun.daemon.containers.lifecycle.service import ContainerCounts
from declarun.daemon.events import Event, EventBus
from declarun.daemon.filters import parse_filters, parse_time
from declarun.errdefs import InvalidArgument

__all__ = ["Inventory", "SystemApi", "routes"]

log = logging.getLogger("declarun.daemon.api.system")

PLATFORM_NAME = "declarun"
# Advertised builder: the classic one, since declarund serves no BuildKit session.
BUILDER_VERSION = "1"
INDEX_SERVER = "https://index.docker.io/v1/"
# Registries dockerd always treats as insecure (plain HTTP allowed).
_LOOPBACK_CIDRS = ["::1/128", "127.0.0.0/8"]


class Inventory(Protocol):
    """What ``/info`` counts; each call must be quick and must not block."""

    def container_counts(self) -> ContainerCounts:
        """Containers by state."""
        ...

    def image_count(self) -> int:
        """Images stored."""
        ...

    @property
    def storage_driver(self) -> str:
        """The storage driver name (``overlay2`` or ``vfs``)."""
        ...


def routes(
    config: DaemonConfig, engine_id: str, events: EventBus, inventory: Inventory
) -> Iterable[web.RouteDef]:
    """The System area's routes."""
    api = SystemApi(config, engine_id, events, inventory)
    return [
        web.get("/_ping", api.ping),  # GET also answers HEAD
        web.get("/version", api.version),
        web.get("/info", api.info),
        web.get("/events", api.events),
    ]


class SystemApi:
    """Handlers of the System area."""

    def __init__(
        self, config: DaemonConfig, engine_id: str, events: EventBus, inventory: Inventory
    ) -> None:
        self.config = config
        self.engine_id = engine_id
        self.bus = events
        self.inventory = inventory

    async def ping(self, request: web.Request) -> web.StreamResponse:
        """``GET/HEAD /_ping``: "OK" and the headers the docker CLI negotiates with."""
        headers = {
            "Builder-Version": BUILDER_VERSION,
            "Swarm": "inactive",
            "Cache-Control": "no-cache, no-store, must-revalidate",
            "Pragma": "no-cache",
        }
        body = b"" if request.method == "HEAD" else b"OK"
        return web.Response(body=body, headers=headers, content_type="text/plain", charset="utf-8")

    async def version(self, request: web.Request) -> web.StreamResponse:
        """``GET /version`` (Swagger ``SystemVersion``)."""
        return json_response(await asyncio.to_thread(self.version_document))

    async def info(self, request: web.Request) -> web.StreamResponse:
        """``GET /info`` (Swagger ``SystemInfo``)."""
        return json_response(await asyncio.to_thread(self.info_document))

    def version_document(self) -> dict[str, Any]:
        """The ``/version`` body; reads host facts, so call it off the event loop."""
        runtime = self.config.runtime
        _path, runtime_version, runtime_commit = sysinfo.runtime_info(runtime)
        engine_details = {
            "ApiVersion": API_VERSION,
            "Arch": sysinfo.go_arch(),
            "BuildTime": "",
            "Experimental": "false",
            "GitCommit": "",
            "GoVersion": _python_version(),
            "KernelVersion": sysinfo.kernel_version(),
            "MinAPIVersion": MIN_API_VERSION,
            "Os": "linux",
        }
        components: list[dict[str, Any]] = [
            {"Name": "Engine", "Version": __version__, "Details": engine_details}
        ]
        if runtime_version:
            components.append(
                {
                    "Name": runtime,
                    "Version": runtime_version,
                    "Details": {"GitCommit": runtime_commit},
                }
            )
        return {
            "Platform": {"Name": PLATFORM_NAME},
            "Components": components,
            "Version": __version__,
            "ApiVersion": API_VERSION,
            "MinAPIVersion": MIN_API_VERSION,
            "GitCommit": "",
            "GoVersion": _python_version(),
            "Os": "linux",
            "Arch": sysinfo.go_arch(),
            "KernelVersion": sysinfo.kernel_version(),
            "BuildTime": "",
        }

    def info_document(self) -> dict[str, Any]:
        """The ``/info`` body; reads host facts, so call it off the event loop."""
        config, inventory = self.config, self.inventory
        counts = inventory.container_counts()
        cgroups = sysinfo.cgroup_features()
        release = sysinfo.os_release()
        _path, _version, runtime_commit = sysinfo.runtime_info(config.runtime)
        return {
            "ID": self.engine_id,
            "Containers": counts.total,
            "ContainersRunning": counts.running,
            "ContainersPaused": counts.paused,
            "ContainersStopped": counts.stopped,
            "Images": inventory.image_count(),
            "Driver": inventory.storage_driver,
            "DriverStatus": [["Backing Filesystem", sysinfo.backing_filesystem(config.data_root)]],
            "DockerRootDir": str(config.data_root),
            "Plugins": {
                "Volume": ["local"],
                "Network": ["bridge", "host", "null"],
                "Authorization": [],
                "Log": ["json-file"],
            },
            "MemoryLimit": cgroups.memory,
            "SwapLimit": cgroups.swap,
            "KernelMemory": False,  # dropped in API 1.42; 1.41 clients still read it
            "KernelMemoryTCP": cgroups.kernel_memory_tcp,
            "CpuCfsPeriod": cgroups.cpu_cfs,
            "CpuCfsQuota": cgroups.cpu_cfs,
            "CPUShares": cgroups.cpu_shares,
            "CPUSet": cgroups.cpuset,
            "PidsLimit": cgroups.pids,
            "OomKillDisable": cgroups.oom_kill_disable,
            "IPv4Forwarding": sysinfo.read_flag("/proc/sys/net/ipv4/ip_forward"),
            "BridgeNfIptables": sysinfo.read_flag("/proc/sys/net/bridge/bridge-nf-call-iptables"),
            "BridgeNfIp6tables": sysinfo.read_flag("/proc/sys/net/bridge/bridge-nf-call-ip6tables"),
            "Debug": config.log_level == "debug",
            "NFd": _open_fds(),
            # No goroutines here: the nearest equivalent is the number of threads.
            "NGoroutines": _thread_count(),
            "SystemTime": datetime.now().astimezone().isoformat(),
            "LoggingDriver": "json-file",
            "CgroupDriver": "cgroupfs",
            "CgroupVersion": cgroups.version,
            "NEventsListener": self.bus.subscriber_count,
            "KernelVersion": sysinfo.kernel_version(),
            "OperatingSystem": release.pretty_name,
            "OSVersion": release.version_id,
            "OSType": "linux",
            "Architecture": platform.machine(),
            "NCPU": sysinfo.cpu_count(),
            "MemTotal": sysinfo.mem_total(),
            "IndexServerAddress": INDEX_SERVER,
            "RegistryConfig": self.registry_config(),
            "GenericResources": [],
            "HttpProxy": os.environ.get("HTTP_PROXY", os.environ.get("http_proxy", "")),
            "HttpsProxy": os.environ.get("HTTPS_PROXY", os.environ.get("https_proxy", "")),
            "NoProxy": os.environ.get("NO_PROXY", os.environ.get("no_proxy", "")),
            "Name": sysinfo.hostname(),
            "Labels": [],
            "ExperimentalBuild": False,
            "ServerVersion": __version__,
            "Runtimes": _runtimes(config.runtime),
            "DefaultRuntime": config.runtime,
            "Swarm": {
                "NodeID": "",
                "NodeAddr": "",
                "LocalNodeState": "inactive",
                "ControlAvailable": False,
                "Error": "",
                "RemoteManagers": None,
            },
            "LiveRestoreEnabled": False,
            "Isolation": "",
            "InitBinary": "",
            "ContainerdCommit": {"ID": "", "Expected": ""},
            "RuncCommit": {"ID": runtime_commit, "Expected": runtime_commit},
            "InitCommit": {"ID": "", "Expected": ""},
            "SecurityOptions": [],
            "DefaultAddressPools": [],
            "Warnings": [],
            "CDISpecDirs": [],
        }

    def registry_config(self) -> dict[str, Any]:
        """``RegistryConfig``: mirrors for Docker Hub, and which registries are insecure."""
        config = self.config
        mirrors = list(config.registry_mirrors)
        cidrs = list(_LOOPBACK_CIDRS)
        index_configs: dict[str, Any] = {
            "docker.io": {"Name": "docker.io", "Mirrors": mirrors, "Secure": True, "Official": True}
        }
        for registry in config.insecure_registries:
            if "/" in registry:
                if registry not in cidrs:
                    cidrs.append(registry)
            else:
                index_configs[registry] = {
                    "Name": registry,
                    "Mirrors": [],
                    "Secure": False,
                    "Official": False,
                }
        return {
            "AllowNondistributableArtifactsCIDRs": [],
            "AllowNondistributableArtifactsHostnames": [],
            "InsecureRegistryCIDRs": cidrs,
            "IndexConfigs": index_configs,
            "Mirrors": mirrors,
        }

    async def events(self, request: web.Request) -> web.StreamResponse:
        """``GET /events``: replay from ``since``, then stream live events until ``until``."""
        since = parse_time(request.query.get("since"), "since")
        until = parse_time(request.query.get("until"), "until")
        if since is not None and until is not None and until < since:
            raise InvalidArgument(
                f"`since` time ({request.query['since']}) cannot be after "
                f"`until` time ({request.query['until']})"
            )
        filters = parse_filters(request.query.get("filters"))
        filters.validate(ACCEPTED_FILTERS)
        include = event_matcher(filters)

        def wanted(event_time: int) -> bool:
            return (since is None or event_time >= since) and (until is None or event_time <= until)

        with self.bus.subscribe(since, until, include) as subscription:
            response = await start_json_stream(request)
            for past in subscription.backlog:
                await write_json_line(response, past.to_json())
            while True:
                timeout = None
                if until is not None:
                    timeout = (until - time.time_ns()) / 1e9
                    if timeout <= 0:
                        break
                try:
                    live: Event | None = await asyncio.wait_for(subscription.next(), timeout)
                except TimeoutError:
                    break
                if live is None:
                    break
                if until is not None and live.time_nano > until:
                    break
                if wanted(live.time_nano):
                    await write_json_line(response, live.to_json())
        await response.write_eof()
        return response


def _python_version() -> str:
    return f"python{platform.python_version()}"


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def _thread_count() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("Threads:"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 1


def _runtimes(default: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for name in ("runc", "crun"):
        path, _version, _commit = sysinfo.runtime_info(name)
        if path or name == default:
            found[name] = {"path": path or name}
    return found
