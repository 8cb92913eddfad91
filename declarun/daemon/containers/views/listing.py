"""Which containers ``docker ps`` shows and ``docker container prune`` removes.

dockerd's rules (``daemon/list.go``): without ``all`` only running (and restarting)
containers are listed, unless a ``status`` filter is given or a ``limit``; ``name`` is a
regular expression searched in ``/name``; ``ancestor`` is an image reference, ID or ID
prefix; ``before``/``since`` name another container; ``exited`` wants containers that ran
and exited with one of the codes; ``volume`` a volume name or mount point; ``network`` a
network of the container (name or ID prefix); ``publish``/``expose`` a public/private port
(``80``, ``80/udp``, ``8000-8080/tcp``) among the ``Ports`` of the list. The newest
container comes first.

Prune removes stopped containers whose labels match ``label`` and do not match ``label!``,
created before ``until``.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.filters import Filters, parse_time
from declarun.errdefs import InvalidArgument, NotFound

__all__ = [
    "LIST_FILTERS",
    "PRUNE_FILTERS",
    "STATUSES",
    "list_containers",
    "matches",
    "name_matches",
    "prune_keeps",
]

LIST_FILTERS = (
    "ancestor", "before", "exited", "health", "id", "label", "name", "since", "status",
    "volume", "network", "publish", "expose", "is-task",
)  # fmt: skip
PRUNE_FILTERS = ("label", "label!", "until")
STATUSES = ("created", "restarting", "running", "removing", "paused", "exited", "dead")

#: Another container by reference (id, name, prefix); NotFound otherwise.
Lookup = Callable[[str], ContainerRecord]
#: The ID of the image a reference names; NotFound/InvalidArgument when it names none.
ResolveImage = Callable[[str], str]


def name_matches(pattern: str, name: str) -> bool:
    """dockerd matches ``name`` filters as regular expressions against ``/name``."""
    try:
        return re.search(pattern, f"/{name}") is not None
    except re.error:
        return pattern in name


def _ancestor(value: str, rec: ContainerRecord, resolve_image: ResolveImage) -> bool:
    if value in (rec.config.image, rec.image_id) or rec.image_id.removeprefix("sha256:").startswith(
        value.removeprefix("sha256:")
    ):
        return True
    try:
        return resolve_image(value) == rec.image_id
    except (NotFound, InvalidArgument):
        return False


def matches(
    rec: ContainerRecord,
    filters: Filters,
    *,
    show_all: bool,
    lookup: Lookup,
    resolve_image: ResolveImage,
) -> bool:
    """Whether ``docker ps`` with these filters shows ``rec`` (see the module docstring)."""
    state = rec.state
    statuses = filters.get("status")
    # Like dockerd, where a container in a restart back-off still counts as running.
    if not show_all and not state.listed and not statuses:
        return False
    if statuses and state.status not in statuses:
        return False
    if not filters.fuzzy_match("id", rec.id):
        return False
    if "name" in filters and not any(name_matches(v, rec.name) for v in filters.get("name")):
        return False
    if not filters.match_kv_list("label", dict(rec.config.labels)):
        return False
    exited = filters.get("exited")
    if exited:
        if state.listed or state.started_at == 0:
            return False
        if str(state.exit_code) not in exited:
            return False
    if "ancestor" in filters and not any(
        _ancestor(v, rec, resolve_image) for v in filters.get("ancestor")
    ):
        return False
    for key, newer in (("before", False), ("since", True)):
        for ref in filters.get(key):
            other = lookup(ref)
            if newer and rec.created_ns <= other.created_ns:
                return False
            if not newer and rec.created_ns >= other.created_ns:
                return False
    health = filters.get("health")
    if health:
        current = (state.health or {}).get("Status", "none")
        if current not in health:
            return False
    volumes = filters.get("volume")
    if volumes:
        names = set(rec.volume_names.values()) | {m.target for m in rec.host_config.mounts}
        names |= {m.source for m in rec.host_config.mounts}
        if not names & volumes:
            return False
    return True


def list_containers(
    service: ContainerService, filters: Filters, *, show_all: bool, limit: int
) -> list[ContainerRecord]:
    """The containers ``docker ps`` shows, newest first (``limit`` > 0: at most that many)."""
    filters.validate(LIST_FILTERS)
    for status in filters.get("status"):
        if status not in STATUSES:
            raise InvalidArgument(f"invalid filter 'status={status}'")
    published, exposed = _ports_filter(filters, "publish"), _ports_filter(filters, "expose")
    records = [
        rec
        for rec in reversed(service.list())
        if matches(
            rec,
            filters,
            show_all=show_all or limit > 0,
            lookup=service.get,
            resolve_image=lambda ref: service.images.resolve(ref).id,
        )
        and _on_networks(service, rec, filters.get("network"))
        and _has_ports(service, rec, published, exposed)
    ]
    return records[:limit] if limit > 0 else records


def _ports_filter(filters: Filters, key: str) -> set[str]:
    """``publish``/``expose`` values as ``port/proto`` keys, ranges expanded (dockerd's
    ``nat.ParsePortSpecs`` reading: ``80`` is ``80/tcp``)."""
    out: set[str] = set()
    for value in filters.get(key):
        ports, _, proto = value.partition("/")
        first, _, last = ports.partition("-")
        try:
            low, high = int(first), int(last or first)
        except ValueError:
            raise InvalidArgument(f"invalid port '{value}' in filter '{key}'") from None
        if not 0 < low <= high <= 65535:
            raise InvalidArgument(f"invalid port '{value}' in filter '{key}'")
        out |= {f"{port}/{proto or 'tcp'}" for port in range(low, high + 1)}
    return out


def _on_networks(service: ContainerService, rec: ContainerRecord, wanted: frozenset[str]) -> bool:
    """The ``network`` filter: a network of the container by name or network ID prefix."""
    if not wanted:
        return True
    networking = service.networking
    if networking is None:
        return False
    networks = networking.settings(rec, summary=True).get("Networks") or {}
    for value in wanted:
        if value in networks:
            return True
        if any(str(ep.get("NetworkID", "")).startswith(value) for ep in networks.values()):
            return True
    return False


def _has_ports(
    service: ContainerService, rec: ContainerRecord, published: set[str], exposed: set[str]
) -> bool:
    """``publish``/``expose``: a port of the container's ``Ports`` with that public or
    private port (dockerd matches the list's ``Ports`` the same way)."""
    if not published and not exposed:
        return True
    networking = service.networking
    ports = networking.port_summary(rec) if networking is not None else []
    for port in ports:
        proto = port.get("Type", "tcp")
        if f"{port.get('PublicPort', 0)}/{proto}" in published:
            return True
        if f"{port.get('PrivatePort', 0)}/{proto}" in exposed:
            return True
    return False


def prune_keeps(filters: Filters) -> Callable[[ContainerRecord], bool]:
    """The prune policy: a predicate true for the stopped containers prune must keep."""
    filters.validate(PRUNE_FILTERS)
    until_ns: int | None = None
    for value in filters.get("until"):
        until_ns = parse_time(value, "until")
    negated = filters.get("label!")

    def keep(rec: ContainerRecord) -> bool:
        labels = dict(rec.config.labels)
        if not filters.match_kv_list("label", labels):
            return True
        if negated and Filters({"label": negated}).match_kv_list("label", labels):
            return True
        return until_ns is not None and rec.created_ns >= until_ns

    return keep
