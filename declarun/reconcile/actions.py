"""The engine actions a plan is made of, through the engine port.

Each function does one thing to one object and raises :class:`StepFailed` with a readable
message (and, for containers, a failure report) when the engine refuses. Bodies for
``create`` come ready-made from the planner (Docker Engine API request bodies), so these
functions carry no knowledge of the stack language. Missing objects are told apart by the
``NotFound`` kind the engine raises, so removing what is already gone counts as done.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from declarun.engine.port import Engine
from declarun.engine.types import PullEvent
from declarun.errdefs import ErrorKind, NotFound
from declarun.errors import ImageReferenceError
from declarun.hostports import port_holder, port_in_message
from declarun.reconcile.conditions import failure_report, wait_for
from declarun.reconcile.executor import StepContext, StepFailed
from declarun.reference import parse_reference

_HELD = re.compile(r"\((held by [^)]*|published by another container)\)")

__all__ = [
    "StartRefused",
    "create_container",
    "create_network",
    "create_volume",
    "pull_image",
    "push_image",
    "remove_container",
    "remove_network",
    "remove_volume",
    "rename_container",
    "restore_quietly",
    "run_once",
    "start_container",
    "stop_container",
]


class _PullProgress:
    """Folds a pull's (or a push's) per-layer events into one line: ``3/5 layers, 12.1/40.0
    MB``."""

    def __init__(self, ref: str, ctx: StepContext | None) -> None:
        self.ref = ref
        self.ctx = ctx
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (current, total) of the download
        self.done: set[str] = set()

    def feed(self, event: PullEvent) -> None:
        layer, status = event.layer, event.status
        if not layer or layer == self.ref.rsplit(":", 1)[-1]:
            return
        if status in ("Downloading", "Pushing") and event.total:
            self.layers[layer] = (event.current or 0, event.total)
        elif status in (
            "Pull complete", "Already exists", "Download complete", "Pushed",
            "Layer already exists",
        ):  # fmt: skip
            self.done.add(layer)
            current, total = self.layers.get(layer, (0, 0))
            self.layers[layer] = (total or current, total)
        elif layer not in self.layers:
            self.layers[layer] = (0, 0)
        if self.ctx is not None:
            self.ctx.update(self.text())

    def text(self) -> str:
        current = sum(c for c, _ in self.layers.values()) / 1e6
        total = sum(t for _, t in self.layers.values()) / 1e6
        size = f", {current:.1f}/{total:.1f} MB" if total else ""
        return f"{len(self.done)}/{len(self.layers)} layers{size}"


def pull_image(
    engine: Engine, ref: str, *, platform: str | None = None, ctx: StepContext | None = None
) -> None:
    """Pull ``ref`` (tag or digest), reporting aggregated layer progress to ``ctx``."""
    progress = _PullProgress(ref, ctx)
    try:
        for event in engine.pull_image(ref, platform=platform):
            progress.feed(event)
    except ErrorKind as exc:
        raise StepFailed(f"pull {ref}: {_missing_tag(ref, str(exc))}") from None


def push_image(engine: Engine, ref: str, *, ctx: StepContext | None = None) -> None:
    """Push the local image ``ref`` to its registry, reporting aggregated layer progress."""
    progress = _PullProgress(ref, ctx)
    try:
        for event in engine.push_image(ref):
            progress.feed(event)
    except ErrorKind as exc:
        raise StepFailed(f"push {ref}: {exc}") from None


def _missing_tag(ref: str, message: str) -> str:
    """A registry's "manifest unknown" for a tag, said as what it means (declarund says it
    already, with the repository's close tags)."""
    if "manifest unknown" not in message or "is not in repository" in message:
        return message
    try:
        parsed = parse_reference(ref)
    except ImageReferenceError:
        return message
    if parsed.tag is None or parsed.digest is not None:
        return message
    return (
        f"the tag '{parsed.tag}' is not in repository {parsed.familiar_name()} (the registry "
        f"answered: {message})"
    )


def create_network(engine: Engine, body: dict[str, Any]) -> None:
    """Create a network from a ``POST /networks/create`` body."""
    try:
        engine.create_network(body)
    except ErrorKind as exc:
        raise StepFailed(f"create network {body['Name']}: {exc}") from None


def create_volume(engine: Engine, body: dict[str, Any]) -> None:
    """Create a volume from a ``POST /volumes/create`` body."""
    try:
        engine.create_volume(body)
    except ErrorKind as exc:
        raise StepFailed(f"create volume {body['Name']}: {exc}") from None


