"""The CNI attachment cache read per network: the same entries as a read of the whole cache
filtered by network, and "is anything attached" without reading every entry."""

from __future__ import annotations

from pathlib import Path

from declarun.daemon.networks.cni import CachedAttachment, CniDriver

NET_A = "a" * 64
NET_B = "b" * 64


def _entry(network_id: str, container_id: str) -> CachedAttachment:
    return CachedAttachment(
        network_id, container_id, f"/run/netns/{container_id}", "eth0",
        {"cniVersion": "1.0.0", "name": "x", "plugins": []}, {}, None,
    )  # fmt: skip


def test_per_network_reads_match_the_whole_cache(tmp_path: Path) -> None:
    driver = CniDriver(tmp_path / "state")
    assert driver.attachments(NET_A) == []
    assert not driver.has_attachments(NET_A)
    for network_id, container_id in ((NET_A, "c2"), (NET_B, "c1"), (NET_A, "c1")):
        driver._store(_entry(network_id, container_id))
    everything = driver.attachments()
    assert [(e.network_id, e.container_id) for e in everything] == [
        (NET_A, "c1"), (NET_A, "c2"), (NET_B, "c1"),
    ]  # fmt: skip
    for network_id in (NET_A, NET_B):
        assert driver.attachments(network_id) == [
            e for e in everything if e.network_id == network_id
        ]
        assert driver.has_attachments(network_id)
    assert not driver.has_attachments("c" * 64)


def test_unreadable_entries_do_not_count(tmp_path: Path) -> None:
    driver = CniDriver(tmp_path / "state")
    driver._store(_entry(NET_A, "c1"))
    (driver.cache_dir / NET_A / "c1.json").write_text("{not json")
    (driver.cache_dir / NET_A / "c2.tmp").write_text("{}")  # a write cut short
    assert driver.attachments() == []
    assert driver.attachments(NET_A) == []
    assert not driver.has_attachments(NET_A)
    driver._store(_entry(NET_A, "c3"))
    assert driver.has_attachments(NET_A)
    assert [e.container_id for e in driver.attachments(NET_A)] == ["c3"]
