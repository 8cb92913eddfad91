"""Exec and the container's files (archive, export, diff, commit), side by side on declarund
and dockerd 20.10."""

from __future__ import annotations

import io
import socket
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.conformance.conftest import Pair, Side, unique
from tests.support.conformance import outcome, tar_with


def _read_all(sock: Any) -> bytes:
    """Everything until the daemon ends the stream; the socket is closed afterwards."""
    raw = getattr(sock, "_sock", sock)
    try:
        raw.settimeout(30)
        data = b""
        while chunk := raw.recv(65536):
            data += chunk
        return data
    finally:
        raw.close()
        sock.close()


def _exec_outputs(side: Side) -> list[Any]:
    api = side.api
    cid = side.container(["sleep", "300"])
    api.start(cid)
    script = ["sh", "-c", "echo line1; echo line2 >&2; echo line3"]
    out: list[Any] = []
    # A TTY exec read by a client that does not say Tty on start: frames of the TTY's output.
    out.append(api.exec_start(api.exec_create(cid, script, tty=True)["Id"]))
    out.append(api.exec_start(api.exec_create(cid, script, tty=True)["Id"], demux=True))
    out.append(api.exec_start(api.exec_create(cid, script, tty=True)["Id"], tty=True))
    out.append(api.exec_start(api.exec_create(cid, ["sh", "-c", "echo out; echo err >&2"])["Id"],
                              demux=True))  # fmt: skip
    # The raw bytes of exec_start(socket=True), framed and not.
    quiet = ["sh", "-c", "echo out; sleep 0.2; echo err >&2"]
    out.append(_read_all(api.exec_start(api.exec_create(cid, quiet)["Id"], socket=True)))
    out.append(_read_all(api.exec_start(api.exec_create(cid, quiet, tty=True)["Id"],
                                        socket=True, tty=True)))  # fmt: skip
    return out


def test_exec_streams_frame_as_dockerd_frames_them(pair: Pair) -> None:
    results = {side.kind: _exec_outputs(side) for side in pair.both}
    assert results["declarund"] == results["dockerd"]
    assert results["declarund"][0] == b"line1\r\nline2\r\nline3\r\n"
    assert results["declarund"][4] == (
        b"\x01\x00\x00\x00\x00\x00\x00\x04out\n\x02\x00\x00\x00\x00\x00\x00\x04err\n"
    )


def _detach(side: Side) -> tuple[bytes, bool]:
    api = side.api
    cid = side.container(["sleep", "300"])
    api.start(cid)
    exec_id = api.exec_create(cid, ["cat"], stdin=True, tty=True, detach_keys="ctrl-x,x")["Id"]
    sock = api.exec_start(exec_id, socket=True, tty=True)
    raw: socket.socket = getattr(sock, "_sock", sock)
    raw.sendall(b"hello\n")
    raw.settimeout(30)
    echoed = b""
    while b"hello\r\nhello" not in echoed:  # the TTY echo, then cat's copy
        echoed += raw.recv(4096)
    raw.sendall(b"\x18x")
    rest = _read_all(raw)  # the stream ends: the client is detached
    return rest, bool(echoed)


def test_detach_keys_of_an_exec_end_its_stream(pair: Pair) -> None:
    for side in pair.both:
        rest, echoed = _detach(side)
        assert echoed, side.kind
        # dockerd 20.10 writes "exec attach failed: ... read escape sequence" (its wrapped
        # escape error); declarund ends the stream quietly, as later dockerd versions do.
        assert b"hello" not in rest, (side.kind, rest)


def _tar_names(data: bytes) -> dict[str, bytes]:
    out = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        for member in tar:
            handle = tar.extractfile(member) if member.isfile() else None
            out[member.name] = handle.read() if handle is not None else b""
    return out


def _files_scenario(side: Side, bind: Path) -> list[Any]:
    api = side.api
    volume = unique("arch")
    side.later(lambda: api.remove_volume(volume))
    cid = side.container(["sleep", "300"], volumes=["/anon"], host_config=api.create_host_config(
        binds={volume: {"bind": "/vol", "mode": "rw"}, str(bind): {"bind": "/bnd", "mode": "ro"}}))  # fmt: skip
    seen: list[Any] = []
    # Created, never started: every file operation works.
    seen.append(outcome(lambda: api.put_archive(cid, "/tmp", tar_with({"f.txt": b"data"}))))
    seen.append(outcome(lambda: api.put_archive(cid, "/vol", tar_with({"a.txt": b"A"}))))
    seen.append(outcome(lambda: api.put_archive(cid, "/anon", tar_with({"b.txt": b"B"}))))
    seen.append(outcome(lambda: api.put_archive(cid, "/bnd", tar_with({"c.txt": b"C"}))))
    stat = outcome(lambda: api.get_archive(cid, "/tmp/f.txt"))
    seen.append((stat.status, stat.value[1]["size"] if stat.ok else None))
    seen.append(_tar_names(b"".join(api.get_archive(cid, "/bnd/h.txt")[0])))
    seen.append(outcome(lambda: api.get_archive(cid, "/nope")).status)
    seen.append(sorted(c["Path"] for c in api.diff(cid) if c["Path"].startswith("/tmp")))
    seen.append("tmp/f.txt" in _tar_names(b"".join(api.export(cid))))
    committed = api.commit(cid, unique("commit"), "t")["Id"]
    side.later(lambda: api.remove_image(committed, force=True))
    # Started: the volumes hold what was copied in before the start.
    api.start(cid)
    listing = api.exec_create(cid, ["sh", "-c", "ls /vol /anon /bnd; cat /tmp/f.txt"])
    seen.append(api.exec_start(listing["Id"]))
    seen.append(_tar_names(b"".join(api.get_archive(cid, "/anon/b.txt")[0])))
    api.stop(cid, timeout=0)
    # Exited: the same again.
    seen.append(_tar_names(b"".join(api.get_archive(cid, "/vol/a.txt")[0])))
    seen.append(outcome(lambda: api.put_archive(cid, "/vol", tar_with({"d.txt": b"D"}))))
    seen.append(_tar_names(b"".join(api.get_archive(cid, "/vol/d.txt")[0])))
    return seen


# docker-py's get_archive/export generators leave their response's socket to the garbage
# collector once read to the end; that is the client's leak, not a daemon's.
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_files_of_created_running_and_exited_containers_volumes_and_binds_included(
    pair: Pair, tmp_path: Path
) -> None:
    bind = tmp_path / "bind"
    bind.mkdir()
    (bind / "h.txt").write_bytes(b"host file\n")
    results = {side.kind: _files_scenario(side, bind) for side in pair.both}
    assert results["declarund"] == results["dockerd"]
    assert results["declarund"][3].message == "mounted volume is marked read-only"
    assert sorted(p.name for p in bind.iterdir()) == ["h.txt"]


def test_commit_of_a_created_container_runs(pair: Pair) -> None:
    for side in pair.both:
        api = side.api
        cid = side.container(["sleep", "300"])
        api.put_archive(cid, "/tmp", tar_with({"hello.txt": b"hi\n"}))
        image = api.commit(
            cid, unique("committed"), "v1", changes=['CMD ["cat", "/tmp/hello.txt"]']
        )
        side.later(lambda api=api, image=image: api.remove_image(image["Id"], force=True))
        runner = api.create_container(image["Id"])["Id"]
        side.later(lambda api=api, runner=runner: api.remove_container(runner, force=True))
        api.start(runner)
        assert api.wait(runner)["StatusCode"] == 0, side.kind
        assert api.logs(runner) == b"hi\n", side.kind
