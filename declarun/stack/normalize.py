"""Turn templated, schema-valid stack data into the typed, immutable ``Stack`` model.

``normalize`` fills every default, expands every short form, reads env files, synthesises an
implicit ``Image`` for each literal reference a container uses and the ``default`` network for
containers that list none, and reports every problem it finds at once as a ``StackError``.
It trusts the shapes the JSON schema guarantees but never crashes on odd values.
"""

from __future__ import annotations

import contextlib
import ipaddress
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from declarun.errors import Problem, SourceLocation, StackError
from declarun.frozen import FrozenDict, freeze
from declarun.stack.model import Build, Container, Image, Network, Stack, Volume
from declarun.stack.normalize_common import FieldPath, Locate, Normalizer, scalar_text
from declarun.stack.normalize_container import DEFAULT_NETWORK, StackRefs, normalize_container

__all__ = ["normalize", "normalize_collecting"]


def _mapping(value: Any) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _build(ctx: Normalizer, raw: Any, path: FieldPath) -> Build | None:
    """A build: a string is the context; the mapping form says everything else."""
    if isinstance(raw, str):
        where = ctx.locate(path, value=True)
        return Build(
            context=ctx.resolve_path(raw),
            location=ctx.locate(path),
            context_location=where,
            dockerfile_location=where,
            target_location=where,
            short_form=True,
        )
    if not isinstance(raw, Mapping):
        return None
    target = raw.get("target")
    context_location = ctx.locate((*path, "context"), value=True)

    def located(key: str) -> SourceLocation:
        return ctx.locate((*path, key), value=True) if key in raw else context_location

    return Build(
        context=ctx.resolve_path(scalar_text(raw.get("context", "."))),
        dockerfile=scalar_text(raw.get("dockerfile") or "Dockerfile"),
        args=ctx.string_map(raw.get("args"), (*path, "args"), "build args"),
        target=None if target is None else scalar_text(target),
        labels=ctx.string_map(raw.get("labels"), (*path, "labels"), "labels"),
        location=ctx.locate(path),
        context_location=context_location,
        dockerfile_location=located("dockerfile"),
        target_location=located("target"),
    )


def _image(ctx: Normalizer, name: str, raw: Mapping[str, Any]) -> Image:
    path: FieldPath = ("images", name)
    ref = raw.get("ref")
    build = _build(ctx, raw.get("build"), (*path, "build"))
    if ref is None and build is None:
        ctx.problem(path, "an image needs a ref to pull or a build to build")
    return Image(
        name=name,
        ref=None if ref is None else scalar_text(ref),
        pull=raw.get("pull", "missing"),
        platform=raw.get("platform"),
        build=build,
        location=ctx.locate(path),
    )


def _external_only(
    ctx: Normalizer, raw: Mapping[str, Any], path: FieldPath, kind: str, managed: tuple[str, ...]
) -> bool:
    """Whether the resource is external; an external one cannot say how to make it."""
    if not raw.get("external", False):
        return False
    for key in managed:
        if raw.get(key) is not None:
            ctx.problem(
                (*path, key),
                f"an external {kind} is used as it is: declarun does not set its {key}",
                hint="remove the field, or remove external: true to let declarun make and own it",
            )
    return True


def _engine_name(raw: Mapping[str, Any]) -> str | None:
    value = raw.get("engine_name")
    return None if value is None else scalar_text(value)


def _volume(ctx: Normalizer, name: str, raw: Mapping[str, Any]) -> Volume:
    path: FieldPath = ("volumes", name)
    external = _external_only(ctx, raw, path, "volume", ("driver", "driver_opts", "labels", "keep"))
    return Volume(
        name=name,
        driver=scalar_text(raw.get("driver") or "local"),
        driver_opts=ctx.string_map(
            raw.get("driver_opts"), (*path, "driver_opts"), "driver options"
        ),
        labels=ctx.string_map(raw.get("labels"), (*path, "labels"), "labels"),
        keep=bool(raw.get("keep", False)),
        external=external,
        engine_name=_engine_name(raw),
        location=ctx.locate(path),
    )


