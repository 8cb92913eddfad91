"""The JSON shapes of containers: inspect (``ContainerInspectResponse``) and list
(``ContainerSummary``), with Docker's human status line (``Up 3 seconds``)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from declarun.daemon.containers.config.imageconfig import process_args
from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.lifecycle.record import ContainerRecord, format_time

__all__ = [
    "human_duration",
    "inspect_document",
    "mounts_document",
    "status_text",
    "summary_document",
]


def human_duration(seconds: float) -> str:
    """Docker's ``units.HumanDuration``: ``Less than a second``, ``3 seconds``, ``About an hour``."""
    s = int(seconds)
    if s < 1:
        return "Less than a second"
    if s == 1:
        return "1 second"
    if s < 60:
        return f"{s} seconds"
    minutes = s // 60
    if minutes == 1:
        return "About a minute"
    if minutes < 60:
        return f"{minutes} minutes"
    hours = round(s / 3600)
    if hours == 1:
        return "About an hour"
    if hours < 48:
        return f"{hours} hours"
    if hours < 24 * 7 * 2:
        return f"{hours // 24} days"
    if hours < 24 * 30 * 2:
        return f"{hours // 24 // 7} weeks"
    if hours < 24 * 365 * 2:
        return f"{hours // 24 // 30} months"
    return f"{hours // 24 // 365} years"


def _health_suffix(rec: ContainerRecord) -> str:
    health = rec.state.health
    status = health.get("Status") if isinstance(health, dict) else None
    if status == "starting":
        return " (health: starting)"
    if status in ("healthy", "unhealthy"):
        return f" ({status})"
    return ""


def status_text(rec: ContainerRecord, now_ns: int | None = None) -> str:
    """The ``Status`` column of ``docker ps``."""
    now = time.time_ns() if now_ns is None else now_ns
    state = rec.state
    if state.restarting:
        ago = human_duration((now - state.finished_at) / 1e9)
        return f"Restarting ({state.exit_code}) {ago} ago"
    if state.running:
        if state.paused:
            return f"Up {human_duration((now - state.started_at) / 1e9)} (Paused)"
        return f"Up {human_duration((now - state.started_at) / 1e9)}{_health_suffix(rec)}"
    if state.removal_in_progress:
        return "Removal In Progress"
    if state.dead:
        return "Dead"
    if state.started_at == 0:
        return "Created"
    if state.finished_at == 0:
        return ""
    return f"Exited ({state.exit_code}) {human_duration((now - state.finished_at) / 1e9)} ago"


def _mount_entry(rec: ContainerRecord, mount: MountSpec) -> dict[str, Any]:
    entry: dict[str, Any] = {"Type": mount.type}
    if mount.type == "volume":
        entry["Name"] = rec.volume_names.get(mount.target, mount.source)
        entry["Source"] = rec.volume_paths.get(mount.target, "")
        entry["Driver"] = mount.volume_driver or "local"
    else:
        entry["Source"] = mount.source
    entry["Destination"] = mount.target
    entry["Mode"] = mount.mode_string() if mount.origin == "Binds" else ""
    entry["RW"] = not mount.read_only
    entry["Propagation"] = mount.propagation if mount.type == "bind" else ""
    return entry


def mounts_document(rec: ContainerRecord) -> list[dict[str, Any]]:
    """``Mounts`` of inspect and list: binds and volumes (tmpfs mounts are not listed)."""
    out = [_mount_entry(rec, m) for m in rec.host_config.mounts if m.type != "tmpfs"]
    covered = {m.target for m in rec.host_config.mounts}
    for target in rec.config.volumes:
        if target not in covered and target in rec.volume_names:
            anon = MountSpec(type="volume", target=target, source=rec.volume_names[target])
            out.append(_mount_entry(rec, anon))
    return out


def _network_settings(rec: ContainerRecord, *, summary: bool) -> dict[str, Any]:
    """Without networking attached: the configured mode with an empty endpoint."""
    mode = rec.host_config.network_mode
    endpoint = {
        "IPAMConfig": None, "Links": None, "Aliases": None, "MacAddress": "",
        "NetworkID": "", "EndpointID": "", "Gateway": "", "IPAddress": "",
        "IPPrefixLen": 0, "IPv6Gateway": "", "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0, "DriverOpts": None, "DNSNames": None,
    }  # fmt: skip
    networks = {mode: endpoint}
    if summary:
        return {"Networks": networks}
    return {
        "Bridge": "",
        "SandboxID": "",
        "SandboxKey": "",
        "Ports": {},
        "HairpinMode": False,
        "LinkLocalIPv6Address": "",
        "LinkLocalIPv6PrefixLen": 0,
        "SecondaryIPAddresses": None,
        "SecondaryIPv6Addresses": None,
        "EndpointID": "",
        "Gateway": "",
        "GlobalIPv6Address": "",
        "GlobalIPv6PrefixLen": 0,
        "IPAddress": "",
        "IPPrefixLen": 0,
        "IPv6Gateway": "",
        "MacAddress": "",
        "Networks": networks,
    }


