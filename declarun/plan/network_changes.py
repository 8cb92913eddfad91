"""The change to a network the stack declares and owns, on one engine and on a Swarm alike.

A missing network is created, one held by another stack (or by nobody declarun knows) is an
``error`` change, one whose recorded configuration differs is replaced -- and so is every
container or service on it, with :func:`network_recreated` as its reason. External
networks are not decided here: what to do while one is missing differs between the two
(see ``plan.diff`` and ``plan.swarm_diff``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Protocol

from declarun.frozen import FrozenDict
from declarun.plan.drafts import Draft, foreign, missing, reason
from declarun.plan.model import Reason
from declarun.plan.reasons import config_reasons

__all__ = ["network_change", "network_recreated"]


class _DesiredNetwork(Protocol):
    """What :func:`network_change` reads of a desired network (one engine's or a Swarm's)."""

    @property
    def id(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def engine_name(self) -> str: ...
    @property
    def config(self) -> Mapping[str, Any]: ...
    @property
    def config_hash(self) -> str: ...


class _ObservedNetwork(Protocol):
    """What :func:`network_change` reads of an observed network."""

    @property
    def id(self) -> str: ...
    @property
    def labels(self) -> FrozenDict[str, str]: ...


def network_change(
    network: _DesiredNetwork,
    observed: _ObservedNetwork | None,
    owns: Callable[[FrozenDict[str, str]], bool],
) -> Draft:
    """The change that makes the (not external) ``network`` exist as declared, given the
    network of its engine name, if any, and the observation's ownership test ``owns``."""
    if observed is None:
        return missing(
            "network", network.id, network.name, network.engine_name, network.config_hash
        )
    if not owns(observed.labels):
        owner = observed.labels.get("dev.declarun.stack")
        return foreign("network", network.id, network.name, network.engine_name, owner)
    reasons = config_reasons(network.config, network.config_hash, observed.labels)
    return Draft(
        network.id,
        "recreate" if reasons else "noop",
        "network",
        network.name,
        network.engine_name,
        reasons,
        observed_id=observed.id,
        desired_hash=network.config_hash,
    )


def network_recreated(network: str) -> Reason:
    """The reason a container or service on the recreated ``network`` is replaced."""
    return reason(
        "dependency_replaced",
        f"network {network} is recreated",
        field="networks",
        before=network,
        after=network,
    )
