"""Local volumes through the docker CLI and docker-py against the real declarund."""

from __future__ import annotations

import json

import docker as docker_py
import pytest

from tests.daemon.containers.extras_support import IMAGE, extras_daemon, run
from tests.support.daemon import DaemonProcess, http_request

__all__ = ["extras_daemon"]

pytestmark = pytest.mark.timeout(300)


def _ok(done: object) -> bytes:
    code = done.returncode
    assert code == 0, (done.stdout, done.stderr)
    out: bytes = done.stdout
    return out


def test_create_list_inspect_remove(extras_daemon: DaemonProcess) -> None:
    _ok(run(extras_daemon, "volume", "create", "--label", "team=a", "data1"))
    _ok(run(extras_daemon, "volume", "create", "data2"))
    names = _ok(run(extras_daemon, "volume", "ls", "-q")).split()
    assert {b"data1", b"data2"} <= set(names)
    labelled = _ok(run(extras_daemon, "volume", "ls", "-q", "--filter", "label=team=a")).split()
    assert labelled == [b"data1"]
    info = json.loads(_ok(run(extras_daemon, "volume", "inspect", "data1")))[0]
    assert info["Name"] == "data1" and info["Driver"] == "local" and info["Scope"] == "local"
    assert info["Labels"] == {"team": "a"}
    assert info["Mountpoint"] == str(extras_daemon.data_root / "volumes" / "data1" / "_data")
    assert info["CreatedAt"]
    _ok(run(extras_daemon, "volume", "rm", "data1", "data2"))
    gone = run(extras_daemon, "volume", "inspect", "data1")
    assert gone.returncode != 0 and b"no such volume" in gone.stderr


def test_data_is_shared_and_outlives_containers(extras_daemon: DaemonProcess) -> None:
    _ok(run(extras_daemon, "run", "--rm", "-v", "shared:/data", IMAGE,
            "sh", "-c", "echo persisted > /data/file"))  # fmt: skip
    out = _ok(
        run(extras_daemon, "run", "--rm", "-v", "shared:/data:ro", IMAGE, "cat", "/data/file")
    )
    assert out == b"persisted\n"
    ro = run(extras_daemon, "run", "--rm", "--mount", "type=volume,src=shared,dst=/d,readonly",
             IMAGE, "touch", "/d/x")  # fmt: skip
    assert ro.returncode != 0
    _ok(run(extras_daemon, "volume", "rm", "shared"))


def test_volume_in_use_cannot_be_removed(extras_daemon: DaemonProcess) -> None:
    cid = _ok(run(extras_daemon, "run", "-d", "-v", "busy:/data", IMAGE, "sleep", "300"))
    cid = cid.strip()
    refused = run(extras_daemon, "volume", "rm", "busy")
    assert refused.returncode != 0
    assert b"volume is in use" in refused.stderr and cid in refused.stderr
    forced = run(extras_daemon, "volume", "rm", "-f", "busy")
    assert forced.returncode != 0
    dangling = _ok(run(extras_daemon, "volume", "ls", "-q", "--filter", "dangling=true")).split()
    assert b"busy" not in dangling
    _ok(run(extras_daemon, "rm", "-f", cid.decode()))
    _ok(run(extras_daemon, "volume", "rm", "busy"))


def test_anonymous_volumes_and_prune(extras_daemon: DaemonProcess) -> None:
    cid = _ok(run(extras_daemon, "create", "-v", "/anon", IMAGE, "true")).strip().decode()
    _ok(run(extras_daemon, "start", "-a", cid))
    mounts = json.loads(_ok(run(extras_daemon, "inspect", cid)))[0]["Mounts"]
    anon = [m["Name"] for m in mounts if m.get("Destination") == "/anon"]
    assert anon and len(anon[0]) == 64
    info = json.loads(_ok(run(extras_daemon, "volume", "inspect", anon[0])))[0]
    assert "com.docker.volume.anonymous" in info["Labels"]
    _ok(run(extras_daemon, "volume", "create", "named-keep"))
    # In use: prune keeps it.
    pruned = _ok(run(extras_daemon, "volume", "prune", "-f"))
    assert anon[0].encode() not in pruned
    _ok(run(extras_daemon, "rm", cid))
    pruned = _ok(run(extras_daemon, "volume", "prune", "-f"))
    assert anon[0].encode() in pruned
    # API >= 1.42 prunes only anonymous volumes unless all=true.
    assert b"named-keep" in _ok(run(extras_daemon, "volume", "ls", "-q"))
    _ok(run(extras_daemon, "volume", "prune", "-f", "--all"))
    assert b"named-keep" not in _ok(run(extras_daemon, "volume", "ls", "-q"))


def test_rm_v_removes_anonymous_volumes(extras_daemon: DaemonProcess) -> None:
    cid = _ok(run(extras_daemon, "create", "-v", "/scratch", IMAGE, "true")).strip().decode()
    mounts = json.loads(_ok(run(extras_daemon, "inspect", cid)))[0]["Mounts"]
    _ok(run(extras_daemon, "start", "-a", cid))
    name = next(m["Name"] for m in mounts if m.get("Destination") == "/scratch")
    _ok(run(extras_daemon, "rm", "-v", cid))
    assert name.encode() not in _ok(run(extras_daemon, "volume", "ls", "-q"))


def test_docker_py_and_errors(extras_daemon: DaemonProcess) -> None:
    client = docker_py.DockerClient(base_url=extras_daemon.url)
    try:
        volume = client.volumes.create("pyvol", labels={"x": "1"})
        assert volume.attrs["Labels"] == {"x": "1"}
        assert client.volumes.get("pyvol").name == "pyvol"
        assert "pyvol" in [v.name for v in client.volumes.list(filters={"name": "pyv"})]
        volume.remove()
        with pytest.raises(docker_py.errors.NotFound):
            client.volumes.get("pyvol")
    finally:
        client.close()
    bad = http_request(extras_daemon.socket_path, "POST", "/volumes/create",
                       body=b'{"Name": "../x"}', headers={"Content-Type": "application/json"})  # fmt: skip
    assert bad.status == 400 and b"invalid characters" in bad.body
    tmpfs = http_request(extras_daemon.socket_path, "POST", "/volumes/create",
                         body=b'{"Name": "tmpvol", "DriverOpts": {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}}',
                         headers={"Content-Type": "application/json"})  # fmt: skip
    assert tmpfs.status == 201, tmpfs.body
    out = _ok(run(extras_daemon, "run", "--rm", "-v", "tmpvol:/t", IMAGE, "sh", "-c",
                  "grep ' /t ' /proc/mounts"))  # fmt: skip
    assert b"tmpfs" in out
    _ok(run(extras_daemon, "volume", "rm", "tmpvol"))
