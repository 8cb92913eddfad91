"""Observation: the engine's actual state (and the host's input files) as an immutable value.

:func:`observe` is the only I/O in planning. It reads, through docker-py, the containers,
networks and volumes that belong to the stack (by the ``dev.declarun.stack`` label) or whose
name the stack wants (foreign objects in the way), the images the stack refers to, the
engine's platform, and the digests of the host inputs (``plan.inputs``). Everything is kept in
frozen dataclasses, so the diff that follows can be a pure function, and the observed state
has a :meth:`ObservedState.fingerprint` that a saved plan records: an apply of a saved plan
refuses to run when the world's fingerprint is no longer the same.

:meth:`ObservedState.from_data` builds one from plain data, for unit tests and saved fixtures.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, TypeVar

from declarun.engine.port import Engine
from declarun.engine.types import ContainerSummary, PublishedPort
from declarun.errdefs import ErrorKind, NotFound
from declarun.errors import EngineError
from declarun.frozen import FrozenDict, freeze, thaw
from declarun.plan.identity import LABEL_STACK, canonical_json, sha256_text
from declarun.plan.inputs import input_digests
from declarun.stack.model import Stack

__all__ = [
    "ObservedContainer",
    "ObservedImage",
    "ObservedNetwork",
    "ObservedState",
    "ObservedVolume",
    "observe",
]

_EMPTY: FrozenDict[str, str] = FrozenDict()
_NONE: FrozenDict[str, Any] = FrozenDict()
_HEALTH = re.compile(r"\((healthy|unhealthy|health: starting)\)")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedContainer:
    """A container as the engine reports it. ``state`` is Docker's: created, running, paused,
    restarting, removing, exited or dead; ``health`` None when it has no healthcheck."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    image: str = ""  # the reference it was created with
    image_id: str = ""
    state: str = "running"
    exit_code: int | None = None
    health: str | None = None  # starting, healthy, unhealthy
    networks: tuple[str, ...] = ()  # engine names of the networks it is attached to
    volumes: tuple[str, ...] = ()  # engine names of the named volumes it mounts
    ports: tuple[str, ...] = ()  # published ports, "0.0.0.0:8080->80/tcp"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedNetwork:
    """A network as the engine reports it."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    driver: str = "bridge"
    internal: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedVolume:
    """A volume as the engine reports it."""

    name: str
    labels: FrozenDict[str, str] = _EMPTY
    driver: str = "local"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedImage:
    """A local image, found by the reference the stack uses for it."""

    ref: str
    id: str
    repo_digests: tuple[str, ...] = ()
    repo_tags: tuple[str, ...] = ()
    labels: FrozenDict[str, str] = _EMPTY


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedState:
    """What the engine holds for one stack, at one moment. Maps are keyed by engine name
    (images by the reference they were looked up with); an image absent locally is absent."""

    stack: str
    platform: str = "linux/amd64"
    containers: FrozenDict[str, ObservedContainer] = _NONE
    networks: FrozenDict[str, ObservedNetwork] = _NONE
    volumes: FrozenDict[str, ObservedVolume] = _NONE
    images: FrozenDict[str, ObservedImage] = _NONE
    inputs: FrozenDict[str, str] = _EMPTY  # bind:/path, context:/path -> digest

    def owns(self, labels: FrozenDict[str, str]) -> bool:
        """True when an object with these labels belongs to this snapshot's stack."""
        return labels.get(LABEL_STACK) == self.stack

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-able data in a canonical order (what :meth:`from_data` reads)."""

        def listed(mapping: FrozenDict[str, Any]) -> list[dict[str, Any]]:
            return [
                {f.name: thaw(getattr(item, f.name)) for f in fields(item)}
                for _key, item in sorted(mapping.items())
            ]

        return {
            "stack": self.stack,
            "platform": self.platform,
            "containers": listed(self.containers),
            "networks": listed(self.networks),
            "volumes": listed(self.volumes),
            "images": listed(self.images),
            "inputs": dict(sorted(self.inputs.items())),
        }

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the canonical form: equal states give equal fingerprints."""
        return sha256_text(canonical_json(self.to_data()))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ObservedState:
        """Build a snapshot from plain data (lists of objects with the dataclass field names)."""

        def build(kind: type[_T], items: list[dict[str, Any]], key: str) -> FrozenDict[str, _T]:
            made = {item[key]: kind(**{k: freeze(v) for k, v in item.items()}) for item in items}
            return FrozenDict(sorted(made.items()))

        return cls(
            stack=data["stack"],
            platform=data.get("platform", "linux/amd64"),
            containers=build(ObservedContainer, data.get("containers", []), "name"),
            networks=build(ObservedNetwork, data.get("networks", []), "name"),
            volumes=build(ObservedVolume, data.get("volumes", []), "name"),
            images=build(ObservedImage, data.get("images", []), "ref"),
            inputs=FrozenDict(sorted(data.get("inputs", {}).items())),
        )


