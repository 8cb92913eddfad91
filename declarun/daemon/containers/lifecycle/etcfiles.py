"""The files declarund manages for a container: ``/etc/hosts``, ``/etc/resolv.conf``, ``/etc/hostname``.

They live in the container's bundle directory and are bind-mounted over the image's, as
dockerd does, so the image's own files are never changed and the daemon can rewrite them.

* ``hosts``: the loopback entries Docker writes, the container's hostname on its network
  addresses (on 127.0.1.1 when it has none: ``none`` mode, or before the first start), then
  ``ExtraHosts``. With ``NetworkMode: host`` the host's ``/etc/hosts`` is copied instead.
* ``resolv.conf``: the host's, minus loopback nameservers (they would point into the
  container's own network namespace); Google's public servers when none is left, as
  dockerd does. ``Dns``/``DnsSearch``/``DnsOptions`` replace the respective parts. With
  ``NetworkMode: host`` the host's file is copied unchanged (loopback servers work there).
* ``hostname``: the container's hostname and a newline.

Networking may replace ``resolv.conf`` (``nameserver 127.0.0.11`` on user networks) and
``hosts`` (shared with the other container in ``container:<id>`` mode) through the
:class:`~declarun.daemon.containers.lifecycle.networking.NetworkSetup` given to
:func:`write_etc_files`.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from declarun.daemon.containers.config.hostconfig import HostConfig
from declarun.daemon.containers.lifecycle.networking import NetworkSetup

__all__ = [
    "HOST_HOSTS",
    "HOST_RESOLV_CONF",
    "hosts_content",
    "resolv_conf_content",
    "write_etc_files",
]

HOST_RESOLV_CONF = Path("/etc/resolv.conf")
HOST_HOSTS = Path("/etc/hosts")
# dockerd's defaults when the host has only loopback nameservers.
_FALLBACK_NAMESERVERS = ("8.8.8.8", "8.8.4.4", "2001:4860:4860::8888", "2001:4860:4860::8844")
_DEFAULT_HOSTS = (
    "127.0.0.1\tlocalhost",
    "::1\tlocalhost ip6-localhost ip6-loopback",
    "fe00::0\tip6-localnet",
    "ff00::0\tip6-mcastprefix",
    "ff02::1\tip6-allnodes",
    "ff02::2\tip6-allrouters",
)


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def hosts_content(
    hostname: str,
    host_config: HostConfig,
    host_hosts: str | None = None,
    addresses: tuple[str, ...] = (),
    link_lines: tuple[str, ...] = (),
) -> str:
    """The container's ``/etc/hosts`` (``addresses``: its own network addresses;
    ``link_lines``: the entries of its legacy links)."""
    if host_config.network_mode == "host":
        return host_hosts if host_hosts is not None else _read(HOST_HOSTS)
    lines = list(_DEFAULT_HOSTS)
    if hostname:
        for address in addresses or ("127.0.1.1",):
            lines.append(f"{address}\t{hostname}")
    for entry in host_config.extra_hosts:
        # "name:ip" (ip may hold colons: IPv6); Docker also accepts "name=ip".
        sep = "=" if "=" in entry else ":"
        name, _, address = entry.partition(sep)
        lines.append(f"{address.strip('[]')}\t{name}")
    lines += link_lines
    return "\n".join(lines) + "\n"


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address.split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def resolv_conf_content(host_config: HostConfig, host_resolv: str | None = None) -> str:
    """The container's ``/etc/resolv.conf`` built from the host's file and the DNS options."""
    text = host_resolv if host_resolv is not None else _read(HOST_RESOLV_CONF)
    if host_config.network_mode == "host" and not (
        host_config.dns or host_config.dns_search or host_config.dns_options
    ):
        return text
    nameservers: list[str] = []
    search: list[str] = []
    options: list[str] = []
    for line in text.splitlines():
        fields = line.split()
        if not fields or fields[0].startswith(("#", ";")):
            continue
        if fields[0] == "nameserver" and len(fields) > 1 and not _is_loopback(fields[1]):
            nameservers.append(fields[1])
        elif fields[0] in ("search", "domain"):
            search = fields[1:]
        elif fields[0] == "options":
            options.extend(fields[1:])
    if host_config.dns:
        nameservers = list(host_config.dns)
    if not nameservers:
        nameservers = list(_FALLBACK_NAMESERVERS)
    if host_config.dns_search:
        search = [] if host_config.dns_search == (".",) else list(host_config.dns_search)
    if host_config.dns_options:
        options = list(host_config.dns_options)
    out = [f"nameserver {ns}" for ns in nameservers]
    if search:
        out.append("search " + " ".join(search))
    if options:
        out.append("options " + " ".join(options))
    return "\n".join(out) + "\n"


def _write(path: Path, content: str) -> None:
    temp = path.with_name(f".{path.name}.tmp")
    temp.write_text(content)
    os.chmod(temp, 0o644)
    os.replace(temp, path)


def write_etc_files(
    directory: Path,
    hostname: str,
    host_config: HostConfig,
    network: NetworkSetup | None = None,
) -> dict[str, Path]:
    """Write the three files into ``directory``; returns container path -> host file."""
    network = network or NetworkSetup()
    directory.mkdir(parents=True, exist_ok=True)
    files = {
        "/etc/hostname": directory / "hostname",
        "/etc/hosts": directory / "hosts",
        "/etc/resolv.conf": directory / "resolv.conf",
    }
    _write(files["/etc/hostname"], hostname + "\n")
    hosts = network.hosts
    if hosts is None:
        hosts = hosts_content(
            hostname, host_config, addresses=network.addresses, link_lines=network.link_hosts
        )
    _write(files["/etc/hosts"], hosts)
    resolv = network.resolv_conf
    if resolv is None:
        resolv = resolv_conf_content(host_config)
    _write(files["/etc/resolv.conf"], resolv)
    return files
