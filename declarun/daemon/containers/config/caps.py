"""Capability names: normalising what users write, and Docker's add/drop arithmetic."""

from __future__ import annotations

from collections.abc import Iterable

from declarun.daemon.containers.config.defaults import ALL_CAPABILITIES, DEFAULT_CAPABILITIES
from declarun.daemon.containers.config.errors import InvalidCreateRequest

__all__ = ["capability_mask", "effective_capabilities", "normalize_capabilities"]

_KNOWN = frozenset(ALL_CAPABILITIES)


def normalize_capabilities(names: Iterable[str]) -> tuple[str, ...]:
    """``net_admin``/``NET_ADMIN``/``CAP_NET_ADMIN`` → ``CAP_NET_ADMIN``; ``ALL`` kept.

    Raises :class:`InvalidCreateRequest` (``unknown capability: "CAP_X"``) for unknown names.
    """
    result: list[str] = []
    for raw in names:
        name = raw.strip().upper()
        if name != "ALL" and not name.startswith("CAP_"):
            name = "CAP_" + name
        if name != "ALL" and name not in _KNOWN:
            raise InvalidCreateRequest(f'unknown capability: "{name}"')
        if name not in result:
            result.append(name)
    return tuple(result)


def effective_capabilities(
    cap_add: Iterable[str],
    cap_drop: Iterable[str],
    *,
    privileged: bool,
    available: frozenset[str] | None = None,
) -> tuple[str, ...]:
    """The container's capability set, the way Docker computes it.

    Privileged gets everything; ``ALL`` in CapAdd means everything but CapDrop; ``ALL`` in
    CapDrop means only CapAdd; otherwise the default set minus CapDrop plus CapAdd.
    ``available`` (the daemon's own bounding set) clamps the result: a process cannot grant
    what it lacks, and runc would fail the start instead.
    """
    adds = normalize_capabilities(cap_add)
    drops = normalize_capabilities(cap_drop)
    if privileged or "ALL" in adds:
        excluded = () if privileged else drops
        caps = [c for c in ALL_CAPABILITIES if c not in excluded]
    elif "ALL" in drops:
        caps = [c for c in adds if c != "ALL"]
    else:
        caps = [c for c in DEFAULT_CAPABILITIES if c not in drops]
        caps += [c for c in adds if c not in caps]
    if available is not None:
        caps = [c for c in caps if c in available]
    return tuple(caps)


def capability_mask(caps: Iterable[str]) -> int:
    """The bit mask of ``caps`` as /proc/<pid>/status shows it (``CapBnd``)."""
    mask = 0
    for name in caps:
        mask |= 1 << ALL_CAPABILITIES.index(name)
    return mask
