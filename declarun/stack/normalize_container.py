"""Normalise one entry of ``containers:`` into a ``Container``.

Ports, mounts and the environment have modules of their own; this one handles the rest and
resolves ``image:`` to the name of an image in the stack (synthesising implicit images for
literal references). Cross-references between objects are ``check.py``'s business.
"""

from __future__ import annotations

import ipaddress
import re
import shlex
import signal
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from declarun.stack.model import (
    Container,
    Dependency,
    Healthcheck,
    Image,
    NetworkAttachment,
    Placement,
    Resources,
    RestartPolicy,
)
from declarun.stack.normalize_common import FieldPath, Normalizer, scalar_text
from declarun.stack.normalize_env import normalize_env
from declarun.stack.normalize_mounts import normalize_mounts
from declarun.stack.normalize_ports import normalize_ports

__all__ = ["DEFAULT_NETWORK", "StackRefs", "normalize_container"]

#: The network a container joins when it lists none; synthesised unless the stack declares it.
DEFAULT_NETWORK = "default"

_REALTIME_SIGNAL = re.compile(r"SIGRTM(IN|AX)([+-][0-9]+)?")
_HEALTH_KINDS = ("CMD", "CMD-SHELL", "NONE")


@dataclass
class StackRefs:
    """What containers refer to that the stack itself must supply: implicit images, default network."""

    declared: frozenset[str]
    implicit: dict[str, Image] = field(default_factory=dict)
    default_network_used: bool = False

    def resolve(self, ctx: Normalizer, ref: str, path: FieldPath) -> str:
        """The image name for ``image: ref``: a declared name, or an implicit image's name."""
        if ref in self.declared:
            return ref
        if not ref or any(c.isspace() for c in ref):
            ctx.problem(path, f"{ref!r} is neither an image name nor an image reference")
        elif ref not in self.implicit:
            self.implicit[ref] = Image(name=ref, ref=ref, implicit=True, location=ctx.locate(path))
        return ref


def _argv(ctx: Normalizer, value: Any, path: FieldPath) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(scalar_text(v) for v in value)
    try:
        return tuple(shlex.split(scalar_text(value)))
    except ValueError as exc:  # an unclosed quote
        ctx.problem(path, f"cannot split command line: {exc}")
        return None


def _networks(
    ctx: Normalizer, value: Any, path: FieldPath, table: StackRefs
) -> tuple[NetworkAttachment, ...]:
    result: list[NetworkAttachment] = []
    if isinstance(value, list):
        items: list[tuple[str, Any, FieldPath]] = [
            (scalar_text(n), None, (*path, i)) for i, n in enumerate(value)
        ]
    elif isinstance(value, Mapping):
        items = [(str(n), options, (*path, str(n))) for n, options in value.items()]
    else:
        items = []
    for name, options, item_path in items:
        if any(a.network == name for a in result):
            ctx.problem(item_path, f"network {name!r} is listed twice")
            continue
        options = options if isinstance(options, Mapping) else {}
        address = options.get("ipv4_address")
        if address is not None:
            try:
                address = str(ipaddress.IPv4Address(str(address)))
            except ValueError:
                ctx.problem((*item_path, "ipv4_address"), f"{address!r} is not an IPv4 address")
                address = None
        aliases = tuple(scalar_text(a) for a in options.get("aliases") or ())
        result.append(
            NetworkAttachment(
                network=name,
                aliases=aliases,
                ipv4_address=address,
                location=ctx.locate(item_path),
            )
        )
    if not result:
        result.append(NetworkAttachment(network=DEFAULT_NETWORK, location=ctx.locate(path)))
    if any(a.network == DEFAULT_NETWORK for a in result):
        table.default_network_used = True
    return tuple(result)


def _depends_on(ctx: Normalizer, value: Any, path: FieldPath) -> tuple[Dependency, ...]:
    if isinstance(value, list):
        items: list[tuple[str, Any, FieldPath]] = [
            (scalar_text(n), None, (*path, i)) for i, n in enumerate(value)
        ]
    elif isinstance(value, Mapping):
        items = [(str(n), options, (*path, str(n))) for n, options in value.items()]
    else:
        items = []
    result: list[Dependency] = []
    for name, options, item_path in items:
        if any(d.container == name for d in result):
            ctx.problem(item_path, f"dependency on {name!r} is listed twice")
            continue
        # {db: healthy} is short for {db: {condition: healthy}}.
        condition = options.get("condition") if isinstance(options, Mapping) else options
        result.append(
            Dependency(
                container=name, condition=condition or "started", location=ctx.locate(item_path)
            )
        )
    return tuple(result)


