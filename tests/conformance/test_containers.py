"""Containers, side by side on declarund and dockerd 20.10 (docker-py at API 1.41)."""

from __future__ import annotations

import threading
import time
from typing import Any

import docker

from tests.conformance.conftest import Pair, Side, unique
from tests.support.conformance import outcome, shape_differences

# Paths whose values are host-specific strings on each engine, or fields whose dockerd
# value comes from parts declarund does not have (an init layer, containerd).
INSPECT_IGNORED = ("GraphDriver.Data", "Mounts[]")
# Maps keyed by names each test makes unique.
KEYED = ("NetworkSettings.Networks",)


def _make(side: Side, net: str) -> str:
    api = side.api
    side.network(net, ipam=docker.types.IPAMConfig(
        pool_configs=[docker.types.IPAMPool(subnet="10.97.0.0/24")]))  # fmt: skip
    return side.container(
        ["sleep", "300"], ports=[80], volumes=["/v"], labels={"a": "b"},
        healthcheck={"Test": ["CMD", "true"], "Interval": 1_000_000_000},
        host_config=api.create_host_config(
            network_mode=net, port_bindings={80: None}, binds=["/tmp:/hosttmp:ro"],
            restart_policy={"Name": "on-failure", "MaximumRetryCount": 2}),
        networking_config=api.create_networking_config(
            {net: api.create_endpoint_config(aliases=["al"], ipv4_address="10.97.0.9")}),
    )  # fmt: skip


def test_inspect_and_list_have_dockerds_shape_created_running_and_exited(pair: Pair) -> None:
    docs: dict[str, dict[str, Any]] = {}
    for side in pair.both:
        net = unique("shape")
        cid = _make(side, net)
        api = side.api
        docs[side.kind] = {"created": api.inspect_container(cid)}
        api.start(cid)
        docs[side.kind]["running"] = api.inspect_container(cid)
        docs[side.kind]["list"] = api.containers(filters={"id": cid})[0]
        api.stop(cid, timeout=0)
        docs[side.kind]["exited"] = api.inspect_container(cid)
    for what in ("created", "running", "list", "exited"):
        assert shape_differences(docs["dockerd"][what], docs["declarund"][what],
                                 ignore=INSPECT_IGNORED, keyed=KEYED) == [], what  # fmt: skip
    running = {k: v["running"] for k, v in docs.items()}
    for side in ("declarund", "dockerd"):
        endpoint = running[side]["NetworkSettings"]["Networks"]
        (settings,) = endpoint.values()
        assert settings["IPAMConfig"] == {"IPv4Address": "10.97.0.9"}
        assert settings["IPAddress"] == "10.97.0.9"
        # Before API 1.44 a running container's short ID is among its aliases.
        assert settings["Aliases"] == ["al", running[side]["Id"][:12]]


def test_update_merges_checks_and_answers_as_dockerd(pair: Pair) -> None:
    results = {side.kind: _update_scenario(side) for side in pair.both}
    assert results["declarund"] == results["dockerd"]
    assert results["declarund"][-1] == str(64 << 20).encode()


def _update_scenario(side: Side) -> list[Any]:
    api = side.api
    cid = side.container(["sleep", "300"], host_config=api.create_host_config(mem_limit="32m"))
    auto = side.container(["true"], host_config=api.create_host_config(auto_remove=True))
    seen: list[Any] = [api.inspect_container(cid)["HostConfig"]["MemorySwap"]]
    seen.append(outcome(lambda: api.update_container(cid, mem_limit="128m")))
    seen.append(outcome(lambda: api.update_container(cid, mem_limit="16m")))
    api.start(cid)
    seen.append(outcome(lambda: api.update_container(
        cid, mem_limit="64m", memswap_limit="256m", cpu_quota=50000, cpu_shares=512,
        restart_policy={"Name": "on-failure", "MaximumRetryCount": 3})))  # fmt: skip
    seen.append(outcome(lambda: api.update_container(cid, restart_policy={"Name": "x"})))
    seen.append(outcome(lambda: api.update_container(cid, mem_limit="1k")))
    seen.append(outcome(lambda: api.update_container("no-such-container", mem_limit="64m")))
    seen.append(outcome(lambda: api.update_container(auto, restart_policy={"Name": "always"})))
    hc = api.inspect_container(cid)["HostConfig"]
    seen.append([hc[k] for k in ("Memory", "MemorySwap", "CpuQuota", "CpuShares")])
    seen.append(hc["RestartPolicy"])
    # The running container's cgroup has the new limit.
    probe = api.exec_create(cid, ["cat", "/sys/fs/cgroup/memory/memory.limit_in_bytes"])
    seen.append(api.exec_start(probe["Id"]).strip())
    return [_comparable(item, (cid, auto)) for item in seen]


