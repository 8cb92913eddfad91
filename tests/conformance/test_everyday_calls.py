"""The measured share of everyday docker-py calls that agree between declarund and dockerd.

One scenario of the calls a docker-py user makes every day -- system, images, a container's
life from create to remove (files in and out before it starts, exec, stats, update, pause,
rename, restart, commit), volumes, networks, and the usual errors -- runs on both engines.
A call *agrees* when both engines give the same status (success, or the same HTTP error)
and, for a JSON answer, declarund's has dockerd's shape. The test prints the share and
requires all of them to agree; ``specs/daemon.md`` quotes the count.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from tests.conformance.conftest import Pair, Side, unique
from tests.support.conformance import Outcome, outcome, shape_differences, tar_with

_IGNORED = (
    "GraphDriver.Data",  # overlay2 directories (dockerd) or the snapshot's (declarund)
    "*.GraphDriver.Data",
    # df: declarund counts its classic builder's step cache (issue 10); dockerd 20.10's
    # classic builder keeps none it reports, so its BuildCache is null.
    "BuildCache",
)
_KEYED = (
    "NetworkSettings.Networks", "[].NetworkSettings.Networks", "Containers", "Runtimes",
    "Config.ExposedPorts", "Config.Volumes",
)  # fmt: skip


def _scenario(side: Side) -> list[tuple[str, Outcome]]:
    """Every call, in order, with what the client saw."""
    api = side.api
    seen: list[tuple[str, Outcome]] = []

    def call(name: str, make: Callable[[], Any]) -> Any:
        result = outcome(make)
        seen.append((name, result))
        return result.value

    net, vol, name = unique("ev-net"), unique("ev-vol"), unique("ev")
    renamed, image = unique("ev-renamed"), f"{unique('ev-commit')}:v1"
    call("ping", api.ping)
    call("version", api.version)
    call("info", api.info)
    call("images", lambda: [i for i in api.images() if side.image in (i["RepoTags"] or [])])
    call("inspect_image", lambda: api.inspect_image(side.image))
    call("history", lambda: api.history(side.image))
    call("inspect_image missing", lambda: api.inspect_image("no-such-image:nowhere"))
    call("create_volume", lambda: api.create_volume(vol, labels={"a": "b"}))
    side.later(lambda: api.remove_volume(vol, force=True))
    call("create_network", lambda: api.create_network(net, labels={"a": "b"}))
    side.cleanups.insert(0, lambda: api.remove_network(net))
    host_config = api.create_host_config(network_mode=net, binds={vol: {"bind": "/data"}},
                                         mem_limit="64m", restart_policy={"Name": "no"})  # fmt: skip
    created = call("create_container", lambda: api.create_container(
        side.image, ["sh", "-c", "echo started; cat /tmp/in.txt; exec sleep 300"], name=name,
        environment={"A": "1"}, labels={"k": "v"}, host_config=host_config,
        networking_config=api.create_networking_config(
            {net: api.create_endpoint_config(aliases=["ev"])})))  # fmt: skip
    cid = created["Id"] if created else name
    side.later(lambda: api.remove_container(cid, force=True, v=True))
    call("create_container conflict", lambda: api.create_container(side.image, ["true"], name=name))
    call("inspect_container created", lambda: api.inspect_container(cid))
    call("put_archive created", lambda: api.put_archive(cid, "/tmp", tar_with({"in.txt": b"x\n"})))
    call("get_archive created", lambda: api.get_archive(cid, "/tmp/in.txt")[1])
    call("start", lambda: api.start(cid))
    call("start again", lambda: api.start(cid))
    call("containers", lambda: api.containers(filters={"id": cid}))
    call("containers all label", lambda: api.containers(all=True, filters={"label": "k=v"}))
    call("inspect_container running", lambda: api.inspect_container(cid))
    call("top", lambda: api.top(cid))
    exec_id = call(
        "exec_create", lambda: api.exec_create(cid, ["sh", "-c", "echo out; echo err >&2"])
    )
    call("exec_start", lambda: sorted(api.exec_start(exec_id["Id"], demux=True)))
    call("exec_inspect", lambda: api.exec_inspect(exec_id["Id"]))
    call("exec_create stdin tty", lambda: api.exec_create(cid, "cat /data/nothing", tty=True))
    call("stats", lambda: api.stats(cid, stream=False))
    call(
        "update_container", lambda: api.update_container(cid, mem_limit="96m", memswap_limit="192m")
    )
    call("pause", lambda: api.pause(cid))
    call("pause again", lambda: api.pause(cid))
    call("unpause", lambda: api.unpause(cid))
    call("rename", lambda: api.rename(cid, renamed))
    call("network_connect again", lambda: api.connect_container_to_network(cid, net))
    call("inspect_network", lambda: api.inspect_network(net))
    call("networks", lambda: api.networks(names=[net]))
    call("diff", lambda: api.diff(cid))
    call("remove_volume in use", lambda: api.remove_volume(vol))
    call("remove_network in use", lambda: api.remove_network(net))
    call("restart", lambda: api.restart(cid, timeout=0))
    call("logs", lambda: api.logs(cid).decode().split())
    call("kill", lambda: api.kill(cid))
    call("kill stopped", lambda: api.kill(cid))
    call("wait", lambda: api.wait(cid, timeout=60))
    call("get_archive exited", lambda: api.get_archive(cid, "/tmp/in.txt")[1])
    call("export", lambda: sum(len(chunk) for chunk in api.export(cid)) > 0)
    committed = call("commit", lambda: api.commit(cid, repository=image.split(":")[0], tag="v1"))
    side.later(lambda: api.remove_image(image, force=True))
    call("inspect_image committed", lambda: api.inspect_image(image))
    call("tag", lambda: api.tag(image, image.split(":")[0], "v2"))
    call("remove_image tag", lambda: api.remove_image(image.split(":")[0] + ":v2"))
    call("disconnect", lambda: api.disconnect_container_from_network(cid, net))
    call("remove_container", lambda: api.remove_container(cid, v=True))
    call("inspect_container removed", lambda: api.inspect_container(cid))
    call("inspect_volume", lambda: api.inspect_volume(vol))
    call("volumes", lambda: api.volumes(filters={"name": vol}))
    call("remove_volume", lambda: api.remove_volume(vol))
    call("remove_network", lambda: api.remove_network(net))
    call("remove_image", lambda: bool(api.remove_image(image)) and committed is not None)
    call("df", api.df)
    call("inspect_swarm", api.inspect_swarm)
    call("plugins", api.plugins)
    return seen


def _agree(dockerd: Outcome, declarund: Outcome) -> bool:
    if dockerd.status != declarund.status:
        return False
    if isinstance(dockerd.value, dict | list):
        return not shape_differences(dockerd.value, declarund.value, ignore=_IGNORED,
                                     keyed=_KEYED)  # fmt: skip
    return type(dockerd.value) is type(declarund.value)


def test_everyday_docker_py_calls_agree(pair: Pair) -> None:
    runs = {side.kind: _scenario(side) for side in pair.both}
    calls = list(zip(runs["dockerd"], runs["declarund"], strict=True))
    disagreeing = [
        (name, dockerd, declarund)
        for (name, dockerd), (_, declarund) in calls
        if not _agree(dockerd, declarund)
    ]
    print(f"\neveryday docker-py calls agreeing: {len(calls) - len(disagreeing)} of {len(calls)}")
    details = [
        (name, d.status, c.status, d.message, c.message,
         shape_differences(d.value, c.value, ignore=_IGNORED, keyed=_KEYED))
        for name, d, c in disagreeing
    ]  # fmt: skip
    for detail in details:
        print("DISAGREE", detail)
    assert details == []
