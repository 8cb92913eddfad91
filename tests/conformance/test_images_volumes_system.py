"""Images, volumes, the system endpoints and the absent swarm, side by side on declarund and
dockerd 20.10."""

from __future__ import annotations

import http.client
import json
import socket
from typing import Any

import pytest

from tests.conformance.conftest import Pair, Side, unique
from tests.support.conformance import API_VERSION, outcome, shape_differences


def test_image_inspect_list_and_history_have_dockerds_shape(pair: Pair) -> None:
    docs = {}
    for side in pair.both:
        api = side.api
        docs[side.kind] = (
            api.inspect_image(side.image),
            next(i for i in api.images() if side.image in (i["RepoTags"] or [])),
            api.history(side.image),
        )
    for index in range(3):
        assert shape_differences(docs["dockerd"][index], docs["declarund"][index],
                                 ignore=("GraphDriver.Data",)) == [], index  # fmt: skip


def test_loading_a_bad_archive_answers_with_an_error_in_the_stream(pair: Pair) -> None:
    for side in pair.both:
        answer = side.api.load_image(b"this is not a tar archive at all" * 100)
        messages = list(answer)
        assert len(messages) == 1, (side.kind, messages)
        assert set(messages[0]) == {"error", "errorDetail"}, side.kind


def _volume_scenario(side: Side) -> list[Any]:
    api = side.api
    name = unique("vol")
    made = api.create_volume(name, labels={"k": "v"})
    side.later(lambda: api.remove_volume(name))
    # A new named volume takes the image's content at its mount point; nocopy keeps it empty.
    filled = side.container(["ls", "/etc"], host_config=api.create_host_config(
        binds={name: {"bind": "/etc", "mode": "rw"}}))  # fmt: skip
    api.start(filled)
    api.wait(filled)
    empty = unique("vol")
    side.later(lambda: api.remove_volume(empty))
    nocopy = side.container(["ls", "/etc"], host_config=api.create_host_config(
        binds=[f"{empty}:/etc:nocopy"]))  # fmt: skip
    api.start(nocopy)
    api.wait(nocopy)
    listed = next(v for v in api.volumes()["Volumes"] if v["Name"] == name)
    return [
        made, api.inspect_volume(name), listed, api.logs(filled).split(),
        api.logs(nocopy).split(), outcome(lambda: api.remove_volume(name)).status,
    ]  # fmt: skip


def test_volumes_shapes_copy_up_and_in_use(pair: Pair) -> None:
    results = {side.kind: _volume_scenario(side) for side in pair.both}
    dockerd, declarund = results["dockerd"], results["declarund"]
    for index in range(3):
        assert shape_differences(dockerd[index], declarund[index]) == [], index
    # dockerd's init layer adds /etc/mtab to every container; the image has none.
    assert [n for n in dockerd[3] if n != b"mtab"] == declarund[3]
    assert b"passwd" in declarund[3]
    assert [n for n in dockerd[4] if n != b"mtab"] == declarund[4]
    assert b"passwd" not in declarund[4]
    assert dockerd[5] == declarund[5] == 409


def test_system_documents_have_dockerds_shape(pair: Pair) -> None:
    docs = {}
    for side in pair.both:
        api = side.api
        cid = side.container(["true"])
        docs[side.kind] = (api.version(), api.info(), api.df(), api.inspect_container(cid))
    version, info, df = (
        (docs["dockerd"][i], docs["declarund"][i]) for i in range(3)
    )  # fmt: skip
    assert shape_differences(*version, ignore=("Components[].Details",)) == []
    # Runtimes and the commits of containerd/runc/init are dockerd's own parts.
    assert shape_differences(*info, ignore=("Runtimes", "ContainerdCommit", "InitCommit")) == []
    # Volumes' labels: anonymous volumes carry com.docker.volume.anonymous on declarund (as
    # on dockerd 23 and later), none on dockerd 20.10.
    # BuildCache: declarund reports its classic builder's step cache; dockerd 20.10's classic
    # builder reports none (null) -- once the session has built anything they differ.
    ignored = ("Volumes[].Labels", "BuildCache")
    assert shape_differences(*df, ignore=ignored, keyed=_DF_KEYED) == []


_DF_KEYED = ("Containers[].NetworkSettings.Networks", "Containers[].Labels", "Images[].Labels")


_SWARM_PATHS = [
    ("GET", "/swarm"), ("POST", "/swarm/leave"), ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"), ("POST", "/swarm/update"), ("GET", "/nodes"),
    ("GET", "/nodes/x"), ("DELETE", "/nodes/x"), ("POST", "/nodes/x/update"),
    ("GET", "/services"), ("POST", "/services/create"), ("GET", "/services/x"),
    ("DELETE", "/services/x"), ("POST", "/services/x/update"), ("GET", "/tasks"),
    ("GET", "/tasks/x"), ("GET", "/secrets"), ("POST", "/secrets/create"),
    ("GET", "/secrets/x"), ("DELETE", "/secrets/x"), ("POST", "/secrets/x/update"),
    ("GET", "/configs"), ("POST", "/configs/create"), ("GET", "/configs/x"),
    ("DELETE", "/configs/x"), ("POST", "/configs/x/update"), ("GET", "/plugins"),
    ("GET", "/plugins/x/json"), ("DELETE", "/plugins/x"),
]  # fmt: skip


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self._path)


def _raw(side: Side, method: str, path: str) -> tuple[int, Any]:
    conn = _Unix(side.engine.host.removeprefix("unix://"))
    try:
        body = b"{}" if method == "POST" else None
        conn.request(method, f"/v{API_VERSION}{path}", body=body,
                     headers={"Content-Type": "application/json"})  # fmt: skip
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


@pytest.mark.parametrize(("method", "path"), _SWARM_PATHS)
def test_swarm_and_plugins_answer_as_a_dockerd_outside_a_swarm(
    pair: Pair, method: str, path: str
) -> None:
    assert _raw(pair.declarund, method, path) == _raw(pair.dockerd, method, path)


def test_docker_py_sees_no_swarm(pair: Pair) -> None:
    for side in pair.both:
        status = outcome(side.api.inspect_swarm)
        assert status.status == 503, side.kind
        assert status.message.startswith("This node is not a swarm manager."), side.kind
        assert side.api.info()["Swarm"]["LocalNodeState"] == "inactive"
