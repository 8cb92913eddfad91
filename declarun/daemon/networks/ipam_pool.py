"""Automatic subnets for networks created without one, from Docker's default pools.

Docker's defaults: ``172.17.0.0/16`` (the default ``bridge`` network), then
``172.18.0.0/16`` … ``172.31.0.0/16``, then ``192.168.0.0/20``, ``192.168.16.0/20`` …
``192.168.240.0/20``. A candidate is skipped when it overlaps a route of the host (so a
container never shadows a LAN or VPN the host reaches) or a subnet another declarun network
already uses. :func:`allocate_subnet` is pure; :func:`host_routes` is the only I/O.

Addresses within a subnet: :func:`next_free_address` hands them out in rotation, after the
last one handed out (as host-local does), not lowest-first.
"""

from __future__ import annotations

import ipaddress
import itertools
import socket
import struct
from collections.abc import Iterable, Iterator
from pathlib import Path

from declarun.daemon.networks.errors import PoolExhaustedError

__all__ = [
    "DEFAULT_POOLS",
    "AddressPool",
    "allocate_subnet",
    "candidate_subnets",
    "default_gateway",
    "host_routes",
    "next_free_address",
]

AddressPool = tuple[ipaddress.IPv4Network, int]
"""A base network and the prefix length of the subnets carved from it."""

DEFAULT_POOLS: tuple[AddressPool, ...] = (
    (ipaddress.IPv4Network("172.17.0.0/16"), 16),
    (ipaddress.IPv4Network("172.18.0.0/15"), 16),
    (ipaddress.IPv4Network("172.20.0.0/14"), 16),
    (ipaddress.IPv4Network("172.24.0.0/13"), 16),
    (ipaddress.IPv4Network("192.168.0.0/16"), 20),
)


def candidate_subnets(
    pools: Iterable[AddressPool] = DEFAULT_POOLS,
) -> Iterator[ipaddress.IPv4Network]:
    """Every subnet of the pools, in Docker's order."""
    for base, prefix in pools:
        yield from base.subnets(new_prefix=prefix)


def allocate_subnet(
    in_use: Iterable[ipaddress.IPv4Network],
    routes: Iterable[ipaddress.IPv4Network],
    pools: Iterable[AddressPool] = DEFAULT_POOLS,
) -> ipaddress.IPv4Network:
    """The first pool subnet overlapping neither ``in_use`` nor ``routes``.

    A default route (``0.0.0.0/0``) overlaps everything and is therefore ignored, as Docker
    does. Raises :class:`PoolExhaustedError` when nothing is left.
    """
    taken = list(in_use) + [r for r in routes if r.prefixlen > 0]
    for candidate in candidate_subnets(pools):
        if not any(candidate.overlaps(other) for other in taken):
            return candidate
    raise PoolExhaustedError(
        "could not find an available, non-overlapping IPv4 address pool among the defaults "
        "to assign to the network"
    )


def default_gateway(subnet: ipaddress.IPv4Network) -> ipaddress.IPv4Address:
    """The gateway Docker picks when none is given: the subnet's first host address."""
    return subnet[1] if subnet.prefixlen < 32 else subnet[0]


def host_routes(proc_route: Path = Path("/proc/net/route")) -> list[ipaddress.IPv4Network]:
    """The destinations of the host's IPv4 routes (main table), default route included.

    Read from ``/proc/net/route`` rather than ``ip -j route`` to spare a process per network
    creation; the fields are the kernel's little-endian hexadecimal words.
    """
    networks: list[ipaddress.IPv4Network] = []
    try:
        lines = proc_route.read_text().splitlines()[1:]
    except OSError:
        return networks
    for line in lines:
        fields = line.split()
        if len(fields) < 8:
            continue
        try:
            dest = socket.inet_ntoa(struct.pack("<I", int(fields[1], 16)))
            mask = socket.inet_ntoa(struct.pack("<I", int(fields[7], 16)))
            networks.append(ipaddress.IPv4Network(f"{dest}/{mask}", strict=False))
        except (ValueError, struct.error):
            continue
    return networks


def next_free_address(
    pool: ipaddress.IPv4Network,
    taken: Iterable[ipaddress.IPv4Address],
    last: ipaddress.IPv4Address | None = None,
) -> ipaddress.IPv4Address | None:
    """The first usable address of ``pool`` not ``taken``, searching after ``last`` and
    wrapping around; None when every one is taken.

    Why not lowest-first: an address released a moment ago is still in the host's (and the
    peers') neighbour caches with the old interface's MAC, so handing it to the next
    container leaves it unreachable until those entries time out (~30 s). Rotating, as
    host-local does with its ``last_reserved_ip``, reuses an address only after a full turn.
    """
    busy = set(taken)
    first, end = int(pool.network_address) + 1, int(pool.broadcast_address)  # end excluded
    if pool.prefixlen >= 31:
        first, end = int(pool.network_address), int(pool.broadcast_address) + 1
    start = int(last) + 1 if last is not None and first <= int(last) < end else first
    for value in itertools.chain(range(start, end), range(first, start)):
        address = ipaddress.IPv4Address(value)
        if address not in busy:
            return address
    return None
