"""Pure parts of the networking layer: DNS wire format, pools, resolv.conf, conflists."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from declarun.daemon.networks import cniconf, dnswire, ipam_pool
from declarun.daemon.networks.cni import AttachResult
from declarun.daemon.networks.dns import EmbeddedDns
from declarun.daemon.networks.errors import PoolExhaustedError
from declarun.daemon.networks.resolvconf import (
    ResolvConf,
    container_resolv_conf,
    host_resolv_conf,
    parse_resolv_conf,
    upstreams_of,
)

IP = ipaddress.IPv4Address
NET = ipaddress.IPv4Network


# -- DNS wire format -------------------------------------------------------------------------


def test_query_round_trip_and_answer_layout() -> None:
    query = dnswire.build_query(0x1234, "Web.Example.")
    question = dnswire.parse_query(query)
    assert (question.id, question.name, question.qtype) == (0x1234, "web.example", dnswire.TYPE_A)
    answer = dnswire.build_answer(question, [IP("10.0.0.5"), IP("10.0.0.6")], ttl=7)
    assert answer[:2] == b"\x12\x34"
    flags = int.from_bytes(answer[2:4], "big")
    assert flags & 0x8000 and flags & 0x0100 and not flags & 0x0200  # QR, RD kept, not TC
    assert int.from_bytes(answer[6:8], "big") == 2
    assert answer.endswith(IP("10.0.0.6").packed)
    assert IP("10.0.0.5").packed in answer


def test_too_many_records_are_truncated_for_udp_but_not_tcp() -> None:
    question = dnswire.parse_query(dnswire.build_query(1, "many"))
    addresses = [IP(f"10.0.{i // 250}.{i % 250 + 1}") for i in range(100)]
    udp = dnswire.build_answer(question, addresses)
    assert len(udp) <= dnswire.MAX_UDP_ANSWER and int.from_bytes(udp[2:4], "big") & 0x0200
    tcp = dnswire.build_answer(question, addresses, limit=None)
    assert int.from_bytes(tcp[6:8], "big") == 100


@pytest.mark.parametrize(
    "data",
    [b"", b"\x00" * 11, dnswire.build_query(1, "x")[:-2], b"\x00\x01\x80\x00" + b"\x00" * 8],
)
def test_malformed_queries_are_rejected(data: bytes) -> None:
    with pytest.raises(dnswire.DnsFormatError):
        dnswire.parse_query(data)


def test_ptr_names() -> None:
    assert dnswire.ptr_address("5.0.97.10.in-addr.arpa") == IP("10.97.0.5")
    assert dnswire.ptr_address("example.com") is None
    assert dnswire.ptr_address("1.2.in-addr.arpa") is None


# -- embedded DNS records (pure part) --------------------------------------------------------


def test_lookup_is_scoped_to_the_networks_the_asker_shares() -> None:
    dns = EmbeddedDns()
    dns.set_endpoint("front", "web", ["web", "www"], IP("10.1.0.2"))
    dns.set_endpoint("front", "proxy", ["proxy"], IP("10.1.0.3"))
    dns.set_endpoint("back", "web", ["web"], IP("10.2.0.2"))
    dns.set_endpoint("back", "db", ["db", "Shared"], IP("10.2.0.3"))
    dns.set_endpoint("back", "db2", ["shared"], IP("10.2.0.4"))
    assert dns.lookup("proxy", "www") == [IP("10.1.0.2")]
    assert dns.lookup("proxy", "db") == []  # proxy is not on "back"
    assert dns.lookup("web", "db.") == [IP("10.2.0.3")]
    assert dns.lookup("web", "SHARED") == [IP("10.2.0.3"), IP("10.2.0.4")]
    assert dns.reverse("web", IP("10.2.0.3")) == "db"
    dns.remove_endpoint("back", "db")
    assert dns.lookup("web", "db") == []
    dns.remove_network("back")
    assert dns.lookup("web", "shared") == []


def test_indexed_answers_match_a_scan_of_every_member_through_changes() -> None:
    """The per-network indexes answer as the scan of every member they replaced, in the
    same order, while endpoints are added, replaced, removed and networks dropped."""
    import random

    rng = random.Random(16)
    dns = EmbeddedDns()
    # The reference: what the members hold, scanned as the lookups used to.
    members: dict[str, dict[str, tuple[tuple[str, ...], ipaddress.IPv4Address]]] = {}
    names = ["web", "db", "cache", "shared", "x"]
    containers = [f"c{i}" for i in range(12)]

    def scan(asker: str, name: str) -> list[ipaddress.IPv4Address]:
        found: list[ipaddress.IPv4Address] = []
        for net in members.values():
            if asker in net:
                for got_names, ip in net.values():
                    if name in got_names and ip not in found:
                        found.append(ip)
        return found

    def scan_reverse(asker: str, ip: ipaddress.IPv4Address) -> str | None:
        for net in members.values():
            if asker in net:
                for got_names, address in net.values():
                    if address == ip and got_names:
                        return got_names[0]
        return None

    for _ in range(400):
        network = rng.choice(["n1", "n2", "n3"])
        container = rng.choice(containers)
        roll = rng.random()
        if roll < 0.6:
            chosen = rng.sample(names, rng.randint(0, 2))
            ip = IP(f"10.0.0.{rng.randint(2, 9)}")  # shared addresses on purpose
            dns.set_endpoint(network, container, chosen, ip)
            members.setdefault(network, {})[container] = (tuple(dict.fromkeys(chosen)), ip)
        elif roll < 0.95:
            dns.remove_endpoint(network, container)
            members.get(network, {}).pop(container, None)
            if network in members and not members[network]:
                del members[network]
        else:
            dns.remove_network(network)
            members.pop(network, None)
        asker = rng.choice(containers)
        for name in names:
            assert dns.lookup(asker, name) == scan(asker, name)
        for last in range(2, 10):
            assert dns.reverse(asker, IP(f"10.0.0.{last}")) == scan_reverse(
                asker, IP(f"10.0.0.{last}")
            )


def test_answers_without_network_access() -> None:
    import asyncio

    dns = EmbeddedDns()
    dns.set_endpoint("n", "a", ["a"], IP("10.1.0.2"))
    dns.set_endpoint("n", "b", ["b"], IP("10.1.0.3"))

    async def ask(name: str, qtype: int) -> bytes | None:
        return await dns.answer("a", dnswire.build_query(9, name, qtype))

    a_record = asyncio.run(ask("b", dnswire.TYPE_A))
    assert a_record is not None and a_record.endswith(IP("10.1.0.3").packed)
    nodata = asyncio.run(ask("b", dnswire.TYPE_AAAA))
    assert nodata is not None and nodata[3] & 0xF == dnswire.NOERROR and nodata[6:8] == b"\0\0"
    # Unknown name, no upstreams: SERVFAIL rather than silence.
    unknown = asyncio.run(ask("elsewhere.test", dnswire.TYPE_A))
    assert unknown is not None and unknown[3] & 0xF == dnswire.SERVFAIL
    assert asyncio.run(dns.answer("a", b"junk")) is None


# -- address pools ---------------------------------------------------------------------------


def test_pool_order_and_skipping() -> None:
    assert ipam_pool.allocate_subnet([], []) == NET("172.17.0.0/16")
    assert ipam_pool.allocate_subnet([NET("172.17.0.0/16")], []) == NET("172.18.0.0/16")
    routes = [NET("0.0.0.0/0"), NET("172.18.5.0/24"), NET("172.16.0.0/12")]
    assert ipam_pool.allocate_subnet([], routes) == NET("192.168.0.0/20")
    used = [NET("192.168.0.0/20"), NET("192.168.20.0/24")]
    assert ipam_pool.allocate_subnet(used, routes) == NET("192.168.32.0/20")
    subnets = list(ipam_pool.candidate_subnets())
    assert subnets[-1] == NET("192.168.240.0/20") and len(subnets) == 15 + 16


def test_addresses_are_handed_out_in_rotation_not_lowest_first() -> None:
    pool, ip = NET("10.9.0.0/29"), ipaddress.IPv4Address
    gateway = ip("10.9.0.1")
    assert ipam_pool.next_free_address(pool, [gateway]) == ip("10.9.0.2")
    # .2 was just released but .3 was handed out last: the next one is .4, not .2.
    assert ipam_pool.next_free_address(pool, [gateway], ip("10.9.0.3")) == ip("10.9.0.4")
    # At the end of the pool it wraps around, skipping what is taken.
    taken = [gateway, ip("10.9.0.2")]
    assert ipam_pool.next_free_address(pool, taken, ip("10.9.0.6")) == ip("10.9.0.3")
    # A last address outside the pool (another range) starts from the beginning.
    assert ipam_pool.next_free_address(pool, [gateway], ip("10.8.0.9")) == ip("10.9.0.2")
    everything = [ip(f"10.9.0.{n}") for n in range(1, 7)]
    assert ipam_pool.next_free_address(pool, everything, ip("10.9.0.4")) is None


def test_pool_exhaustion_is_a_clear_error() -> None:
    with pytest.raises(PoolExhaustedError, match="non-overlapping"):
        ipam_pool.allocate_subnet([NET("172.16.0.0/12"), NET("192.168.0.0/16")], [])


def test_gateway_and_host_routes(tmp_path: Path) -> None:
    assert ipam_pool.default_gateway(NET("10.5.0.0/24")) == IP("10.5.0.1")
    table = tmp_path / "route"
    table.write_text(
        "Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\tMTU\tWindow\tIRTT\n"
        "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
        "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
    )
    assert ipam_pool.host_routes(table) == [NET("0.0.0.0/0"), NET("192.0.2.0/24")]
    assert ipam_pool.host_routes(tmp_path / "missing") == []


# -- resolv.conf -----------------------------------------------------------------------------

HOST = "# generated\nnameserver 127.0.0.53\nnameserver 10.0.0.2 ; lan\nsearch a.test b.test\noptions edns0\n"


def test_parse_and_render() -> None:
    conf = parse_resolv_conf(HOST + "nameserver not-an-ip\n")
    assert conf == ResolvConf(("127.0.0.53", "10.0.0.2"), ("a.test", "b.test"), ("edns0",))
    assert upstreams_of(conf) == (("127.0.0.53", 53), ("10.0.0.2", 53))


def test_container_files() -> None:
    conf = parse_resolv_conf(HOST)
    embedded = container_resolv_conf(conf, embedded=True)
    assert embedded == "nameserver 127.0.0.11\nsearch a.test b.test\noptions edns0 ndots:0\n"
    plain = container_resolv_conf(conf, embedded=False)
    assert plain.splitlines()[0] == "nameserver 10.0.0.2" and "127.0.0.53" not in plain
    only_loopback = parse_resolv_conf("nameserver 127.0.0.1\n")
    assert "nameserver 8.8.8.8" in container_resolv_conf(only_loopback, embedded=False)
    custom = container_resolv_conf(conf, embedded=False, dns=["1.1.1.1"], dns_search=["x.test"])
    assert custom == "nameserver 1.1.1.1\nsearch x.test\noptions edns0\n"


def test_host_file_prefers_systemd_resolved_upstreams(tmp_path: Path) -> None:
    stub = tmp_path / "resolv.conf"
    stub.write_text("nameserver 127.0.0.53\n")
    assert host_resolv_conf(stub).nameservers  # falls back to the stub if no resolved file
    assert host_resolv_conf(tmp_path / "missing") == ResolvConf()


# -- CNI configuration lists -----------------------------------------------------------------

SPEC = cniconf.NetworkSpec("f" * 64, NET("10.77.0.0/24"), IP("10.77.0.1"))


def test_conflist_for_a_normal_network(tmp_path: Path) -> None:
    conf = cniconf.build_conflist(SPEC, tmp_path, port_mappings=True, firewall=True)
    assert conf["cniVersion"] == "1.0.0" and conf["name"] == "declarun-" + "f" * 64
    bridge, portmap, firewall = conf["plugins"]
    assert bridge["bridge"] == "dr-ffffffffffff" and len(bridge["bridge"]) <= 15
    assert not bridge["ipMasq"] and bridge["isGateway"] and bridge["hairpinMode"]
    assert bridge["ipam"]["routes"] == [{"dst": "0.0.0.0/0"}]
    assert bridge["ipam"]["ranges"] == [[{"subnet": "10.77.0.0/24", "gateway": "10.77.0.1"}]]
    assert bridge["ipam"]["dataDir"] == str(tmp_path)
    assert portmap["capabilities"] == {"portMappings": True}
    assert firewall["type"] == "firewall"


def test_conflist_for_an_internal_network_with_a_range(tmp_path: Path) -> None:
    spec = cniconf.NetworkSpec(
        "e" * 64, NET("10.78.0.0/16"), IP("10.78.0.1"), internal=True, ip_range=NET("10.78.5.0/24")
    )
    (bridge,) = cniconf.build_conflist(spec, tmp_path)["plugins"]
    assert not bridge["ipMasq"] and bridge["ipam"]["routes"] == []
    ranges = bridge["ipam"]["ranges"][0][0]
    assert (ranges["rangeStart"], ranges["rangeEnd"]) == ("10.78.5.1", "10.78.5.254")


def test_runtime_config() -> None:
    config = cniconf.runtime_config([cniconf.PortMapping(8080, 80)], IP("10.77.0.9"), SPEC.subnet)
    assert config == {
        "portMappings": [{"hostPort": 8080, "containerPort": 80, "protocol": "tcp"}],
        "ips": ["10.77.0.9/24"],
    }
    assert cniconf.runtime_config() == {}


def test_result_parsing_picks_the_sandbox_interface() -> None:

    result = {
        "interfaces": [
            {"name": "dr-x", "mac": "aa:aa:aa:aa:aa:aa"},
            {"name": "veth1", "mac": "bb:bb:bb:bb:bb:bb"},
            {"name": "eth0", "mac": "cc:cc:cc:cc:cc:cc", "sandbox": "/run/netns/x"},
        ],
        "ips": [{"address": "10.9.0.5/24", "gateway": "10.9.0.1", "interface": 2}],
    }
    parsed = AttachResult.parse(result, "eth0")
    assert parsed.mac == "cc:cc:cc:cc:cc:cc"
    assert parsed.address == ipaddress.IPv4Interface("10.9.0.5/24")
    assert parsed.gateway == ipaddress.IPv4Address("10.9.0.1")


def test_no_netns_agrees_with_the_listing(tmp_path: Path) -> None:
    from declarun.daemon.networks.netns import list_netns, netns_dir, no_netns

    assert no_netns(tmp_path) and list_netns(tmp_path) == []
    directory = netns_dir(tmp_path)
    directory.mkdir(parents=True)
    (directory / "sub").mkdir()  # not a namespace file
    assert no_netns(tmp_path) and list_netns(tmp_path) == []
    (directory / "abc").touch()
    assert not no_netns(tmp_path) and list_netns(tmp_path) == [directory / "abc"]
    (directory / "abc").unlink()
    assert no_netns(tmp_path)
