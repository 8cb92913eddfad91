"""The CNI driver against the real plugins, in namespaces the tests create."""

from __future__ import annotations

import asyncio
import json
import os

import pytest

from declarun.daemon.networks import cniconf, netns
from declarun.daemon.networks.cni import CniDriver
from declarun.daemon.networks.errors import CniPluginError
from tests.daemon.networks.conftest import Lab, in_ns, iptables_dump, needs_real_network, run

pytestmark = [needs_real_network, pytest.mark.root]


def test_two_namespaces_on_one_bridge_reach_each_other(lab: Lab) -> None:
    async def scenario() -> None:
        a = await lab.attach()
        b = await lab.attach()
        assert a.ip in lab.spec.subnet and b.ip in lab.spec.subnet and a.ip != b.ip
        assert a.result.gateway == lab.spec.gateway
        assert a.result.address.network == lab.spec.subnet
        assert len(a.result.mac.split(":")) == 6
        ping = run(in_ns(a.netns, "busybox", "ping", "-c", "1", "-W", "5", str(b.ip)))
        assert ping.returncode == 0, ping.stdout + ping.stderr
        # A TCP exchange: b listens, a sends a line. The listener's stdin is a pipe left
        # open: at EOF on stdin (pytest's /dev/null) busybox nc half-closes the connection
        # as soon as it accepts, and a sender whose own stdin is not read yet takes that FIN
        # for the end of the exchange and exits 0 having sent nothing.
        listener = await asyncio.create_subprocess_exec(
            *in_ns(b.netns, "busybox", "nc", "-l", "-p", "7777"),
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        try:
            sent = await _retry_send(a.netns, str(b.ip), 7777, b"hello over the bridge\n")
            assert sent
            out, _ = await asyncio.wait_for(listener.communicate(), 20)
            assert out == b"hello over the bridge\n"
        finally:
            if listener.returncode is None:
                listener.kill()
                await listener.wait()
        routes = run(in_ns(a.netns, "ip", "route")).stdout
        assert f"default via {lab.spec.gateway}" in routes

    asyncio.run(scenario())


async def _retry_send(path: object, host: str, port: int, data: bytes) -> bool:
    """Send ``data`` with busybox nc, retrying while the listener is not yet up."""
    for _ in range(100):
        proc = await asyncio.create_subprocess_exec(
            *in_ns(path, "busybox", "nc", "-w", "5", host, str(port)),  # type: ignore[arg-type]
            stdin=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        await proc.communicate(data)
        if proc.returncode == 0:
            return True
        await asyncio.sleep(0.05)
    return False


def test_delete_releases_lease_veth_and_rules(lab: Lab) -> None:
    async def scenario() -> None:
        member = await lab.attach(ports=[cniconf.PortMapping(18931, 80)], firewall=True)
        cid = member.container_id
        assert lab.driver.leases(lab.network_id) == {member.ip: cid}
        assert len(lab.veths()) == 1
        assert cid in iptables_dump()
        await lab.driver.delete(lab.network_id, cid)
        assert lab.driver.leases(lab.network_id) == {}
        assert lab.veths() == []
        dump = iptables_dump()
        assert cid not in dump
        assert f"{member.ip}/32" not in dump  # the firewall plugin's rules are gone too
        assert lab.driver.cached(lab.network_id, cid) is None
        assert "eth0" not in run(in_ns(member.netns, "ip", "-o", "link")).stdout
        # Deleting again is a no-op.
        await lab.driver.delete(lab.network_id, cid)

    asyncio.run(scenario())


def test_internal_network_has_no_route_out(lab: Lab) -> None:
    async def scenario() -> None:
        spec = lab.other_network(internal=True)
        member = await lab.attach(spec=spec)
        routes = run(in_ns(member.netns, "ip", "route")).stdout
        assert "default" not in routes
        assert str(spec.subnet) in routes
        # A route lookup only: no packet is sent anywhere.
        lookup = run(in_ns(member.netns, "ip", "route", "get", "198.51.100.7"))
        assert lookup.returncode != 0 and "unreachable" in lookup.stderr.lower()
        assert member.container_id not in run(["iptables", "-t", "nat", "-S"]).stdout
        # The gateway (the host side) is still reachable inside the subnet.
        ping = run(in_ns(member.netns, "busybox", "ping", "-c", "1", "-W", "5", str(spec.gateway)))
        assert ping.returncode == 0

    asyncio.run(scenario())


def test_fixed_address_is_honoured_and_conflicts_are_plugin_errors(lab: Lab) -> None:
    async def scenario() -> None:
        wanted = lab.spec.subnet[77]
        member = await lab.attach(ip=wanted)
        assert member.ip == wanted
        with pytest.raises(CniPluginError) as caught:
            await lab.attach(ip=wanted)
        assert caught.value.plugin == "bridge"
        assert str(wanted) in str(caught.value)
        # The failed ADD was rolled back: only the first lease and cache entry remain.
        assert list(lab.driver.leases(lab.network_id)) == [wanted]
        assert [e.container_id for e in lab.driver.attachments()] == [member.container_id]

    asyncio.run(scenario())


def test_cleanup_after_a_crash_removes_every_leftover(lab: Lab) -> None:
    async def scenario() -> tuple[str, list[str], list[str]]:
        kept = await lab.attach()
        crashed = [
            await lab.attach(ports=[cniconf.PortMapping(18932, 80)]),
            await lab.attach(),
        ]
        # A crash between the plugins' ADD and the cache update: only the intent is cached.
        entry = lab.driver.cached(lab.network_id, crashed[1].container_id)
        assert entry is not None
        path = lab.driver.cache_dir / lab.network_id / f"{crashed[1].container_id}.json"
        path.write_text(json.dumps({**entry.to_json(), "result": None}))
        # The daemon restarts: a new driver over the same state, knowing nothing else.
        fresh = CniDriver(lab.driver.state_dir)
        failures = await fresh.cleanup(keep=frozenset({kept.container_id}))
        assert failures == []
        for member in crashed:
            netns.remove_netns(member.netns)
        return kept.container_id, [m.container_id for m in crashed], [str(m.ip) for m in crashed]

    kept_id, crashed_ids, crashed_ips = asyncio.run(scenario())
    leases = {str(ip) for ip in lab.driver.leases(lab.network_id)}
    assert not leases & set(crashed_ips) and len(leases) == 1
    assert len(lab.veths()) == 1
    dump = iptables_dump()
    assert not any(cid in dump for cid in crashed_ids)
    assert [e.container_id for e in lab.driver.attachments()] == [kept_id]
    assert len(netns.list_netns(lab.run_dir)) == 1


def test_missing_plugin_and_bad_config_are_clear_errors(lab: Lab, tmp_path: object) -> None:
    async def scenario() -> None:
        container_id, path = lab.new_netns()
        conflist = cniconf.build_conflist(lab.spec, lab.driver.ipam_dir)
        broken = {**conflist, "plugins": [{**conflist["plugins"][0], "bridge": "x" * 40}]}
        with pytest.raises(CniPluginError) as caught:
            await lab.driver.add(
                broken,
                network_id=lab.network_id,
                container_id=container_id,
                netns=path,
                ifname="eth0",
            )
        assert caught.value.plugin == "bridge" and caught.value.command == "ADD"
        assert lab.driver.cached(lab.network_id, container_id) is None
        assert lab.driver.leases(lab.network_id) == {}
        nowhere = CniDriver(lab.driver.state_dir, plugin_dirs=[os.fspath(lab.run_dir)])
        with pytest.raises(CniPluginError, match="not found"):
            await nowhere.setup_loopback(path, container_id)

    asyncio.run(scenario())


def test_remove_network_deletes_bridge_and_lease_dir(lab: Lab) -> None:
    async def scenario() -> None:
        member = await lab.attach()
        with pytest.raises(Exception, match="still has attachments"):
            await lab.driver.remove_network(lab.network_id, lab.bridge)
        await lab.driver.delete(lab.network_id, member.container_id)
        await lab.driver.remove_network(lab.network_id, lab.bridge)
        assert not os.path.exists(f"/sys/class/net/{lab.bridge}")
        assert not (lab.driver.ipam_dir / cniconf.cni_network_name(lab.network_id)).exists()

    asyncio.run(scenario())


def test_check_reports_drift(lab: Lab) -> None:
    async def scenario() -> None:
        member = await lab.attach()
        await lab.driver.check(lab.network_id, member.container_id)
        run(in_ns(member.netns, "ip", "addr", "flush", "dev", "eth0"), check=True)
        with pytest.raises(CniPluginError):
            await lab.driver.check(lab.network_id, member.container_id)

    asyncio.run(scenario())