def _shown_link(spec: str, container_name: str) -> str:
    name, _, alias = spec.partition(":")
    name = name.strip("/")
    return f"/{name}:/{container_name}/{alias.rsplit('/', 1)[-1] or name}"


def _host_config(rec: ContainerRecord) -> dict[str, Any]:
    doc = rec.host_config.to_inspect()
    hc = rec.host_config
    if hc.links and hc.network_mode == "bridge":
        # Legacy links as dockerd shows them (on a user network it keeps none).
        doc["Links"] = [_shown_link(spec, rec.name) for spec in hc.links]
    sent = rec.request.get("HostConfig")
    sent = sent if isinstance(sent, dict) else {}
    for key in ("Dns", "DnsOptions", "DnsSearch", "Devices"):
        # dockerd gives back what was sent: null when the client sent none.
        if sent.get(key) is None:
            doc[key] = None
    if doc.get("MemorySwappiness") == -1:
        doc["MemorySwappiness"] = None  # the CLI's "unset", which dockerd shows as null
    return doc


def inspect_document(
    rec: ContainerRecord,
    *,
    driver: str,
    layer_dir: Path,
    size_rw: int | None = None,
    size_root: int | None = None,
    network_settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """``GET /containers/{id}/json``; ``layer_dir`` holds the writable layer.

    ``network_settings`` comes from the networking (``service.networking.settings``).
    """
    args = list(process_args(rec.config))
    upper = layer_dir
    doc: dict[str, Any] = {
        "Id": rec.id,
        "Created": format_time(rec.created_ns),
        "Path": args[0] if args else "",
        "Args": args[1:],
        "State": rec.state.to_inspect(),
        "Image": rec.image_id,
        "ResolvConfPath": str(rec.etc_file("resolv.conf")),
        "HostnamePath": str(rec.etc_file("hostname")),
        "HostsPath": str(rec.etc_file("hosts")),
        "LogPath": str(rec.layout.log_file),
        "Name": f"/{rec.name}",
        "RestartCount": rec.state.restart_count,
        "Driver": driver,
        "Platform": "linux",
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "ExecIDs": list(rec.exec_ids) or None,
        "HostConfig": _host_config(rec),
        "GraphDriver": {
            "Name": driver,
            "Data": {
                "MergedDir": str(upper / "rootfs"),
                "UpperDir": str(upper / "upper"),
                "WorkDir": str(upper / "work"),
            },
        },
    }
    if size_rw is not None:
        doc["SizeRw"] = size_rw
    if size_root is not None:
        doc["SizeRootFs"] = size_root
    doc["Mounts"] = mounts_document(rec)
    doc["Config"] = rec.config.to_inspect()
    doc["NetworkSettings"] = (
        network_settings if network_settings is not None else _network_settings(rec, summary=False)
    )
    return doc


def summary_document(
    rec: ContainerRecord,
    *,
    size_rw: int | None = None,
    size_root: int | None = None,
    network_settings: dict[str, Any] | None = None,
    ports: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """One entry of ``GET /containers/json`` (``network_settings``/``ports`` from the
    networking when it is attached)."""
    args = process_args(rec.config)
    doc: dict[str, Any] = {
        "Id": rec.id,
        "Names": [f"/{rec.name}"],
        "Image": rec.config.image,
        "ImageID": rec.image_id,
        "Command": " ".join(args),
        "Created": rec.created_ns // 1_000_000_000,
        "Ports": ports if ports is not None else [],
        "Labels": dict(rec.config.labels),
        "State": rec.state.status,
        "Status": status_text(rec),
        "HostConfig": {"NetworkMode": rec.host_config.network_mode},
        "NetworkSettings": (
            network_settings
            if network_settings is not None
            else _network_settings(rec, summary=True)
        ),
        "Mounts": mounts_document(rec),
    }
    if size_rw is not None:
        doc["SizeRw"] = size_rw
    if size_root is not None:
        doc["SizeRootFs"] = size_root
    return doc