def _comparable(item: Any, ids: tuple[str, ...]) -> Any:
    """An outcome with the engine's own container IDs taken out of its message."""
    if hasattr(item, "message"):
        message = item.message
        for cid in ids:
            message = message.replace(cid, "<id>")
        return (item.status, item.value, message)
    return item


def test_cgroupns_device_rules_and_isolation_are_kept_and_checked(pair: Pair) -> None:
    results = {side.kind: _isolation_scenario(side) for side in pair.both}
    assert results["declarund"] == results["dockerd"]


def _isolation_scenario(side: Side) -> list[Any]:
    api = side.api

    def create(host: dict[str, Any]) -> Any:
        body = {"Image": side.image, "Cmd": ["sleep", "30"], "HostConfig": host}
        made = api._result(api._post_json(api._url("/containers/create"), data=body), True)
        side.later(lambda: api.remove_container(made["Id"], force=True))
        got = api.inspect_container(made["Id"])["HostConfig"]
        return {k: got[k] for k in ("CgroupnsMode", "DeviceCgroupRules", "Isolation")}

    return [
        outcome(lambda: create({"CgroupnsMode": "private", "Isolation": "default",
                                "DeviceCgroupRules": ["c 1:3 mr", "b 7:* rmw"]})),
        outcome(lambda: create({})),
        outcome(lambda: create({"CgroupnsMode": "bogus"})),
        outcome(lambda: create({"Isolation": "hyperv"})),
    ]  # fmt: skip


def _restarting(api: Any, cid: str) -> dict[str, Any]:
    """The state once the container is in a restart back-off (polled: no event says so)."""
    deadline = time.monotonic() + 30
    while True:
        state: dict[str, Any] = api.inspect_container(cid)["State"]
        if state["Status"] == "restarting" or time.monotonic() > deadline:
            return state
        time.sleep(0.02)


def test_wait_not_running_on_a_restarting_container_waits_for_its_next_exit(pair: Pair) -> None:
    for side in pair.both:
        _wait_scenario(side)


def _wait_scenario(side: Side) -> None:
    api = side.api
    cid = side.container(["sh", "-c", "sleep 0.3; exit 3"], host_config=api.create_host_config(
        restart_policy={"Name": "always"}))  # fmt: skip
    api.start(cid)
    assert api.wait(cid, timeout=60)["StatusCode"] == 3, side.kind
    # In the back-off, a wait does not answer at once: it answers the next run's exit.
    before = _restarting(api, cid)
    assert before["Status"] == "restarting", side.kind
    assert api.wait(cid, timeout=60)["StatusCode"] == 3, side.kind
    assert api.inspect_container(cid)["State"]["StartedAt"] != before["StartedAt"]
    # A stop during a back-off ends the wait too.
    assert _restarting(api, cid)["Status"] == "restarting", side.kind
    waited: dict[str, Any] = {}
    waiter = threading.Thread(target=lambda: waited.update(api.wait(cid, timeout=60)))
    waiter.start()
    api.stop(cid, timeout=1)
    waiter.join(30)
    assert waited.get("StatusCode") in (3, 137, 143), (side.kind, waited)


def test_ps_filters_network_publish_and_expose(pair: Pair) -> None:
    results = {side.kind: _ps_scenario(side) for side in pair.both}
    assert results["declarund"][7] == ["web"]
    assert results["declarund"] == results["dockerd"]


