"""The parts of the engine's request bodies that a container (``plan.desired``) and a Swarm
service (``plan.swarm_desired``) write alike: the labels of a container's definition, its
health check, a tmpfs mount's options, and a network's driver options and address pool.

What differs between the two (restart policies, resource limits, mounts of volumes and
binds, ports, the network's driver) stays with each; ``specs/scale-out.md`` has the mapping.
"""

from __future__ import annotations

from typing import Any

from declarun.plan.identity import LABEL_PROFILES, ResourceKind, ownership_labels
from declarun.plan.inputs import DesiredInput
from declarun.stack.model import Container, Healthcheck, Mount, Network

__all__ = ["add_network_options", "definition_labels", "healthcheck_body", "tmpfs_options"]

_NS = 1_000_000_000


def definition_labels(
    stack: str,
    kind: ResourceKind,
    container: Container,
    config: Any,
    inputs: tuple[DesiredInput, ...],
) -> dict[str, str]:
    """The labels of the object (``kind``: a container, a service) made from ``container``:
    the stack's own, the ownership marks recording ``config``, the digest of each input and,
    when it has some, its profiles."""
    labels = {
        **container.labels,
        **ownership_labels(stack, kind, container.name, config),
    }
    labels.update({item.label: item.digest for item in inputs})
    if container.profiles:
        labels[LABEL_PROFILES] = ",".join(container.profiles)
    return labels


def healthcheck_body(check: Healthcheck) -> dict[str, Any]:
    """A health check as the Engine API takes it (durations in nanoseconds)."""
    return {
        "Test": list(check.test),
        "Interval": round(check.interval.total_seconds() * _NS),
        "Timeout": round(check.timeout.total_seconds() * _NS),
        "Retries": check.retries,
        "StartPeriod": round(check.start_period.total_seconds() * _NS),
    }


def tmpfs_options(mount: Mount) -> dict[str, int]:
    """The ``TmpfsOptions`` of a tmpfs mount (empty when it sets neither size nor mode)."""
    options: dict[str, int] = {}
    if mount.tmpfs_size is not None:
        options["SizeBytes"] = mount.tmpfs_size
    if mount.tmpfs_mode is not None:
        options["Mode"] = mount.tmpfs_mode
    return options


def add_network_options(body: dict[str, Any], network: Network) -> None:
    """Add to a network's create ``body`` its driver options and, when it gives a subnet,
    its address pool (``IPAM``)."""
    if network.driver_opts:
        body["Options"] = dict(network.driver_opts)
    if network.subnet is not None:
        pool = {"Subnet": network.subnet}
        if network.gateway is not None:
            pool["Gateway"] = network.gateway
        body["IPAM"] = {"Driver": "default", "Config": [pool]}
