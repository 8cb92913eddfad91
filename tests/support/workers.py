"""What keeps parallel test workers off each other's host resources.

``make test`` runs the suite in pytest-xdist workers, each a pytest session of its own with its
own engines. The engines' subnets are the one host-wide thing they would otherwise share:
a network's route appears only at its first attachment, so two daemons choosing at the same
moment could both take ``172.18.0.0/16`` and then route each other's traffic. Each worker's
engines therefore draw from address blocks of their own: ``10.{first + worker + 10k}.0.0/16``
for ``k = 0, 1, ...`` (worker ``gwN`` is ``N``; without xdist, 0). The test subnets fixed in
single tests (``10.94``-``10.99``, ``10.123``, ``10.231``, ``172.31``) lie outside every block.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterator

__all__ = ["DECLARUND_BLOCKS", "DOCKERD_BLOCKS", "LAB_BLOCKS", "free_blocks", "worker_index"]

#: The first second octet of each kind of engine's blocks (worker 0's first block).
DECLARUND_BLOCKS = 40
DOCKERD_BLOCKS = 150
LAB_BLOCKS = 200
_WORKERS = 10  # blocks repeat every 10 octets: up to 10 workers
#: Second octets of 10.x subnets that single tests name themselves.
_FIXED_IN_TESTS = frozenset({94, 95, 96, 97, 98, 99, 123, 231})


def worker_index() -> int:
    """This worker's number (``PYTEST_XDIST_WORKER=gw3`` → 3; 0 without xdist)."""
    name = os.environ.get("PYTEST_XDIST_WORKER", "gw0")
    index = int(name.removeprefix("gw") or 0)
    if index >= _WORKERS:
        raise RuntimeError(f"at most {_WORKERS} test workers have address blocks of their own")
    return index


def free_blocks(
    first: int, routes: list[ipaddress.IPv4Network], count: int
) -> Iterator[ipaddress.IPv4Network]:
    """This worker's ``10.x.0.0/16`` blocks from ``first`` on that no host route overlaps."""
    found = 0
    for second in range(first + worker_index(), min(first + 50, 256), _WORKERS):
        block = ipaddress.IPv4Network(f"10.{second}.0.0/16")
        if second not in _FIXED_IN_TESTS and not any(
            block.overlaps(r) for r in routes if r.prefixlen
        ):
            yield block
            found += 1
            if found == count:
                return
