"""Engine actions, waits and health-gated replacement, on each engine (declarund and a real
dockerd)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from declarun.plan.identity import LABEL_STACK
from declarun.reconcile.actions import (
    create_container,
    create_network,
    create_volume,
    pull_image,
    remove_container,
    remove_network,
    remove_volume,
    run_once,
    start_container,
)
from declarun.reconcile.conditions import wait_for
from declarun.reconcile.executor import NullProgress, StepContext, StepFailed
from declarun.reconcile.replace import TEMP_SUFFIX, replace_container
from tests.support.engine_fixtures import Engine
from tests.support.images import build_busybox_layout, skopeo_push
from tests.support.registry import free_port

FAST = timedelta(seconds=1)
HEALTHY = {"Test": ["CMD-SHELL", "test -e /tmp/ok"], "Interval": 200_000_000, "Retries": 2}


class Updates(NullProgress):
    def __init__(self) -> None:
        self.texts: list[str] = []

    def update(self, key: str, text: str) -> None:
        self.texts.append(text)


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    pull_image(engine.adapter, engine.image)
    return engine.image


@pytest.fixture
def names(engine: Engine) -> Iterator[list[str]]:
    """Container names a test uses; removed afterwards whatever happened."""
    made: list[str] = []
    yield made
    for name in made + [n + TEMP_SUFFIX for n in made]:
        with contextlib.suppress(docker.errors.NotFound):
            engine.client.api.remove_container(name, force=True, v=True)


def body(image: str, script: str, **extra: Any) -> dict[str, Any]:
    """A container running ``script`` that exits on SIGTERM, as a service does: ``sh`` as
    PID 1 ignores it, and each stop of a replace would wait out the 10 s grace period."""
    return {
        "Image": image,
        "Cmd": ["sh", "-c", f"trap 'exit 0' TERM; {{ {script}; }} & wait $!"],
        "Labels": {LABEL_STACK: "actions-test"},
        "HostConfig": {"NetworkMode": "none"},
        **extra,
    }


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def state(engine: Engine, name: str) -> dict[str, Any]:
    data: dict[str, Any] = engine.client.api.inspect_container(name)
    return data


def test_pull_reports_layer_progress_and_leaves_the_image(engine: Engine, tmp_path: Path) -> None:
    # An image of its own, with a layer no other test has: the session's image may be held by
    # another test's container, and an engine that has every layer reports none of them.
    size = 4096 + uuid.uuid4().int % 4096
    build_busybox_layout(tmp_path / "layout", extra_layers=1, extra_layer_size=size)
    ref = skopeo_push(tmp_path / "layout", engine.registry, f"progress:{size}")
    updates = Updates()
    pull_image(engine.adapter, ref, ctx=StepContext("pull", updates))
    try:
        assert engine.client.api.inspect_image(ref)["Id"].startswith("sha256:")
        assert updates.texts, "no progress reported"
        assert updates.texts[-1].startswith("2/2 layers")
    finally:
        engine.client.api.remove_image(ref, force=True)


def test_pull_of_a_missing_image_fails_with_the_engines_reason(
    engine: Engine,
) -> None:
    with pytest.raises(StepFailed, match=r"pull .*nothere"):
        pull_image(engine.adapter, f"{engine.registry.host}/nothere:1")


def test_network_and_volume_lifecycle(engine: Engine) -> None:
    net, vol = unique("net"), unique("vol")
    create_network(engine.adapter, {"Name": net, "Driver": "bridge", "Labels": {"a": "b"}})
    create_volume(engine.adapter, {"Name": vol, "Labels": {"a": "b"}})
    try:
        assert engine.client.api.inspect_network(net)["Labels"] == {"a": "b"}
        assert engine.client.api.inspect_volume(vol)["Labels"] == {"a": "b"}
        with pytest.raises(StepFailed, match=f"create network {net}"):
            create_network(engine.adapter, {"Name": net, "Driver": "bridge"})
    finally:
        remove_network(engine.adapter, net)
        remove_volume(engine.adapter, vol)
    remove_network(engine.adapter, net)  # gone already: still fine
    with pytest.raises(docker.errors.NotFound):
        engine.client.api.inspect_volume(vol)


def test_container_joins_every_network_with_its_aliases(
    engine: Engine, image: str, names: list[str]
) -> None:
    nets = [unique("n1"), unique("n2")]
    for net in nets:
        create_network(engine.adapter, {"Name": net, "Driver": "bridge"})
    name = unique("multi")
    names.append(name)
    try:
        create_container(
            engine.adapter,
            name,
            {
                "Image": image,
                "Cmd": ["sleep", "60"],
                "NetworkingConfig": {
                    "EndpointsConfig": {
                        nets[0]: {"Aliases": ["first"]},
                        nets[1]: {"Aliases": ["second"]},
                    }
                },
            },
        )
        networks = state(engine, name)["NetworkSettings"]["Networks"]
        assert set(networks) == set(nets)
        assert "second" in networks[nets[1]]["Aliases"]
    finally:
        remove_container(engine.adapter, name)
        for net in nets:
            remove_network(engine.adapter, net)


def test_healthy_wait_passes_and_unhealthy_fails_fast_with_the_check_output(
    engine: Engine, image: str, names: list[str]
) -> None:
    good, bad = unique("good"), unique("bad")
    names += [good, bad]
    create_container(
        engine.adapter, good, body(image, "touch /tmp/ok; sleep 60", Healthcheck=HEALTHY)
    )
    check = {**HEALTHY, "Test": ["CMD-SHELL", "echo db not ready >&2; exit 1"]}
    create_container(
        engine.adapter,
        bad,
        body(image, "echo starting up; sleep 60", Healthcheck=check),
    )
    start_container(engine.adapter, good)
    start_container(engine.adapter, bad)
    wait_for(engine.adapter, good, "healthy")
    with pytest.raises(StepFailed, match="is unhealthy") as failure:
        wait_for(engine.adapter, bad, "healthy")
    assert "db not ready" in failure.value.report
    assert "starting up" in failure.value.report  # the log tail


def test_healthy_condition_without_a_healthcheck_fails(
    engine: Engine, image: str, names: list[str]
) -> None:
    name = unique("nocheck")
    names.append(name)
    create_container(engine.adapter, name, body(image, "sleep 60"))
    start_container(engine.adapter, name)
    with pytest.raises(StepFailed, match="has no health check"):
        wait_for(engine.adapter, name, "healthy")


def test_run_once_succeeds_on_zero_and_reports_a_non_zero_exit(
    engine: Engine, image: str, names: list[str]
) -> None:
    ok, failing = unique("job-ok"), unique("job-bad")
    names += [ok, failing]
    create_container(engine.adapter, ok, body(image, "echo migrated"))
    run_once(engine.adapter, ok)
    wait_for(engine.adapter, ok, "completed")
    create_container(engine.adapter, failing, body(image, "echo cannot migrate; exit 3"))
    with pytest.raises(StepFailed, match="exited with code 3") as failure:
        run_once(engine.adapter, failing)
    assert "exited with code 3" in failure.value.report
    assert "cannot migrate" in failure.value.report


def test_replace_is_gated_on_health_and_keeps_the_old_one_when_the_new_fails(
    engine: Engine, image: str, names: list[str]
) -> None:
    name = unique("svc")
    names.append(name)
    create_container(
        engine.adapter, name, body(image, "touch /tmp/ok; sleep 60", Healthcheck=HEALTHY)
    )
    start_container(engine.adapter, name)
    old_id = state(engine, name)["Id"]
    broken = body(image, "echo v2 broken; sleep 60", Healthcheck=HEALTHY)
    with pytest.raises(StepFailed, match="keeps running") as failure:
        replace_container(engine.adapter, name, broken)
    assert "v2 broken" in failure.value.report
    assert state(engine, name)["Id"] == old_id
    assert state(engine, name)["State"]["Running"]
    with pytest.raises(docker.errors.NotFound):
        state(engine, name + TEMP_SUFFIX)
    fixed = body(image, "touch /tmp/ok; echo v3; sleep 60", Healthcheck=HEALTHY)
    replace_container(engine.adapter, name, fixed)
    now = state(engine, name)
    assert now["Id"] != old_id
    assert "echo v3; sleep 60" in now["Config"]["Cmd"][-1]
    assert now["State"]["Health"]["Status"] == "healthy"


def test_replace_with_a_port_clash_restores_the_old_container(
    engine: Engine, image: str, names: list[str]
) -> None:
    name = unique("port")
    names.append(name)
    port = str(free_port())
    published = {
        "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": port}]}},
    }
    create_container(
        engine.adapter,
        name,
        body(image, "touch /tmp/ok; sleep 60", Healthcheck=HEALTHY, **published),
    )
    start_container(engine.adapter, name)
    old_id = state(engine, name)["Id"]
    broken = body(image, "echo v2 broken; sleep 60", Healthcheck=HEALTHY, **published)
    with pytest.raises(StepFailed, match="started again") as failure:
        replace_container(engine.adapter, name, broken)
    assert "v2 broken" in failure.value.report
    restored = state(engine, name)
    assert restored["Id"] == old_id
    assert restored["State"]["Running"]
    good = body(image, "touch /tmp/ok; sleep 60", Healthcheck=HEALTHY, **published)
    replace_container(engine.adapter, name, good)
    replaced = state(engine, name)
    assert replaced["Id"] != old_id
    assert replaced["HostConfig"]["PortBindings"]["80/tcp"][0]["HostPort"] == port
