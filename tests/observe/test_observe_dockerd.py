"""observe() against a real Docker engine, and the desired create bodies accepted by it.

The session's dockerd (``dockerd_engine``, tests/support/engine_fixtures.py) pulls a busybox
image from the session's registry, pushed there under a name of this module's own. The test
creates the stack's objects exactly from ``desired_state`` bodies (a minimal stand-in for
apply), then checks that ``observe`` reads them back so that ``diff`` plans nothing, that the
snapshot's fingerprint moves when the world does, and that the plan names what changed.
Skipped, with the reason, where dockerd cannot run.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from declarun.engine.dockerpy import DockerEngine
from declarun.observe.state import observe
from declarun.plan.desired import DesiredState, desired_state
from declarun.plan.diff import diff, plan_destroy
from declarun.plan.observed import ObservedState
from declarun.reconcile.lockfile import resolve_lock
from tests.plan.helpers import load
from tests.support.engine_fixtures import Engine, EngineImage
from tests.support.images import OciImage, skopeo_push

pytestmark = pytest.mark.root


@pytest.fixture(scope="module")
def pushed(engine_registry: EngineImage) -> tuple[str, OciImage]:
    """The session's busybox under a name no other test pulls, so it starts absent."""
    oci = engine_registry.oci
    return skopeo_push(oci.layout, engine_registry.registry, "declarun/busybox:1.36"), oci


@pytest.fixture
def client(dockerd_engine: Engine, pushed: tuple[str, OciImage]) -> Iterator[Any]:
    """The session's dockerd, handed back as found: every container, user network and volume
    is removed after each test, and the references to this module's image (its tag and the
    digest pins), which other tests would see as extra ``RepoDigests`` of their busybox."""
    client = dockerd_engine.client
    repository = pushed[0].rsplit(":", 1)[0]
    try:
        yield client
    finally:
        for container in client.api.containers(all=True):
            client.api.remove_container(container["Id"], force=True, v=True)
        for network in client.api.networks():
            if network["Name"] not in ("bridge", "host", "none"):
                client.api.remove_network(network["Id"])
        for volume in client.api.volumes().get("Volumes") or ():
            client.api.remove_volume(volume["Name"], force=True)
        # Tags first: removing one also drops the digest dockerd recorded with its pull, so
        # only references pulled by digest are left for the second pass.
        for key, separator in (("RepoTags", ":"), ("RepoDigests", "@")):
            for image in client.api.images():
                for ref in image.get(key) or ():
                    if ref.startswith(f"{repository}{separator}"):
                        client.api.remove_image(ref)


def _stack_text(ref: str) -> str:
    return f"""
stack: obs
images:
  bb: {{ref: "{ref}"}}
volumes:
  data: {{labels: {{purpose: test}}}}
networks:
  back: {{subnet: 172.31.250.0/24}}
containers:
  job:
    image: bb
    run: once
    command: ["sh", "-c", "echo done > /data/done"]
    volumes: ["data:/data"]
    networks: [back]
  web:
    image: bb
    command: ["sh", "-c", "exec sleep 3600"]
    env: {{MODE: one, DB_PASSWORD: hunter2}}
    ports: ["127.0.0.1::80"]
    volumes: ["data:/data:ro", "./conf:/etc/app:ro"]
    mounts: [{{type: tmpfs, target: /tmp, tmpfs: {{size: 1m}}}}]
    networks:
      back: {{aliases: [front], ipv4_address: 172.31.250.10}}
      default:
    healthcheck: {{test: ["CMD", "true"], interval: 1s, retries: 3}}
    resources: {{cpus: 0.5, memory: 64m, pids: 50}}
    cap_drop: [NET_RAW]
    stop_grace_period: 2s
    depends_on: {{job: {{condition: completed}}}}
"""


def _wait_for(predicate: Any, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.2)


