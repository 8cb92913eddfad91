"""Events: the bus (pure logic), the /events endpoint, seen by the docker CLI and docker-py."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import docker
import pytest

from declarun.daemon.api import system
from declarun.daemon.api.event_filter import event_matcher
from declarun.daemon.api.server import make_app
from declarun.daemon.config import DaemonConfig
from declarun.daemon.containers.lifecycle.service import ContainerCounts
from declarun.daemon.events import Event, EventBus
from declarun.daemon.filters import parse_filters, parse_time
from declarun.errdefs import InvalidArgument
from tests.support.daemon import DaemonProcess, ServedApp, http_request, running_daemon, serving_app
from tests.support.swagger import validate

DOCKER = shutil.which("docker") or "/usr/local/bin/docker"
SECOND = 1_000_000_000


# --- the bus ---------------------------------------------------------------------------


def test_event_json_has_docker_shape_and_legacy_fields() -> None:
    ev = Event(
        "container",
        "start",
        "c" * 64,
        {"name": "web", "image": "busybox"},
        1_700_000_000_123_456_789,
    )
    doc = ev.to_json()
    validate(doc, "EventMessage")
    assert doc["Type"] == "container" and doc["Action"] == "start"
    assert doc["Actor"] == {"ID": "c" * 64, "Attributes": {"name": "web", "image": "busybox"}}
    assert doc["scope"] == "local"
    assert (doc["time"], doc["timeNano"]) == (1_700_000_000, 1_700_000_000_123_456_789)
    assert (doc["status"], doc["id"], doc["from"]) == ("start", "c" * 64, "busybox")
    image = Event("image", "pull", "busybox:latest", {"name": "busybox"}).to_json()
    assert (image["status"], image["id"]) == ("pull", "busybox:latest") and "from" not in image
    network = Event("network", "create", "n1", {"name": "net"}).to_json()
    assert "status" not in network and "id" not in network


def test_ring_buffer_is_bounded_and_replays_from_since() -> None:
    bus = EventBus(capacity=4)
    for i in range(10):
        bus.publish_event(Event("volume", "create", f"v{i}", time_nano=i * SECOND))
    assert [e.actor_id for e in bus.recent()] == ["v6", "v7", "v8", "v9"]

    async def replay(since: int | None, until: int | None) -> list[str]:
        with bus.subscribe(since, until) as sub:
            return [e.actor_id for e in sub.backlog]

    assert asyncio.run(replay(7 * SECOND, None)) == ["v7", "v8", "v9"]
    assert asyncio.run(replay(7 * SECOND, 8 * SECOND)) == ["v7", "v8"]
    assert asyncio.run(replay(None, 6 * SECOND)) == ["v6"]
    assert asyncio.run(replay(None, None)) == []  # no bound: live events only, as dockerd


def test_publish_from_threads_reaches_subscriber_in_order() -> None:
    bus = EventBus()
    per_thread = 200

    async def main() -> list[Event]:
        with bus.subscribe() as sub:

            def worker(n: int) -> None:
                for i in range(per_thread):
                    bus.publish("container", "update", f"t{n}-{i}")

            threads = [threading.Thread(target=worker, args=(n,)) for n in range(4)]
            for t in threads:
                t.start()
            got = []
            while len(got) < 4 * per_thread:
                ev = await sub.next()
                assert ev is not None
                got.append(ev)
            for t in threads:
                t.join()
            return got

    got = asyncio.run(main())
    assert got == bus.recent()[-len(got) :]  # same order as the ring buffer
    for n in range(4):
        mine = [int(e.actor_id.split("-")[1]) for e in got if e.actor_id.startswith(f"t{n}-")]
        assert mine == list(range(per_thread))


def test_close_ends_subscriptions() -> None:
    bus = EventBus()

    async def main() -> tuple[Event | None, Event | None]:
        sub = bus.subscribe()
        waiter = asyncio.ensure_future(sub.next())
        await asyncio.sleep(0)
        bus.close()
        late = bus.subscribe()
        return await waiter, await late.next()

    assert asyncio.run(main()) == (None, None)
    assert bus.subscriber_count == 0


def test_slow_subscriber_is_dropped_not_unbounded() -> None:
    bus = EventBus(max_pending=3)

    async def main() -> list[Event | None]:
        with bus.subscribe() as sub:
            for i in range(10):
                bus.publish("image", "tag", f"i{i}")
            return [await sub.next() for _ in range(4)]

    got = asyncio.run(main())
    assert [e.actor_id for e in got[:3] if e] == ["i0", "i1", "i2"]
    assert got[3] is None


# --- filters and times (pure) -------------------------------------------------------------

C = Event(
    "container", "start", "abcdef123456", {"name": "web", "image": "busybox:latest", "app": "shop"}
)
EXEC = Event("container", "exec_start: sh -c true", "abcdef123456", {"name": "web"})
IMG = Event("image", "tag", "sha256:1234", {"name": "registry.test:5000/busybox:v1"})
NET = Event("network", "create", "n0123", {"name": "backend", "type": "bridge"})
ALL = [C, EXEC, IMG, NET]


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        ({}, [C, EXEC, IMG, NET]),
        ({"type": ["container"]}, [C, EXEC]),
        ({"type": {"image": True, "network": True}}, [IMG, NET]),  # legacy CLI encoding
        ({"event": ["start"]}, [C]),
        ({"event": ["exec_start"]}, [EXEC]),  # prefix match for actions with a detail
        ({"container": ["web"]}, [C, EXEC]),
        ({"container": ["abcdef"]}, [C, EXEC]),  # ID prefix
        ({"container": ["db"]}, []),
        ({"image": ["busybox"]}, [C]),  # container's image attribute, tag stripped
        ({"image": ["registry.test:5000/busybox"]}, [IMG]),
        ({"label": ["app=shop"]}, [C]),
        ({"label": ["app"]}, [C]),
        ({"label": ["app=other"]}, []),
        ({"network": ["backend"]}, [NET]),
        ({"type": ["container"], "event": ["tag"]}, []),
    ],
)
def test_event_filters(filters: dict[str, object], expected: list[Event]) -> None:
    include = event_matcher(parse_filters(json.dumps(filters)))
    assert [e for e in ALL if include(e)] == expected


def test_unknown_filter_is_bad_request() -> None:
    with pytest.raises(InvalidArgument, match="invalid filter 'colour'"):
        parse_filters('{"colour": ["red"]}').validate({"type"})
    with pytest.raises(InvalidArgument):
        parse_filters("{not json")


@pytest.mark.parametrize(
    ("raw", "nanos"),
    [
        ("1700000000", 1_700_000_000 * SECOND),
        ("1700000000.5", 1_700_000_000 * SECOND + 500_000_000),
        ("1700000000.000000001", 1_700_000_000 * SECOND + 1),
        ("2023-11-14T22:13:20Z", 1_700_000_000 * SECOND),
        ("2023-11-14T22:13:20.123456789Z", 1_700_000_000 * SECOND + 123_456_789),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000 * SECOND),
        ("10m", 1_800_000_000 * SECOND - 600 * SECOND),
        ("1h30m", 1_800_000_000 * SECOND - 5400 * SECOND),
    ],
)
def test_event_times(raw: str, nanos: int) -> None:
    assert parse_time(raw, "since", now_nano=1_800_000_000 * SECOND) == nanos


def test_bad_event_time() -> None:
    assert parse_time("", "since") is None
    with pytest.raises(InvalidArgument, match="invalid value for until"):
        parse_time("yesterday", "until")


# --- the real daemon: daemon reload events from SIGHUP ------------------------------------


@pytest.fixture(scope="module")
def daemon(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DaemonProcess]:
    with running_daemon(tmp_path_factory.mktemp("events")) as d:
        yield d


def _reload(daemon: DaemonProcess, client: docker.APIClient) -> None:
    """SIGHUP the daemon and wait until the reload event is visible (no timing assumed)."""
    before = len(_replay(client))
    os.kill(daemon.process.pid, signal.SIGHUP)
    deadline = time.monotonic() + 20
    while len(_replay(client)) == before:
        assert time.monotonic() < deadline, "reload event never appeared"
        time.sleep(0.05)


def _replay(client: docker.APIClient) -> list[dict[str, object]]:
    return list(client.events(since=0, until=f"{time.time():.9f}", decode=True))


@pytest.fixture
def api(daemon: DaemonProcess) -> Iterator[docker.APIClient]:
    c = docker.APIClient(base_url=daemon.url, version="1.45", timeout=30)
    try:
        yield c
    finally:
        c.close()


def test_docker_cli_replays_past_events_and_stops_at_until(
    daemon: DaemonProcess, api: docker.APIClient
) -> None:
    since = time.time() - 1
    _reload(daemon, api)
    until = time.time() + 0.5  # in the future: the stream must end by itself
    result = subprocess.run(
        [
            DOCKER,
            "system",
            "events",
            "--since",
            f"{since:.3f}",
            "--until",
            f"{until:.3f}",
            "--format",
            "{{json .}}",
        ],
        capture_output=True,
        text=True,
        env=daemon.env(),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    events = [json.loads(line) for line in result.stdout.splitlines()]
    assert events and all(e["Type"] == "daemon" and e["Action"] == "reload" for e in events)
    assert events[-1]["Actor"]["Attributes"]["name"]


def test_docker_cli_filters(daemon: DaemonProcess, api: docker.APIClient) -> None:
    _reload(daemon, api)
    now = f"{time.time():.3f}"
    base = [DOCKER, "events", "--since", "0", "--until", now, "--format", "{{.Type}} {{.Action}}"]
    kept = subprocess.run(
        [*base, "--filter", "type=daemon"],
        capture_output=True,
        text=True,
        env=daemon.env(),
        timeout=60,
        check=False,
    )
    dropped = subprocess.run(
        [*base, "--filter", "type=container"],
        capture_output=True,
        text=True,
        env=daemon.env(),
        timeout=60,
        check=False,
    )
    assert kept.returncode == 0 and dropped.returncode == 0, kept.stderr + dropped.stderr
    assert "daemon reload" in kept.stdout
    assert dropped.stdout.strip() == ""


def test_docker_py_live_stream_is_flushed_per_event(
    daemon: DaemonProcess, api: docker.APIClient
) -> None:
    stream = api.events(decode=True)  # returns once the headers are in: nothing buffered
    try:
        os.kill(daemon.process.pid, signal.SIGHUP)
        event = next(iter(stream))
        validate(event, "EventMessage")
        assert (event["Type"], event["Action"]) == ("daemon", "reload")
    finally:
        stream.close()


def test_docker_py_events_with_since_until(daemon: DaemonProcess, api: docker.APIClient) -> None:
    # docker-py sends whole seconds: bound the window generously, check what is inside.
    start = datetime.now(UTC)
    _reload(daemon, api)
    until = datetime.fromtimestamp(time.time() + 2, UTC)
    client = docker.DockerClient(base_url=daemon.url, version="1.45")
    try:
        events = list(client.events(since=start, until=until, decode=True))  # ends by itself
    finally:
        client.close()
    assert events and {e["Action"] for e in events} == {"reload"}
    assert events[-1]["time"] >= int(start.timestamp())
    for e in events:
        validate(e, "EventMessage")


def test_since_after_until_is_400(daemon: DaemonProcess) -> None:
    result = http_request(daemon.socket_path, "GET", "/v1.45/events?since=200&until=100")
    assert result.status == 400
    assert "cannot be after" in json.loads(result.body)["message"]


def test_bad_filter_is_400(daemon: DaemonProcess) -> None:
    result = http_request(
        daemon.socket_path,
        "GET",
        '/v1.45/events?until=1&filters={"colour":["red"]}'.replace('"', "%22"),
    )
    assert result.status == 400
    assert json.loads(result.body) == {"message": "invalid filter 'colour'"}


def _wait_for_listeners(api: docker.APIClient, wanted: int) -> None:
    deadline = time.monotonic() + 20
    while api.info()["NEventsListener"] != wanted:
        assert time.monotonic() < deadline, f"NEventsListener never became {wanted}"
        time.sleep(0.05)


def test_listener_is_counted_and_released_on_disconnect(
    daemon: DaemonProcess, api: docker.APIClient
) -> None:
    _wait_for_listeners(api, 0)
    stream = api.events(decode=True)
    _wait_for_listeners(api, 1)
    stream.close()  # the client hangs up: the daemon must drop the subscription
    _wait_for_listeners(api, 0)


# --- container and image events published inside the daemon (in-process server) ----------


class _EmptyDaemon:
    """What /info counts of a daemon with nothing in it (only /events is under test here)."""

    storage_driver = "overlay2"

    def container_counts(self) -> ContainerCounts:
        return ContainerCounts()

    def image_count(self) -> int:
        return 0


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[ServedApp, EventBus]]:
    events = EventBus()
    config = DaemonConfig(data_root=tmp_path / "root")
    routes = system.routes(config, "test-engine", events, _EmptyDaemon())
    with serving_app(
        lambda: make_app(routes, on_shutdown=[events.close]), tmp_path / "app.sock"
    ) as app:
        yield app, events


def test_events_from_worker_threads_reach_docker_py(
    served: tuple[ServedApp, EventBus],
) -> None:
    app, events = served
    client = docker.APIClient(base_url=f"unix://{app.socket_path}", version="1.45", timeout=30)
    try:
        stream = client.events(decode=True, filters={"container": ["web"]})
        worker = threading.Thread(
            target=lambda: [
                events.publish("image", "pull", "busybox:latest", {"name": "busybox"}),
                events.publish("container", "create", "c1", {"name": "db", "image": "busybox"}),
                events.publish("container", "start", "c2", {"name": "web", "image": "busybox"}),
            ]
        )
        worker.start()
        worker.join()
        event = next(iter(stream))
        stream.close()
        validate(event, "EventMessage")
        assert (event["status"], event["id"], event["from"]) == ("start", "c2", "busybox")

        now = time.time()
        replay = list(
            client.events(since=0, until=now, decode=True, filters={"image": ["busybox"]})
        )
        assert [(e["Type"], e["Action"]) for e in replay] == [
            ("image", "pull"),
            ("container", "create"),
            ("container", "start"),
        ]
    finally:
        client.close()
