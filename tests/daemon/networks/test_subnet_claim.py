"""A network's subnet moved away from another interface's route before its first attachment:
a caller holding the record from before the move gets the moved one."""

from __future__ import annotations

import asyncio
import ipaddress
from pathlib import Path
from types import SimpleNamespace

import pytest

from declarun.daemon.events import EventBus
from declarun.daemon.metadata import Metadata
from declarun.daemon.networks import service as service_module
from declarun.daemon.networks.service import NetworkService
from declarun.daemon.networks.store import NetworkRecord


def test_a_stale_record_gets_the_subnet_a_concurrent_first_attachment_moved_to(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    metadata = Metadata(tmp_path / "metadata.db")
    service = NetworkService(tmp_path, EventBus(), metadata)
    subnet = ipaddress.IPv4Network("172.17.0.0/16")
    record = NetworkRecord(
        id="a" * 64, name="bridge", driver="bridge", created="2026-01-01T00:00:00Z",
        subnet=subnet, gateway=ipaddress.IPv4Address("172.17.0.1"), builtin=True,
    )  # fmt: skip
    service._add(record)
    # Another daemon's bridge holds the route: the subnet must move.
    monkeypatch.setattr(service_module, "_routes_by_device", lambda: [(subnet, "dr-foreign")])
    attached: list[SimpleNamespace] = []
    monkeypatch.setattr(
        service.cni, "has_attachments", lambda nid: any(a.network_id == nid for a in attached)
    )

    async def no_bridge(_record: NetworkRecord) -> None:
        return None

    monkeypatch.setattr(service, "_drop_bridge", no_bridge)

    async def scenario() -> None:
        moved = await service.claim_subnet(record)
        assert moved.subnet != subnet
        attached.append(SimpleNamespace(network_id=record.id))  # the first container
        # A second container asked with the record it read before the move.
        assert await service.claim_subnet(record) == moved

    try:
        asyncio.run(scenario())
    finally:
        metadata.close()