def _create_all(client: Any, desired: DesiredState) -> None:
    """Create everything from the desired bodies, as apply would (minus ordering and waits)."""
    import docker.types

    for volume in desired.volumes.values():
        body = volume.body
        client.api.create_volume(
            body["Name"],
            driver=body["Driver"],
            driver_opts=dict(body["DriverOpts"]),
            labels=dict(body["Labels"]),
        )
    for network in desired.networks.values():
        body = network.body
        ipam = None
        if "IPAM" in body:
            pools = [
                docker.types.IPAMPool(subnet=p["Subnet"], gateway=p.get("Gateway"))
                for p in body["IPAM"]["Config"]
            ]
            ipam = docker.types.IPAMConfig(pool_configs=pools)
        client.api.create_network(
            body["Name"],
            driver=body["Driver"],
            internal=body["Internal"],
            labels=dict(body["Labels"]),
            ipam=ipam,
        )
    for container in sorted(desired.containers.values(), key=lambda c: c.run != "once"):
        client.api.create_container_from_config(container.create_body(), container.engine_name)
        for network, connect in container.connect_bodies():
            endpoint = connect["EndpointConfig"]
            client.api.connect_container_to_network(
                container.engine_name,
                network,
                aliases=endpoint.get("Aliases"),
                ipv4_address=(endpoint.get("IPAMConfig") or {}).get("IPv4Address"),
            )
        client.api.start(container.engine_name)
        if container.run == "once":
            assert client.api.wait(container.engine_name)["StatusCode"] == 0


def _settled(client: Any, name: str) -> bool:
    state = client.api.inspect_container(name)["State"]
    return bool(state["Running"]) and state.get("Health", {}).get("Status") == "healthy"


def test_applied_desired_state_is_observed_as_up_to_date(
    client: Any, pushed: tuple[str, OciImage], tmp_path: Path
) -> None:
    ref, image = pushed
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "app.ini").write_text("a=1\n")
    stack = load(tmp_path, _stack_text(ref))
    before = observe(DockerEngine(client), stack)
    assert before.platform == "linux/amd64"
    assert before.images == {}
    plan = diff(stack, before)
    assert plan.change("image:bb").action == "pull"

    client.images.pull(ref)
    snapshot = observe(DockerEngine(client), stack)
    desired = desired_state(stack, inputs=snapshot.inputs, platform=snapshot.platform)
    _create_all(client, desired)
    _wait_for(lambda: _settled(client, "obs-web"), "obs-web to be healthy")

    snapshot = observe(DockerEngine(client), stack)
    assert diff(stack, snapshot).is_empty, diff(stack, snapshot).actionable
    web, job = snapshot.containers["obs-web"], snapshot.containers["obs-job"]
    assert (web.state, web.health, web.exit_code) == ("running", "healthy", None)
    assert (job.state, job.exit_code) == ("exited", 0)
    assert set(web.networks) == {"obs-back", "obs-default"}
    assert web.volumes == ("obs-data",)
    assert len(web.ports) == 1 and web.ports[0].startswith("127.0.0.1:")
    observed_image = snapshot.images[ref]
    assert web.image_id == observed_image.id == image.config.digest
    assert f"{ref.rsplit(':', 1)[0]}@{image.manifest.digest}" in observed_image.repo_digests
    assert set(snapshot.networks) == {"obs-back", "obs-default"}
    assert set(snapshot.volumes) == {"obs-data"}
    assert snapshot.inputs == {
        f"bind:{tmp_path / 'conf'}": snapshot.inputs[f"bind:{tmp_path / 'conf'}"]
    }
    # What the engine made of the body: the fields that matter arrived.
    inspect = client.api.inspect_container("obs-web")
    host = inspect["HostConfig"]
    assert (host["NanoCpus"], host["Memory"], host["PidsLimit"]) == (
        500_000_000,
        64 * 1024 * 1024,
        50,
    )
    assert host["CapDrop"] == ["NET_RAW"]
    assert inspect["NetworkSettings"]["Networks"]["obs-back"]["IPAddress"] == "172.31.250.10"
    assert "front" in inspect["NetworkSettings"]["Networks"]["obs-back"]["Aliases"]
    assert "hunter2" not in str(inspect["Config"]["Labels"])

    # The fingerprint is stable while nothing changes, and moves when something does.
    assert observe(DockerEngine(client), stack).fingerprint() == snapshot.fingerprint()
    client.api.stop("obs-web", timeout=1)
    stopped = observe(DockerEngine(client), stack)
    assert stopped.fingerprint() != snapshot.fingerprint()
    change = diff(stack, stopped).change("container:web")
    assert (change.action, change.reasons[0].kind) == ("start", "stopped")
    assert stopped.containers["obs-web"].exit_code is not None

    # Edits show up as field and input reasons.
    (tmp_path / "conf" / "app.ini").write_text("a=2\n")
    edited = load(tmp_path, _stack_text(ref).replace("MODE: one", "MODE: two"))
    change = diff(edited, observe(DockerEngine(client), edited)).change("container:web")
    assert change.action == "recreate"
    assert [(r.kind, r.field) for r in change.reasons] == [
        ("field_changed", "env.MODE"),
        ("input_changed", str(tmp_path / "conf")),
    ]

    # A smaller stack prunes, destroy removes all that is owned, dependents first.
    smaller = load(tmp_path, _stack_text(ref).split("  web:")[0])
    plan = diff(smaller, observe(DockerEngine(client), smaller))
    assert plan.change("container:web").action == "remove"
    assert plan.change("network:default").action == "remove"
    destroy = plan_destroy(stack, observe(DockerEngine(client), "obs"), volumes=True)
    assert {c.id for c in destroy.actionable} == {
        "container:job",
        "container:web",
        "network:back",
        "network:default",
        "volume:data",
    }


