"""``/etc/resolv.conf`` for containers, and the host's resolvers for the embedded DNS.

As dockerd does:

* on a user network (embedded DNS) a container gets ``nameserver 127.0.0.11`` with the
  host's (or ``--dns-search``) search domains and ``options ndots:0`` added; the embedded
  server forwards to the host's nameservers, or to ``--dns`` when given;
* otherwise (default ``bridge``, ``none``) it gets the host's nameservers minus loopback
  ones, which would point into the container itself, falling back to Google's public
  resolvers when none is left; ``host`` mode gets the host's file unchanged.

When the host's ``/etc/resolv.conf`` only names systemd-resolved's stub (127.0.0.53),
:func:`host_resolv_conf` reads ``/run/systemd/resolve/resolv.conf`` instead, as dockerd does.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from declarun.daemon.networks.dns import EMBEDDED_DNS_IP

__all__ = [
    "DEFAULT_NAMESERVERS",
    "ResolvConf",
    "container_resolv_conf",
    "host_resolv_conf",
    "parse_resolv_conf",
    "upstreams_of",
]

DEFAULT_NAMESERVERS = ("8.8.8.8", "8.8.4.4")
_SYSTEMD_RESOLVED = Path("/run/systemd/resolve/resolv.conf")


@dataclass(frozen=True)
class ResolvConf:
    """The parts of a resolv.conf that matter: nameservers, search domains, options."""

    nameservers: tuple[str, ...] = ()
    search: tuple[str, ...] = ()
    options: tuple[str, ...] = ()

    def render(self) -> str:
        """The file's text."""
        lines = [f"nameserver {ns}" for ns in self.nameservers]
        if self.search:
            lines.append("search " + " ".join(self.search))
        if self.options:
            lines.append("options " + " ".join(self.options))
        return "\n".join(lines) + "\n"


def parse_resolv_conf(text: str) -> ResolvConf:
    """Read nameservers (valid IPs only), the last ``search``/``domain`` and all options."""
    nameservers: list[str] = []
    search: tuple[str, ...] = ()
    options: list[str] = []
    for raw in text.splitlines():
        parts = raw.split("#", 1)[0].split(";", 1)[0].split()
        if not parts:
            continue
        key, values = parts[0], parts[1:]
        if key == "nameserver" and values:
            try:
                nameservers.append(str(ipaddress.ip_address(values[0].split("%", 1)[0])))
            except ValueError:
                continue
        elif key in ("search", "domain"):
            search = tuple(values)
        elif key == "options":
            options.extend(values)
    return ResolvConf(tuple(nameservers), search, tuple(options))


def host_resolv_conf(path: Path = Path("/etc/resolv.conf")) -> ResolvConf:
    """The host's resolver configuration (empty if unreadable)."""
    try:
        conf = parse_resolv_conf(path.read_text())
    except OSError:
        return ResolvConf()
    if conf.nameservers and all(_is_loopback(ns) for ns in conf.nameservers):
        try:
            resolved = parse_resolv_conf(_SYSTEMD_RESOLVED.read_text())
        except OSError:
            return conf
        if resolved.nameservers:
            return resolved
    return conf


def upstreams_of(conf: ResolvConf) -> tuple[tuple[str, int], ...]:
    """``(address, 53)`` for each nameserver: the embedded DNS's upstreams."""
    return tuple((ns, 53) for ns in conf.nameservers)


def container_resolv_conf(
    host: ResolvConf,
    *,
    embedded: bool,
    dns: Sequence[str] = (),
    dns_search: Sequence[str] = (),
    dns_options: Sequence[str] = (),
) -> str:
    """The text of a container's ``/etc/resolv.conf``.

    ``embedded``: the container is on a user network served by the embedded DNS (``dns``
    then only changes where that server forwards). ``dns``/``dns_search``/``dns_options``
    are ``HostConfig.Dns``/``DnsSearch``/``DnsOptions``.
    """
    search = tuple(dns_search) or host.search
    options = tuple(dns_options) or host.options
    if embedded:
        if not any(o.startswith("ndots:") for o in options):
            options = (*options, "ndots:0")
        return ResolvConf((EMBEDDED_DNS_IP,), search, options).render()
    nameservers = tuple(dns) or tuple(ns for ns in host.nameservers if not _is_loopback(ns))
    return ResolvConf(nameservers or DEFAULT_NAMESERVERS, search, options).render()


def _is_loopback(address: str) -> bool:
    try:
        return ipaddress.ip_address(address).is_loopback
    except ValueError:
        return False