def create_container(
    engine: Engine,
    name: str,
    body: dict[str, Any],
    extra_networks: Sequence[tuple[str, Mapping[str, Any]]] = (),
) -> str:
    """Create container ``name`` from a ``POST /containers/create`` body; returns its id.

    Engines before API 1.44 take one network at create time, so every network after the first
    (in the body or in ``extra_networks``: (network, endpoint config)) is connected afterwards,
    each with its aliases and address.
    """
    config = dict(body)
    networking = dict(config.get("NetworkingConfig") or {})
    endpoints: dict[str, Any] = dict(networking.get("EndpointsConfig") or {})
    later: list[tuple[str, Mapping[str, Any]]] = []
    if len(endpoints) > 1:
        first, *rest = endpoints
        later = [(net, endpoints[net] or {}) for net in rest]
        config["NetworkingConfig"] = {"EndpointsConfig": {first: endpoints[first]}}
    later.extend(extra_networks)
    try:
        created = engine.create_container(name, config)
    except ErrorKind as exc:
        raise StepFailed(f"create container {name}: {exc}") from None
    try:
        for network, endpoint in later:
            ipam = endpoint.get("IPAMConfig") or {}
            engine.connect_network(
                created,
                network,
                aliases=list(endpoint.get("Aliases") or []),
                ipv4_address=ipam.get("IPv4Address"),
            )
    except ErrorKind as exc:
        with contextlib.suppress(ErrorKind):
            engine.remove_container(created, force=True)  # half-made: not left behind
        raise StepFailed(f"connect {name} to its networks: {exc}") from None
    return created


class StartRefused(StepFailed):
    """The engine refused to start a container (it never ran): a port in use, a mount that
    cannot be made, ..."""


def _port_in_use(message: str) -> str | None:
    """A "port in use" refusal told plainly: which port, what holds it, what to do."""
    found = port_in_message(message)
    if found is None:
        return None
    address, port, protocol = found
    held = _HELD.search(message)
    if held is not None:  # declarund says who holds it
        who = f" ({held.group(1)})"
    else:  # a Docker engine on this machine: ask /proc
        holder = port_holder(port, address, protocol)
        who = f" (held by {holder.describe()})" if holder is not None else ""
    shown = f"[{address}]" if ":" in address else address
    return (
        f"host port {shown}:{port}/{protocol} is already in use{who}: stop what holds it, "
        "or publish another host port"
    )


def start_container(engine: Engine, name: str) -> None:
    """Start ``name``; a refusal (:class:`StartRefused`) says plainly why, and comes with the
    container's failure report unless the reason is all there is to say."""
    try:
        engine.start_container(name)
    except ErrorKind as exc:
        plain = _port_in_use(str(exc))
        if plain is not None:
            raise StartRefused(f"start {name}: {plain}") from None
        raise StartRefused(f"start {name}: {exc}", failure_report(engine, name)) from None


def stop_container(engine: Engine, name: str, grace: timedelta = timedelta(seconds=10)) -> None:
    """Stop ``name``, giving it ``grace`` after the stop signal before it is killed."""
    try:
        engine.stop_container(name, timeout=max(0, int(grace.total_seconds())))
    except NotFound:
        return
    except ErrorKind as exc:
        raise StepFailed(f"stop {name}: {exc}") from None


def remove_container(engine: Engine, name: str, grace: timedelta | None = None) -> None:
    """Stop (when ``grace`` is given) and remove ``name`` with its anonymous volumes."""
    if grace is not None:
        stop_container(engine, name, grace)
    try:
        engine.remove_container(name, volumes=True, force=True)
    except NotFound:
        return
    except ErrorKind as exc:
        raise StepFailed(f"remove container {name}: {exc}") from None


def remove_network(engine: Engine, name: str) -> None:
    """Remove network ``name`` (gone already counts as done)."""
    try:
        engine.remove_network(name)
    except NotFound:
        return
    except ErrorKind as exc:
        raise StepFailed(f"remove network {name}: {exc}") from None


def remove_volume(engine: Engine, name: str) -> None:
    """Remove volume ``name`` (gone already counts as done)."""
    try:
        engine.remove_volume(name)
    except NotFound:
        return
    except ErrorKind as exc:
        raise StepFailed(f"remove volume {name}: {exc}") from None


def run_once(engine: Engine, name: str, *, ctx: StepContext | None = None) -> None:
    """Start the job ``name`` and wait until it exits with code 0 (non-zero fails)."""
    start_container(engine, name)
    wait_for(engine, name, "completed", report=ctx.update if ctx else None)


def rename_container(engine: Engine, name: str, new_name: str) -> None:
    """Rename ``name`` to ``new_name``."""
    try:
        engine.rename_container(name, new_name)
    except ErrorKind as exc:
        raise StepFailed(f"rename {name} to {new_name}: {exc}") from None


def restore_quietly(engine: Engine, name: str) -> None:
    """Start ``name`` again after a failed replace; best effort, errors are in the report."""
    with contextlib.suppress(ErrorKind):
        engine.start_container(name)
