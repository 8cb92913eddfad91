"""Who holds a host port: the process listening on it, found through ``/proc``.

A port that cannot be published is only half an answer; the other half is what holds it.
Linux lists every socket of the network namespace in ``/proc/net/{tcp,tcp6,udp,udp6}`` (the
local address, the state, the inode) and every process's open sockets as ``/proc/PID/fd/*``
links to ``socket:[INODE]``; joining the two names the process. Reading another user's
``fd`` directory needs root; what cannot be read is simply not found.

A shared leaf: declarund's network service and the client (for a Docker engine on the same
machine) both use it.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass
from pathlib import Path

__all__ = ["PortHolder", "port_holder", "port_in_message"]

_LISTEN = "0A"  # TCP_LISTEN in /proc/net/tcp's st column
_PROC = Path("/proc")
# "Bind for 0.0.0.0:8080 failed" (dockerd, declarund) and "listen tcp4 127.0.0.1:8080: bind"
# (dockerd's userland proxy).
_IN_MESSAGE = re.compile(
    r"(?:Bind for |listen (?P<proto>tcp|udp)[46]? )"
    r"(?:\[(?P<ip6>[0-9a-fA-F:.]*)\]|(?P<ip4>[0-9.]*)):(?P<port>\d+)"
)


@dataclass(frozen=True)
class PortHolder:
    """The process holding a port."""

    pid: int
    command: str  # its command line, shortened

    def describe(self) -> str:
        """``pid 4242: python3 -m http.server 8080``."""
        return f"pid {self.pid}: {self.command}"


def port_in_message(message: str) -> tuple[str, int, str] | None:
    """(host address, port, protocol) an engine's "port in use" message names, or None."""
    if "already allocated" not in message and "address already in use" not in message:
        return None
    match = _IN_MESSAGE.search(message)
    if match is None:
        return None
    address = match.group("ip6") or match.group("ip4") or "0.0.0.0"
    return address, int(match.group("port")), match.group("proto") or "tcp"


def _address(hex_address: str) -> str:
    """``0100007F`` → ``127.0.0.1`` (the kernel writes addresses in host byte order)."""
    raw = bytes.fromhex(hex_address)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
    address = ipaddress.IPv6Address(words)
    return str(address.ipv4_mapped or address)


def _inodes(port: int, host_ip: str, protocol: str) -> set[str]:
    found: set[str] = set()
    wildcard = host_ip in ("", "0.0.0.0", "::")
    for table in (f"{protocol}", f"{protocol}6"):
        try:
            lines = (_PROC / "net" / table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) < 10:
                continue
            local_hex, state, inode = fields[1], fields[3], fields[9]
            address_hex, _, port_hex = local_hex.partition(":")
            if int(port_hex, 16) != port or (protocol == "tcp" and state != _LISTEN):
                continue
            address = _address(address_hex)
            if wildcard or address in (host_ip, "0.0.0.0", "::") or host_ip == address:
                found.add(inode)
    return found


def _command(pid: int) -> str:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return "?"
    text = " ".join(raw.replace(b"\0", b" ").decode(errors="replace").split()) or "?"
    return text if len(text) <= 80 else text[:77] + "..."


def port_holder(port: int, host_ip: str = "0.0.0.0", protocol: str = "tcp") -> PortHolder | None:
    """The process listening on ``host_ip:port`` (any address for ``0.0.0.0``), or None when
    there is none or it cannot be seen."""
    wanted = {f"socket:[{inode}]" for inode in _inodes(port, host_ip, protocol)}
    if not wanted:
        return None
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            descriptors = os.listdir(entry / "fd")
        except OSError:
            continue
        for descriptor in descriptors:
            try:
                target = os.readlink(entry / "fd" / descriptor)
            except OSError:
                continue
            if target in wanted:
                pid = int(entry.name)
                return PortHolder(pid, _command(pid))
    return None
