"""The seam between the container service and networking.

The container service knows nothing of CNI, DNS or published ports: it calls an object
with the :class:`ContainerNetworking` protocol (``service.networking``; the networks area
implements it in :mod:`declarun.daemon.networks.wiring`). Without one, every container
gets a namespace of its own with only ``lo`` (the behaviour before networking existed).

Order at start (``launch``): :meth:`ContainerNetworking.setup` before the bundle is written
(the namespace path goes into ``config.json``, the addresses into ``/etc/hosts``); at every
end of a run — exit, failed start, removal — :meth:`ContainerNetworking.teardown`, which is
idempotent.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from declarun.daemon.containers.lifecycle.record import ContainerRecord

__all__ = ["ContainerNetworking", "NetworkSetup"]


@dataclass(frozen=True)
class NetworkSetup:
    """What a started container's bundle needs from networking.

    ``netns``: the namespace path to join (``None``: runc makes a fresh one, or none at all
    in ``host`` mode). ``addresses``: the container's own addresses for ``/etc/hosts``.
    ``resolv_conf``/``hosts``: full file texts that replace the defaults (embedded DNS,
    ``container:<id>`` mode); ``None`` keeps the default. ``link_hosts``/``link_env``: what
    legacy links (``--link`` on the default bridge) add to ``/etc/hosts`` and the
    environment.
    """

    netns: str | None = None
    addresses: tuple[str, ...] = ()
    resolv_conf: str | None = None
    hosts: str | None = None
    #: ``/etc/hosts`` lines of legacy links, and the variables they give the process.
    link_hosts: tuple[str, ...] = ()
    link_env: tuple[str, ...] = ()


class ContainerNetworking(Protocol):
    """What the container service asks of networking."""

    def validate(self, rec: ContainerRecord) -> None:
        """Refuse a create whose networks do not exist (API errors)."""
        ...

    async def setup(self, rec: ContainerRecord) -> NetworkSetup:
        """Give the container its network before it starts; undo everything on failure."""
        ...

    async def teardown(self, rec: ContainerRecord) -> None:
        """Release what :meth:`setup` and later connects took (idempotent)."""
        ...

    def settings(self, rec: ContainerRecord, *, summary: bool) -> dict[str, Any]:
        """``NetworkSettings`` of inspect (``summary``: of the list)."""
        ...

    def port_summary(self, rec: ContainerRecord) -> list[dict[str, Any]]:
        """``Ports`` of the list (``docker ps``)."""
        ...