def _network(ctx: Normalizer, name: str, raw: Mapping[str, Any]) -> Network:
    path: FieldPath = ("networks", name)
    external = _external_only(
        ctx,
        raw,
        path,
        "network",
        ("driver", "driver_opts", "subnet", "gateway", "internal", "labels"),
    )
    subnet = gateway = None
    network: ipaddress.IPv4Network | ipaddress.IPv6Network | None = None
    if raw.get("subnet") is not None:
        text = scalar_text(raw["subnet"])
        try:
            network = ipaddress.ip_network(text)
            subnet = str(network)
        except ValueError:
            message, hint = f"{text!r} is not a subnet in CIDR form such as 10.0.0.0/24", None
            with contextlib.suppress(ValueError):
                hint = f"did you mean {str(ipaddress.ip_network(text, strict=False))!r}?"
                message = f"subnet {text!r} has host bits set"
            ctx.problem((*path, "subnet"), message, hint=hint)
    if raw.get("gateway") is not None:
        text = scalar_text(raw["gateway"])
        try:
            address = ipaddress.ip_address(text)
            gateway = str(address)
            if raw.get("subnet") is None:
                ctx.problem((*path, "gateway"), "a gateway needs a subnet")
            elif network is not None and address not in network:
                ctx.problem((*path, "gateway"), f"gateway {gateway} is not in subnet {subnet}")
        except ValueError:
            ctx.problem((*path, "gateway"), f"{text!r} is not an IP address")
    return Network(
        name=name,
        driver=scalar_text(raw.get("driver") or "bridge"),
        driver_opts=ctx.string_map(
            raw.get("driver_opts"), (*path, "driver_opts"), "driver options"
        ),
        subnet=subnet,
        gateway=gateway,
        internal=bool(raw.get("internal", False)),
        labels=ctx.string_map(raw.get("labels"), (*path, "labels"), "labels"),
        external=external,
        engine_name=_engine_name(raw),
        location=ctx.locate(path),
    )


def normalize(
    doc: Mapping[str, Any],
    locate: Locate,
    *,
    base_dir: Path,
    source_file: Path | None = None,
    locate_value: Locate | None = None,
) -> Stack:
    """Build the ``Stack`` model; raises ``StackError`` with every problem found.

    See :func:`normalize_collecting` for the arguments.
    """
    stack, problems = normalize_collecting(
        doc, locate, base_dir=base_dir, source_file=source_file, locate_value=locate_value
    )
    if problems:
        raise StackError(problems)
    return stack


def normalize_collecting(
    doc: Mapping[str, Any],
    locate: Locate,
    *,
    base_dir: Path,
    source_file: Path | None = None,
    locate_value: Locate | None = None,
) -> tuple[Stack, list[Problem]]:
    """Build the ``Stack`` model from templated, schema-valid data.

    ``locate(path)`` gives the source location of a field path such as
    ``("containers", "web", "ports", 0)``; ``base_dir`` anchors relative paths (bind mounts,
    env files, build contexts). Model objects are located at their keys; problems at the
    offending value when ``locate_value`` is given (else at its key). ``source_file`` defaults
    to the file ``locate`` names. Returns the stack with the problems found; where a value had a
    problem the stack holds a default in its place, so later checks can still run on the rest.
    """
    ctx = Normalizer(locate, base_dir, locate_value)
    stack_location = ctx.locate(("stack",))
    images_raw, containers_raw = _mapping(doc.get("images")), _mapping(doc.get("containers"))
    images = {str(n): _image(ctx, str(n), _mapping(raw)) for n, raw in images_raw.items()}
    volumes = {
        str(n): _volume(ctx, str(n), _mapping(raw))
        for n, raw in _mapping(doc.get("volumes")).items()
    }
    networks = {
        str(n): _network(ctx, str(n), _mapping(raw))
        for n, raw in _mapping(doc.get("networks")).items()
    }
    refs = StackRefs(declared=frozenset(images))
    containers: dict[str, Container] = {}
    for name, raw in containers_raw.items():
        containers[str(name)] = normalize_container(ctx, str(name), _mapping(raw), refs)
    images.update(refs.implicit)
    if refs.default_network_used and DEFAULT_NETWORK not in networks:
        networks[DEFAULT_NETWORK] = Network(
            name=DEFAULT_NETWORK, implicit=True, location=stack_location
        )
    stack = Stack(
        name=scalar_text(doc.get("stack")),
        vars=freeze(_mapping(doc.get("vars"))),
        images=FrozenDict(images),
        volumes=FrozenDict(volumes),
        networks=FrozenDict(networks),
        containers=FrozenDict(containers),
        location=stack_location,
        source_file=source_file if source_file is not None else Path(stack_location.file),
    )
    return stack, list(ctx.problems)