def test_foreign_objects_holding_our_names_are_seen_and_never_owned(
    client: Any, pushed: tuple[str, OciImage], tmp_path: Path
) -> None:
    ref, _image = pushed
    client.images.pull(ref)
    client.api.create_container(ref, name="obs-web", command=["true"], labels={"someone": "else"})
    client.api.create_volume("obs-data")
    client.api.create_container(ref, name="unrelated", command=["true"])
    stack = load(tmp_path, _stack_text(ref).replace('"./conf:/etc/app:ro"', '"/etc:/etc/host:ro"'))
    snapshot = observe(DockerEngine(client), stack)
    assert set(snapshot.containers) == {"obs-web"}
    assert not snapshot.owns(snapshot.containers["obs-web"].labels)
    plan = diff(stack, snapshot)
    assert {c.id for c in plan.errors} == {"container:web", "volume:data"}
    assert (
        observe(DockerEngine(client), "obs").containers == {}
    )  # by name alone: only what is owned
    assert plan_destroy(None, observe(DockerEngine(client), "obs")).is_empty


def test_lock_resolution_through_the_engine_matches_the_registry(
    client: Any, pushed: tuple[str, OciImage], tmp_path: Path
) -> None:
    ref, image = pushed
    stack = load(tmp_path, _stack_text(ref).replace('"./conf:/etc/app:ro"', '"/etc:/etc/host:ro"'))
    lock = resolve_lock(DockerEngine(client), stack, "linux/amd64")
    assert lock.images[ref].platforms == {"linux/amd64": image.manifest.digest}
    pinned = lock.pinned(ref, "linux/amd64")
    assert pinned == f"{ref.rsplit(':', 1)[0]}@{image.manifest.digest}"
    # With the lock, the pinned reference is what is looked up, pulled and run.
    assert (
        diff(stack, observe(DockerEngine(client), stack, lock=lock), lock=lock)
        .change("image:bb")
        .engine_name
        == pinned
    )
    client.images.pull(pinned)
    locked = observe(DockerEngine(client), stack, lock=lock)
    assert pinned in locked.images
    assert diff(stack, locked, lock=lock).change("image:bb").action == "noop"


def test_snapshot_data_round_trip(
    client: Any, pushed: tuple[str, OciImage], tmp_path: Path
) -> None:
    ref, _image = pushed
    client.images.pull(ref)
    client.api.create_container(
        ref, name="obs-x", command=["true"], labels={"dev.declarun.stack": "obs"}
    )
    snapshot = observe(DockerEngine(client), "obs")
    assert ObservedState.from_data(snapshot.to_data()) == snapshot
    assert ObservedState.from_data(snapshot.to_data()).fingerprint() == snapshot.fingerprint()