def _ps_scenario(side: Side) -> list[list[str]]:
    api = side.api
    net = unique("psf")
    side.network(net)
    mark = unique("ps")
    web = side.container(["sleep", "300"], ports=[80, (53, "udp")], labels={mark: ""},
                         host_config=api.create_host_config(
                             network_mode=net, port_bindings={80: ("127.0.0.1", None)}))  # fmt: skip
    other = side.container(["sleep", "300"], labels={mark: ""},
                           host_config=api.create_host_config(network_mode="none"))  # fmt: skip
    api.start(web)
    api.start(other)
    port = api.port(web, 80)[0]["HostPort"]

    def names(**filters: Any) -> list[str]:
        found = api.containers(filters={"label": mark, **filters})
        return sorted({web: "web", other: "other"}[c["Id"]] for c in found)

    return [
        names(network=net), names(network="none"), names(network="nope"),
        names(expose="80"), names(expose="53/udp"), names(expose="53"),
        names(publish="80"), names(publish=port), names(publish=f"{port}/tcp"),
    ]  # fmt: skip


def test_stats_carry_each_interface(pair: Pair) -> None:
    for side in pair.both:
        api = side.api
        first, second = unique("st1"), unique("st2")
        side.network(first)
        side.network(second)
        cid = side.container(["sleep", "300"],
                             host_config=api.create_host_config(network_mode=first))  # fmt: skip
        api.connect_container_to_network(cid, second)
        api.start(cid)
        stats = api.stats(cid, stream=False)
        assert sorted(stats["networks"]) == ["eth0", "eth1"], side.kind
        assert set(stats["networks"]["eth0"]) >= {"rx_bytes", "tx_packets", "rx_dropped"}


def test_volumes_from_takes_the_other_containers_mounts(pair: Pair) -> None:
    for side in pair.both:
        api = side.api
        volume = unique("vf")
        side.later(lambda api=api, volume=volume: api.remove_volume(volume))
        source = side.container(["sleep", "300"], volumes=["/anon"], name=unique("vfsrc"),
                                host_config=api.create_host_config(binds=[f"{volume}:/named"]))  # fmt: skip
        name = api.inspect_container(source)["Name"].lstrip("/")
        reader = side.container(["sh", "-c", "echo hi > /named/f && cat /named/f && ls /anon"],
                                host_config=api.create_host_config(volumes_from=[name]))  # fmt: skip
        readonly = side.container(["sh", "-c", "touch /named/g"],
                                  host_config=api.create_host_config(volumes_from=[f"{name}:ro"]))  # fmt: skip
        hc = api.inspect_container(reader)["HostConfig"]
        assert hc["VolumesFrom"] == [name], side.kind
        targets = sorted(m["Destination"] for m in api.inspect_container(reader)["Mounts"])
        assert targets == ["/anon", "/named"], side.kind
        api.start(reader)
        assert api.wait(reader)["StatusCode"] == 0, side.kind
        assert api.logs(reader) == b"hi\n", side.kind
        api.start(readonly)
        assert api.wait(readonly)["StatusCode"] != 0, side.kind
        bad = outcome(lambda api=api, image=side.image: api.create_container(
            image, ["true"], host_config=api.create_host_config(volumes_from=["nope"])))  # fmt: skip
        assert (bad.status, bad.message) == (400, "No such container: nope"), (side.kind, bad)


def test_health_probes_are_execs_in_the_events(pair: Pair) -> None:
    actions = {}
    for side in pair.both:
        api = side.api
        since = int(time.time()) - 1
        cid = side.container(["sleep", "300"], healthcheck={
            "Test": ["CMD-SHELL", "true"], "Interval": 200_000_000})  # fmt: skip
        api.start(cid)
        deadline = time.monotonic() + 30
        while (api.inspect_container(cid)["State"].get("Health") or {}).get("Status") != "healthy":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        events = api.events(since=since, until=int(time.time()) + 1, decode=True,
                            filters={"container": cid})  # fmt: skip
        seen = [e["Action"] for e in events]
        actions[side.kind] = seen[: seen.index("health_status: healthy") + 1]
        die = next(e for e in api.events(since=since, until=int(time.time()) + 1, decode=True,
                                         filters={"container": cid, "event": "exec_die"}))  # fmt: skip
        assert die["Actor"]["Attributes"]["exitCode"] == "0"
        assert len(die["Actor"]["Attributes"]["execID"]) == 64
    assert actions["declarund"] == actions["dockerd"] == [
        "create", "start", "exec_create: /bin/sh -c true", "exec_start: /bin/sh -c true",
        "exec_die", "health_status: healthy",
    ]  # fmt: skip