# -- reading the engine ---------------------------------------------------------------------


def _labels(raw: Mapping[str, str]) -> FrozenDict[str, str]:
    return FrozenDict(sorted(raw.items()))


def _ports(ports: tuple[PublishedPort, ...]) -> tuple[str, ...]:
    published = {
        f"{p.ip}:{p.public_port}->{p.private_port}/{p.protocol}" for p in ports if p.public_port
    }
    return tuple(sorted(published))


def _health(status: str) -> str | None:
    match = _HEALTH.search(status or "")
    if match is None:
        return None
    return "starting" if match.group(1) == "health: starting" else match.group(1)


def _container(engine: Engine, summary: ContainerSummary) -> ObservedContainer:
    exit_code: int | None = None
    health = _health(summary.status)
    if summary.state in ("exited", "dead"):
        # The exit code only appears in a human status text in the list; inspect is exact.
        details = engine.inspect_container(summary.id)
        exit_code = details.state.exit_code
        health = details.state.health or health
    return ObservedContainer(
        id=summary.id,
        name=summary.name,
        labels=summary.labels,
        image=summary.image,
        image_id=summary.image_id,
        state=summary.state,
        exit_code=exit_code,
        health=health,
        networks=summary.networks,
        volumes=summary.volumes,
        ports=_ports(summary.ports),
    )


def _image(engine: Engine, ref: str) -> ObservedImage | None:
    try:
        found = engine.inspect_image(ref)
    except NotFound:
        return None
    return ObservedImage(
        ref=ref,
        id=found.id,
        repo_digests=found.repo_digests,
        repo_tags=found.repo_tags,
        labels=found.labels,
    )


def _read(engine: Engine, stack: Stack | str, lock: Any) -> ObservedState:
    # Imported here: planning from saved data must not need the desired-state machinery.
    from declarun.plan.desired import desired_state

    name = stack if isinstance(stack, str) else stack.name
    platform = engine.version().platform
    wanted: set[tuple[str, str]] = set()
    refs: list[str] = []
    if isinstance(stack, Stack):
        desired = desired_state(stack, lock=lock, platform=platform)
        wanted = set(desired.engine_names)
        refs = sorted({image.ref for image in desired.images.values()})

    def keep(kind: str, object_name: str, labels: Mapping[str, str]) -> bool:
        return labels.get(LABEL_STACK) == name or (kind, object_name) in wanted

    containers = [
        _container(engine, c)
        for c in engine.list_containers()
        if c.name and keep("container", c.name, c.labels)
    ]
    networks = [
        ObservedNetwork(id=n.id, name=n.name, labels=n.labels, driver=n.driver, internal=n.internal)
        for n in engine.list_networks()
        if keep("network", n.name, n.labels)
    ]
    volumes = [
        ObservedVolume(name=v.name, labels=v.labels, driver=v.driver)
        for v in engine.list_volumes()
        if keep("volume", v.name, v.labels)
    ]
    images = [found for ref in refs if (found := _image(engine, ref)) is not None]
    return ObservedState(
        stack=name,
        platform=platform,
        containers=FrozenDict(sorted((c.name, c) for c in containers)),
        networks=FrozenDict(sorted((n.name, n) for n in networks)),
        volumes=FrozenDict(sorted((v.name, v) for v in volumes)),
        images=FrozenDict(sorted((i.ref, i) for i in images)),
        inputs=input_digests(stack) if isinstance(stack, Stack) else FrozenDict(),
    )


def observe(engine: Engine, stack: Stack | str, *, lock: Any = None) -> ObservedState:
    """Read the engine's state for ``stack`` through the engine port.

    Given a :class:`Stack`, also looks for foreign objects holding the names it wants, inspects
    the images it uses (the lock's pinned references when ``lock`` is given) and digests its
    host inputs. Given only a stack name, reads what the stack owns. Engine failures are
    raised as :class:`EngineError`.
    """
    try:
        return _read(engine, stack, lock)
    except ErrorKind as exc:
        raise EngineError(f"cannot read the engine's state: {exc}") from exc