def _healthcheck(ctx: Normalizer, value: Any, path: FieldPath) -> Healthcheck | None:
    if not isinstance(value, Mapping):
        return None
    test_value = value.get("test")
    test: tuple[str, ...]
    if value.get("disable", False):
        if test_value is not None:
            ctx.problem((*path, "disable"), "a disabled healthcheck cannot also have a test")
        test = ("NONE",)
    elif test_value is None:
        test = ()  # keep the image's test, override the timings
    elif isinstance(test_value, list):
        test = tuple(scalar_text(v) for v in test_value)
        if not test or test[0] not in _HEALTH_KINDS:
            test = ("CMD", *test)
        elif test[0] == "NONE" and len(test) > 1:
            ctx.problem((*path, "test"), "a NONE test takes no arguments")
        elif test[0] != "NONE" and len(test) == 1:
            ctx.problem((*path, "test"), f"a {test[0]} test needs a command")
    else:
        test = ("CMD-SHELL", scalar_text(test_value))
    return Healthcheck(
        test=test,
        interval=ctx.duration(value.get("interval"), (*path, "interval"), timedelta(seconds=30)),
        timeout=ctx.duration(value.get("timeout"), (*path, "timeout"), timedelta(seconds=30)),
        retries=int(value.get("retries", 3)),
        start_period=ctx.duration(value.get("start_period"), (*path, "start_period"), timedelta()),
        location=ctx.locate(path),
    )


def _restart(ctx: Normalizer, value: Any, path: FieldPath) -> RestartPolicy:
    location = ctx.locate(path) if value is not None else ctx.locate(path[:-1])
    if value is None or value is False:
        return RestartPolicy(location=location)
    name, _, count = scalar_text(value).partition(":")
    if name not in ("no", "on-failure", "always", "unless-stopped"):
        ctx.problem(path, f"unknown restart policy {value!r}")
        return RestartPolicy(location=location)
    if count and (name != "on-failure" or not count.isdigit()):
        ctx.problem(path, f"{value!r}: only on-failure takes a retry count, as on-failure:5")
        return RestartPolicy(location=location)
    return RestartPolicy(name=name, max_retries=int(count or 0), location=location)  # type: ignore[arg-type]


def _resources(ctx: Normalizer, value: Any, path: FieldPath) -> Resources:
    if not isinstance(value, Mapping):
        return Resources(location=ctx.locate(path[:-1]))
    cpus: float | None = None
    if value.get("cpus") is not None:
        try:
            cpus = float(value["cpus"])
            if not 0 < cpus < 1e6:
                raise ValueError
        except (TypeError, ValueError):
            ctx.problem((*path, "cpus"), f"cpus {value['cpus']!r} is not a positive number")
            cpus = None
    pids = value.get("pids")
    return Resources(
        cpus=cpus,
        memory=ctx.size(value.get("memory"), (*path, "memory")),
        pids=None if pids is None else int(pids),
        location=ctx.locate(path),
    )


def _stop_signal(ctx: Normalizer, value: Any, path: FieldPath) -> str | None:
    if value is None:
        return None
    text = scalar_text(value).strip().upper()
    if text.isdigit():
        return text
    if not text.startswith("SIG"):
        text = "SIG" + text
    if text not in signal.Signals.__members__ and not _REALTIME_SIGNAL.fullmatch(text):
        ctx.problem(path, f"unknown signal {value!r}")
        return None
    return text


def _capabilities(value: Any) -> tuple[str, ...]:
    if not value:
        return ()
    caps = (scalar_text(c).strip().upper() for c in value)
    return tuple(c.removeprefix("CAP_") for c in caps)


def _placement(ctx: Normalizer, raw: Any, path: FieldPath) -> Placement | None:
    if raw is None:
        return None
    return Placement(
        # "node.role != manager" and "node.role!=manager" are one constraint.
        constraints=tuple(re.sub(r"\s+", "", str(c)) for c in raw.get("constraints") or ()),
        spread=tuple(str(s) for s in raw.get("spread") or ()),
        max_replicas_per_node=raw.get("max_replicas_per_node"),
        location=ctx.locate(path),
    )


