"""Profiles: containers that exist only when one of their profiles is activated.

As in Compose, a container without ``profiles`` is always active; one with profiles is active
when any of them is. Resources that only inactive containers used (their literal images, the
implicit default network) leave the stack with them; declared images, volumes and networks stay.
"""

from __future__ import annotations

import dataclasses

from declarun.errors import Problem
from declarun.frozen import FrozenDict
from declarun.stack.model import Container, Stack

__all__ = ["is_active", "select_profiles"]


def is_active(container: Container, profiles: frozenset[str]) -> bool:
    """True when ``container`` runs with ``profiles`` activated."""
    return not container.profiles or bool(profiles.intersection(container.profiles))


def select_profiles(stack: Stack, profiles: frozenset[str]) -> tuple[Stack, list[Problem]]:
    """The stack with only the active containers, and problems with dependencies on the rest."""
    active = {n: c for n, c in stack.containers.items() if is_active(c, profiles)}
    problems: list[Problem] = []
    for name, container in active.items():
        for index, dependency in enumerate(container.depends_on):
            target = stack.containers.get(dependency.container)
            if target is None or dependency.container in active:
                continue
            wanted = ", ".join(target.profiles)
            problems.append(
                Problem(
                    dependency.location,
                    f"containers.{name}.depends_on[{index}]",
                    f"depends on '{dependency.container}', which is not active: it belongs to "
                    f"profile(s) {wanted}",
                    f"activate it with --profile {target.profiles[0]}",
                )
            )
    used_images = {c.image for c in active.values()}
    used_networks = {a.network for c in active.values() for a in c.networks}
    images = FrozenDict(
        (n, i) for n, i in stack.images.items() if not i.implicit or n in used_images
    )
    networks = FrozenDict(
        (n, net) for n, net in stack.networks.items() if not net.implicit or n in used_networks
    )
    selected = dataclasses.replace(
        stack, containers=FrozenDict(active), images=images, networks=networks
    )
    return selected, problems