def test_links_on_user_networks_are_names_of_the_linking_container(pair: Pair) -> None:
    for side in pair.both:
        api = side.api
        net = unique("ln")
        side.network(net)
        target = unique("lt")
        server = side.container(["sh", "-c", "echo ok > /tmp/i.html && httpd -f -p 8000 -h /tmp"],
                                name=target,
                                host_config=api.create_host_config(network_mode=net))  # fmt: skip
        api.start(server)
        client = side.container(["sleep", "300"], host_config=api.create_host_config(
            network_mode=net), networking_config=api.create_networking_config(
            {net: api.create_endpoint_config(links=[(target, "db")])}))  # fmt: skip
        endpoint = api.inspect_container(client)["NetworkSettings"]["Networks"][net]
        assert endpoint["Links"] == [f"{target}:db"], side.kind
        if side.kind == "dockerd":
            continue  # the test dockerd runs without iptables: its embedded DNS is unreachable
        api.start(client)
        probe = api.exec_create(client, ["wget", "-q", "-O", "/dev/null", "http://db:8000/i.html"])
        api.exec_start(probe["Id"])
        assert api.exec_inspect(probe["Id"])["ExitCode"] == 0


def test_legacy_links_give_dockers_variables_hosts_and_removal(pair: Pair) -> None:
    # The test dockerd has no default bridge (--bridge none), so this runs on declarund
    # alone, against dockerd's documented variables (daemon/links/links.go).
    api = pair.declarund.api
    side = pair.declarund
    name = unique("legacy")
    server = side.container(["sleep", "300"], name=name, ports=[80, (53, "udp")],
                            environment={"FOO": "bar", "HOME": "/x"})  # fmt: skip
    api.start(server)
    ip = api.inspect_container(server)["NetworkSettings"]["IPAddress"]
    client_name = unique("linker")
    client = side.container(["sh", "-c", "env; cat /etc/hosts; sleep 300"], name=client_name,
                            host_config=api.create_host_config(links={name: "my-db"}))  # fmt: skip
    assert api.inspect_container(client)["HostConfig"]["Links"] == [f"/{name}:/{client_name}/my-db"]
    api.start(client)
    deadline = time.monotonic() + 10
    while b"my-db" not in api.logs(client) and time.monotonic() < deadline:
        time.sleep(0.05)
    output = api.logs(client).decode()
    for line in (f"MY_DB_PORT=udp://{ip}:53", f"MY_DB_PORT_80_TCP=tcp://{ip}:80",
                 f"MY_DB_PORT_80_TCP_ADDR={ip}", "MY_DB_PORT_80_TCP_PORT=80",
                 "MY_DB_PORT_80_TCP_PROTO=tcp", f"MY_DB_PORT_53_UDP=udp://{ip}:53",
                 f"MY_DB_NAME=/{client_name}/my-db", "MY_DB_ENV_FOO=bar"):  # fmt: skip
        assert line in output.splitlines(), line
    assert "MY_DB_ENV_HOME" not in output
    server_id = api.inspect_container(server)["Id"]
    assert f"{ip}\tmy-db {server_id[:12]} {name}" in output.splitlines()
    assert outcome(lambda: api.create_container(
        side.image, ["true"], host_config=api.create_host_config(links={"nope": "x"}))).status == 400  # fmt: skip
    assert outcome(lambda: api.remove_container(f"{client_name}/my-db", link=True)).ok
    assert api.inspect_container(client)["HostConfig"]["Links"] is None
    gone = outcome(lambda: api.remove_container(f"{client_name}/my-db", link=True))
    assert (gone.status, gone.message) == (404, f"No such container: {client_name}/my-db")


def test_events_leave_out_label_values_of_a_kilobyte(pair: Pair) -> None:
    api = pair.declarund.api
    since = int(time.time()) - 1
    cid = pair.declarund.container(["true"], labels={"big": "x" * 1024, "small": "y"})
    events = list(api.events(since=since, until=int(time.time()) + 1, decode=True,
                             filters={"container": cid}))  # fmt: skip
    assert events and all("big" not in e["Actor"]["Attributes"] for e in events)
    assert all(e["Actor"]["Attributes"]["small"] == "y" for e in events)
    assert api.inspect_container(cid)["Config"]["Labels"]["big"] == "x" * 1024