def _extra_hosts(ctx: Normalizer, value: Any, path: FieldPath) -> tuple[str, ...]:
    if isinstance(value, Mapping):
        items = [
            (str(host), scalar_text(address), (*path, str(host))) for host, address in value.items()
        ]
    elif isinstance(value, list):
        items = []
        for index, entry in enumerate(value):
            host, _, address = scalar_text(entry).partition(":")
            items.append((host, address, (*path, index)))
    else:
        return ()
    result: list[str] = []
    for host, address, item_path in items:
        try:
            canonical = str(ipaddress.ip_address(address.strip("[]")))
        except ValueError:
            ctx.problem(item_path, f"{address!r} is not an IP address (for host {host!r})")
            continue
        result.append(f"{host}:{canonical}")
    return tuple(result)


def _dns(ctx: Normalizer, value: Any, path: FieldPath) -> tuple[str, ...]:
    if value is None:
        return ()
    entries = (
        [(scalar_text(value), path)]
        if not isinstance(value, list)
        else [(scalar_text(item), (*path, index)) for index, item in enumerate(value)]
    )
    result: list[str] = []
    for text, item_path in entries:
        try:
            result.append(str(ipaddress.ip_address(text.strip())))
        except ValueError:
            ctx.problem(item_path, f"{text!r} is not an IP address")
    return tuple(result)


def normalize_container(
    ctx: Normalizer, name: str, raw: Mapping[str, Any], table: StackRefs
) -> Container:
    """The container ``containers.<name>``, every field normalised; problems go to ``ctx``."""
    path: FieldPath = ("containers", name)
    env, env_files = normalize_env(ctx, raw.get("env"), raw.get("env_file"), path)
    user = raw.get("user")
    run = raw.get("run", "service")
    restart = _restart(ctx, raw.get("restart"), (*path, "restart"))
    if run == "once" and restart.name in ("always", "unless-stopped"):
        ctx.problem(
            (*path, "restart"),
            f"a run: once container cannot have restart: {restart.name}; it would never finish",
            hint="use restart: on-failure to retry a failed job",
        )
    return Container(
        name=name,
        image=table.resolve(ctx, scalar_text(raw.get("image")), (*path, "image")),
        command=_argv(ctx, raw.get("command"), (*path, "command")),
        entrypoint=_argv(ctx, raw.get("entrypoint"), (*path, "entrypoint")),
        env=env,
        env_files=env_files,
        working_dir=raw.get("working_dir"),
        user=None if user is None else scalar_text(user),
        hostname=raw.get("hostname"),
        ports=normalize_ports(ctx, raw.get("ports"), (*path, "ports")),
        mounts=normalize_mounts(ctx, raw.get("volumes"), raw.get("mounts"), path),
        networks=_networks(ctx, raw.get("networks"), (*path, "networks"), table),
        depends_on=_depends_on(ctx, raw.get("depends_on"), (*path, "depends_on")),
        healthcheck=_healthcheck(ctx, raw.get("healthcheck"), (*path, "healthcheck")),
        restart=restart,
        resources=_resources(ctx, raw.get("resources"), (*path, "resources")),
        labels=ctx.string_map(raw.get("labels"), (*path, "labels"), "labels"),
        stop_signal=_stop_signal(ctx, raw.get("stop_signal"), (*path, "stop_signal")),
        stop_grace_period=ctx.duration(
            raw.get("stop_grace_period"), (*path, "stop_grace_period"), timedelta(seconds=10)
        ),
        read_only=bool(raw.get("read_only", False)),
        cap_add=_capabilities(raw.get("cap_add")),
        cap_drop=_capabilities(raw.get("cap_drop")),
        init=None if raw.get("init") is None else bool(raw["init"]),
        extra_hosts=_extra_hosts(ctx, raw.get("extra_hosts"), (*path, "extra_hosts")),
        dns=_dns(ctx, raw.get("dns"), (*path, "dns")),
        replicas=int(raw.get("replicas", 1)),
        placement=_placement(ctx, raw.get("placement"), (*path, "placement")),
        run=run,
        profiles=tuple(scalar_text(p) for p in raw.get("profiles") or ()),
        location=ctx.locate(path),
    )
