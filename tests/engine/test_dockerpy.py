"""The docker-py adapter: docker-py's exceptions become error kinds once, and answers become
typed values, on each engine (declarund and a real dockerd)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import docker.errors
import docker.types
import pytest
import requests
import requests.exceptions

from declarun.engine.dockerpy import error_kind, read_build_message
from declarun.engine.types import BuildEvent, BuildFailed
from declarun.errdefs import (
    Conflict,
    InvalidArgument,
    NotFound,
    SystemFailure,
    Unavailable,
    Unsupported,
)
from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port

HEALTHY = {"Test": ["CMD-SHELL", "true"], "Interval": 200_000_000, "Retries": 2}


def _api_error(status: int, explanation: str) -> docker.errors.APIError:
    response = requests.Response()
    response.status_code = status
    return docker.errors.APIError("request failed", response=response, explanation=explanation)


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, InvalidArgument),
        (404, NotFound),
        (409, Conflict),
        (422, InvalidArgument),
        (500, SystemFailure),
        (501, Unsupported),
        (503, Unavailable),
    ],
)
def test_api_errors_become_the_kind_of_their_status_with_the_engines_message(
    status: int, kind: type[Exception]
) -> None:
    translated = error_kind(_api_error(status, "no such thing: x"))
    assert type(translated) is kind
    assert str(translated) == "no such thing: x"


def test_transport_failures_are_unavailable_and_foreign_errors_are_not_disguised() -> None:
    assert isinstance(error_kind(requests.exceptions.ConnectionError("refused")), Unavailable)
    assert isinstance(error_kind(ConnectionResetError("reset")), Unavailable)
    assert isinstance(error_kind(docker.errors.InvalidArgument("bad")), InvalidArgument)
    assert error_kind(KeyError("a bug")) is None


def test_docker_py_wrapping_a_failed_connection_is_unavailable() -> None:
    # What DockerClient(...) raises when nothing answers while it asks for the API version.
    try:
        try:
            raise requests.exceptions.ConnectionError("No such file or directory")
        except requests.exceptions.ConnectionError as cause:
            raise docker.errors.DockerException("Error while fetching server API version") from (
                cause
            )
    except docker.errors.DockerException as wrapped:
        assert isinstance(error_kind(wrapped), Unavailable)
    assert isinstance(error_kind(docker.errors.DockerException("odd")), SystemFailure)


def test_build_stream_messages_become_typed_events_and_an_error_a_build_failure() -> None:
    assert read_build_message({"stream": "Step 1/2 : FROM busybox\n"}) == BuildEvent(
        output="Step 1/2 : FROM busybox\n"
    )
    assert read_build_message({"aux": {"ID": "sha256:abc"}}) == BuildEvent(image_id="sha256:abc")
    assert read_build_message({"status": "Downloading", "id": "a1b2", "progress": "[=> ]"}) == (
        BuildEvent(status="a1b2: Downloading [=> ]")
    )
    failed = {
        "errorDetail": {"code": 3, "message": "The command '/bin/sh -c exit 3' returned a "
                        "non-zero code: 3"},
        "error": "The command '/bin/sh -c exit 3' returned a non-zero code: 3",
    }  # fmt: skip
    with pytest.raises(BuildFailed, match="returned a non-zero code: 3") as caught:
        read_build_message(failed)
    assert caught.value.code == 3
    assert isinstance(caught.value, SystemFailure)
    with pytest.raises(BuildFailed) as no_code:
        read_build_message({"error": "pull access denied for nowhere"})
    assert no_code.value.code is None


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def container(engine: Engine) -> Iterator[str]:
    """A created (not started) container with a health check, a fixed port and address.

    10.99.0.0/16 is outside the pools of both test engines (dockerd's 10.100-250.x, declarund's
    172.x), so the fixed address cannot clash with a network another test made."""
    for _ in engine.adapter.pull_image(engine.image):
        pass
    name, network = _unique("ad"), _unique("adnet")
    engine.client.api.create_network(
        network,
        ipam=docker.types.IPAMConfig(pool_configs=[docker.types.IPAMPool(subnet="10.99.7.0/24")]),
    )
    port = free_port()
    engine.adapter.create_container(
        name,
        {
            "Image": engine.image,
            "Cmd": ["sleep", "60"],
            "Labels": {"dev.declarun.test": "adapter"},
            "Healthcheck": HEALTHY,
            "ExposedPorts": {"80/tcp": {}},
            "HostConfig": {
                "NetworkMode": network,
                "PortBindings": {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": str(port)}]},
            },
            "NetworkingConfig": {
                "EndpointsConfig": {network: {"IPAMConfig": {"IPv4Address": "10.99.7.9"}}}
            },
        },
    )
    try:
        yield name
    finally:
        with contextlib.suppress(docker.errors.NotFound):
            engine.client.api.remove_container(name, force=True)
        engine.client.api.remove_network(network)


def test_containers_are_typed_and_missing_or_taken_names_are_kinds(
    engine: Engine, container: str
) -> None:
    adapter = engine.adapter
    details = adapter.inspect_container(container)
    assert details.name == container
    assert details.labels["dev.declarun.test"] == "adapter"
    assert (details.state.status, details.state.running) == ("created", False)
    assert details.healthcheck is not None and details.healthcheck.test[0] == "CMD-SHELL"
    (binding,) = details.port_bindings
    assert (binding.container_port, binding.host_ip) == ("80/tcp", "127.0.0.1")
    (summary,) = [c for c in adapter.list_containers() if c.name == container]
    assert (summary.id, summary.state) == (details.id, "created")

    with pytest.raises(Conflict):
        adapter.create_container(container, {"Image": engine.image, "Cmd": ["true"]})
    missing = _unique("missing")
    with pytest.raises(NotFound):
        adapter.inspect_container(missing)
    with pytest.raises(NotFound):
        adapter.remove_container(missing, force=True)
    with pytest.raises(NotFound):
        adapter.remove_network(missing)
    with pytest.raises(NotFound):
        adapter.remove_volume(missing)
    with pytest.raises(NotFound):
        adapter.inspect_image(f"{engine.registry.host}/{missing}:1")


def test_started_container_state_health_and_logs(engine: Engine, container: str) -> None:
    adapter = engine.adapter
    adapter.start_container(container)
    details = adapter.inspect_container(container)
    assert details.state.running and details.state.health in ("starting", "healthy")
    assert list(details.ipv4_addresses.values()) == ["10.99.7.9"]
    assert adapter.container_logs(container, tail=5) == b""
    exec_id = adapter.exec_create(container, ["sh", "-c", "echo out; echo err >&2; exit 3"])
    chunks = list(adapter.exec_start(exec_id))
    assert b"".join(o for o, _ in chunks if o) == b"out\n"
    assert b"".join(e for _, e in chunks if e) == b"err\n"
    assert adapter.exec_exit_code(exec_id) == 3
    adapter.stop_container(container, timeout=0)
    stopped = adapter.inspect_container(container).state
    assert stopped.status == "exited" and not stopped.running


def test_a_failing_pull_is_a_kind(engine: Engine) -> None:
    with pytest.raises((NotFound, SystemFailure)):
        for _ in engine.adapter.pull_image(f"{engine.registry.host}/nothere:1"):
            pass
