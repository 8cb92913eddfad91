"""The engine actions a plan is made of, through docker-py's low-level API.

Each function does one thing to one object and raises :class:`StepFailed` with a readable
message (and, for containers, a failure report) when the engine refuses. Bodies for
``create`` come ready-made from the planner (Docker Engine API request bodies), so these
functions carry no knowledge of the stack language.

Registry credentials come from ``~/.docker/config.json`` through docker-py's own auth
handling: ``pull`` passes no ``auth_config``, so docker-py builds ``X-Registry-Auth`` itself.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import docker.errors
from docker.utils import parse_repository_tag

from declarun.reconcile.conditions import failure_report, wait_for
from declarun.reconcile.executor import StepContext, StepFailed

__all__ = [
    "create_container",
    "create_network",
    "create_volume",
    "pull_image",
    "remove_container",
    "remove_network",
    "remove_volume",
    "rename_container",
    "restore_quietly",
    "run_once",
    "start_container",
    "stop_container",
]


def _explain(exc: docker.errors.APIError) -> str:
    return str(exc.explanation or exc)


class _PullProgress:
    """Folds a pull's per-layer events into one line: ``3/5 layers, 12.1/40.0 MB``."""

    def __init__(self, ref: str, ctx: StepContext | None) -> None:
        self.ref = ref
        self.ctx = ctx
        self.layers: dict[str, tuple[int, int]] = {}  # id -> (current, total) of the download
        self.done: set[str] = set()

    def feed(self, event: dict[str, Any]) -> None:
        if event.get("error"):
            raise StepFailed(f"pull {self.ref}: {event['error']}")
        layer = event.get("id")
        status = str(event.get("status", ""))
        if not layer or layer == self.ref.rsplit(":", 1)[-1]:
            return
        detail = event.get("progressDetail") or {}
        if status == "Downloading" and detail.get("total"):
            self.layers[layer] = (int(detail.get("current", 0)), int(detail["total"]))
        elif status in ("Pull complete", "Already exists", "Download complete"):
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
    client: Any, ref: str, *, platform: str | None = None, ctx: StepContext | None = None
) -> None:
    """Pull ``ref`` (tag or digest), reporting aggregated layer progress to ``ctx``."""
    repository, tag = parse_repository_tag(ref)
    progress = _PullProgress(ref, ctx)
    try:
        for event in client.api.pull(
            repository, tag=tag or "latest", stream=True, decode=True, platform=platform
        ):
            progress.feed(event)
    except docker.errors.APIError as exc:
        raise StepFailed(f"pull {ref}: {_explain(exc)}") from None


def create_network(client: Any, body: dict[str, Any]) -> None:
    """Create a network from a ``POST /networks/create`` body."""
    ipam = body.get("IPAM")
    try:
        client.api.create_network(
            body["Name"],
            driver=body.get("Driver"),
            options=body.get("Options") or None,
            ipam=ipam,
            check_duplicate=True,
            internal=bool(body.get("Internal", False)),
            labels=body.get("Labels") or None,
            attachable=body.get("Attachable"),
        )
    except docker.errors.APIError as exc:
        raise StepFailed(f"create network {body['Name']}: {_explain(exc)}") from None


def create_volume(client: Any, body: dict[str, Any]) -> None:
    """Create a volume from a ``POST /volumes/create`` body."""
    try:
        client.api.create_volume(
            name=body["Name"],
            driver=body.get("Driver") or "local",
            driver_opts=body.get("DriverOpts") or None,
            labels=body.get("Labels") or None,
        )
    except docker.errors.APIError as exc:
        raise StepFailed(f"create volume {body['Name']}: {_explain(exc)}") from None


def create_container(
    client: Any,
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
        created = client.api.create_container_from_config(config, name=name)
    except docker.errors.APIError as exc:
        raise StepFailed(f"create container {name}: {_explain(exc)}") from None
    try:
        for network, endpoint in later:
            ipam = endpoint.get("IPAMConfig") or {}
            client.api.connect_container_to_network(
                created["Id"],
                network,
                aliases=list(endpoint.get("Aliases") or []) or None,
                ipv4_address=ipam.get("IPv4Address"),
            )
    except docker.errors.APIError as exc:
        with contextlib.suppress(docker.errors.APIError):
            client.api.remove_container(created["Id"], force=True)  # half-made: not left behind
        raise StepFailed(f"connect {name} to its networks: {_explain(exc)}") from None
    return str(created["Id"])


def start_container(client: Any, name: str) -> None:
    """Start ``name``; a refusal comes with the container's failure report."""
    try:
        client.api.start(name)
    except docker.errors.APIError as exc:
        raise StepFailed(f"start {name}: {_explain(exc)}", failure_report(client, name)) from None


def stop_container(client: Any, name: str, grace: timedelta = timedelta(seconds=10)) -> None:
    """Stop ``name``, giving it ``grace`` after the stop signal before it is killed."""
    try:
        client.api.stop(name, timeout=max(0, int(grace.total_seconds())))
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise StepFailed(f"stop {name}: {_explain(exc)}") from None


def remove_container(client: Any, name: str, grace: timedelta | None = None) -> None:
    """Stop (when ``grace`` is given) and remove ``name`` with its anonymous volumes."""
    if grace is not None:
        stop_container(client, name, grace)
    try:
        client.api.remove_container(name, v=True, force=True)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise StepFailed(f"remove container {name}: {_explain(exc)}") from None


def remove_network(client: Any, name: str) -> None:
    """Remove network ``name`` (gone already counts as done)."""
    try:
        client.api.remove_network(name)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise StepFailed(f"remove network {name}: {_explain(exc)}") from None


def remove_volume(client: Any, name: str) -> None:
    """Remove volume ``name`` (gone already counts as done)."""
    try:
        client.api.remove_volume(name)
    except docker.errors.NotFound:
        return
    except docker.errors.APIError as exc:
        raise StepFailed(f"remove volume {name}: {_explain(exc)}") from None


def run_once(client: Any, name: str, *, ctx: StepContext | None = None) -> None:
    """Start the job ``name`` and wait until it exits with code 0 (non-zero fails)."""
    start_container(client, name)
    wait_for(client, name, "completed", report=ctx.update if ctx else None)


def rename_container(client: Any, name: str, new_name: str) -> None:
    """Rename ``name`` to ``new_name``."""
    try:
        client.api.rename(name, new_name)
    except docker.errors.APIError as exc:
        raise StepFailed(f"rename {name} to {new_name}: {_explain(exc)}") from None


def restore_quietly(client: Any, name: str) -> None:
    """Start ``name`` again after a failed replace; best effort, errors are in the report."""
    with contextlib.suppress(docker.errors.APIError):
        client.api.start(name)
