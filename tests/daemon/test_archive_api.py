"""``docker cp``, ``docker diff``, ``docker export`` and ``docker commit`` against the real declarund."""

from __future__ import annotations

import base64
import io
import json
import secrets
import tarfile
from pathlib import Path

import docker as docker_py
import pytest

from tests.daemon.containers.extras_support import IMAGE, extras_daemon, run
from tests.support.daemon import DaemonProcess, http_request

__all__ = ["extras_daemon"]

pytestmark = pytest.mark.timeout(300)


def _ok(done: object) -> bytes:
    assert done.returncode == 0, (done.stdout, done.stderr)
    out: bytes = done.stdout
    return out


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: m for m in tar.getmembers()}


def _file(data: bytes, name: str) -> bytes:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        handle = tar.extractfile(name)
        assert handle is not None
        return handle.read()


def test_cp_both_ways(extras_daemon: DaemonProcess, tmp_path: Path) -> None:
    cid = _ok(run(extras_daemon, "run", "-d", IMAGE, "sh", "-c",
                  "mkdir -p /srv/d && echo inside > /srv/d/f && sleep 300")).strip().decode()  # fmt: skip
    _ok(run(extras_daemon, "exec", cid, "ls", "/srv/d/f"))
    dest = tmp_path / "out"
    _ok(run(extras_daemon, "cp", f"{cid}:/srv/d", str(dest)))
    assert (dest / "f").read_text() == "inside\n"
    local = tmp_path / "up"
    local.mkdir()
    (local / "hello.txt").write_text("from host\n")
    (local / "sub").mkdir()
    (local / "sub" / "x").write_text("x\n")
    _ok(run(extras_daemon, "cp", str(local / "hello.txt"), f"{cid}:/srv/"))
    _ok(run(extras_daemon, "cp", str(local), f"{cid}:/srv/uploaded"))
    assert _ok(run(extras_daemon, "exec", cid, "cat", "/srv/hello.txt")) == b"from host\n"
    assert _ok(run(extras_daemon, "exec", cid, "cat", "/srv/uploaded/sub/x")) == b"x\n"
    # To stdout as a tar, and from a stopped container too.
    tar = _ok(run(extras_daemon, "cp", f"{cid}:/srv/d/f", "-"))
    assert _file(tar, "f") == b"inside\n"
    _ok(run(extras_daemon, "stop", "-t", "0", cid))
    tar = _ok(run(extras_daemon, "cp", f"{cid}:/srv/hello.txt", "-"))
    assert _file(tar, "hello.txt") == b"from host\n"
    _ok(run(extras_daemon, "cp", str(local / "sub" / "x"), f"{cid}:/srv/while-stopped"))
    tar = _ok(run(extras_daemon, "cp", f"{cid}:/srv/while-stopped", "-"))
    assert _file(tar, "while-stopped") == b"x\n"
    missing = run(extras_daemon, "cp", f"{cid}:/nope", "-")
    assert missing.returncode != 0 and b"Could not find the file /nope" in missing.stderr
    _ok(run(extras_daemon, "rm", cid))


def test_cp_never_leaves_the_container_root(extras_daemon: DaemonProcess, tmp_path: Path) -> None:
    secret_dir = tmp_path / f"host-secret-{secrets.token_hex(4)}"
    secret_dir.mkdir()
    (secret_dir / "secret").write_text("HOST SECRET\n")
    link_script = (
        f"ln -s {secret_dir}/secret /abs-link; ln -s ../../../../../../{secret_dir} /rel-dir; "
        "ln -s / /root-link; echo container-passwd-marker >> /etc/passwd; sleep 300"
    )
    cid = _ok(run(extras_daemon, "run", "-d", IMAGE, "sh", "-c", link_script)).strip().decode()
    _ok(run(extras_daemon, "exec", cid, "ls", "/root-link"))
    # The link itself is archived, not its target.
    tar = _ok(run(extras_daemon, "cp", f"{cid}:/abs-link", "-"))
    member = _members(tar)["abs-link"]
    assert member.issym() and b"HOST SECRET" not in tar
    # Following it (-L) resolves inside the container, where the target does not exist.
    followed = run(extras_daemon, "cp", "-L", f"{cid}:/abs-link", str(tmp_path / "got"))
    assert followed.returncode != 0 and not (tmp_path / "got").exists()
    through = run(extras_daemon, "cp", f"{cid}:/rel-dir/secret", "-")
    assert through.returncode != 0 and b"HOST SECRET" not in through.stdout
    # A link to / is the container's root: its /etc/passwd, not the host's.
    passwd = _ok(run(extras_daemon, "cp", f"{cid}:/root-link/etc/passwd", "-"))
    assert b"container-passwd-marker" in _file(passwd, "passwd")
    # Writing through links lands in the container, never on the host.
    upload = tmp_path / "planted"
    upload.write_text("planted\n")
    refused = run(extras_daemon, "cp", str(upload), f"{cid}:/rel-dir/")
    assert refused.returncode != 0
    _ok(run(extras_daemon, "cp", str(upload), f"{cid}:/root-link/tmp/"))
    assert not (secret_dir / "planted").exists() and not Path("/tmp/planted").exists()
    assert _ok(run(extras_daemon, "exec", cid, "cat", "/tmp/planted")) == b"planted\n"
    stat = http_request(extras_daemon.socket_path, "HEAD",
                        f"/containers/{cid}/archive?path=/abs-link")  # fmt: skip
    assert stat.status == 200
    doc = json.loads(base64.b64decode(stat.headers["X-Docker-Container-Path-Stat"]))
    assert doc["name"] == "abs-link" and doc["linkTarget"] == f"{secret_dir}/secret"
    assert doc["mode"] & (1 << 27)
    _ok(run(extras_daemon, "rm", "-f", cid))


def test_diff_export_commit(extras_daemon: DaemonProcess) -> None:
    cid = _ok(run(extras_daemon, "run", "-d", IMAGE, "sh", "-c",
                  "mkdir /newdir && echo n > /newdir/file && rm /bin/ls && "
                  "echo changed >> /etc/group && sleep 300")).strip().decode()  # fmt: skip
    _ok(run(extras_daemon, "exec", cid, "test", "-f", "/newdir/file"))
    diff = _ok(run(extras_daemon, "diff", cid)).decode().splitlines()
    assert "A /newdir" in diff and "A /newdir/file" in diff
    assert "D /bin/ls" in diff and "C /etc/group" in diff and "C /etc" in diff
    assert not any("hostname" in line or "resolv.conf" in line for line in diff), diff
    exported = _ok(run(extras_daemon, "export", cid))
    names = set(_members(exported))
    assert "newdir/file" in names and "bin/busybox" in names and "bin/ls" not in names
    _ok(run(extras_daemon, "commit", "-c", "CMD [\"cat\", \"/newdir/file\"]", "-m", "msg",
            "-a", "me", cid, "committed:v1"))  # fmt: skip
    assert _ok(run(extras_daemon, "run", "--rm", "committed:v1")) == b"n\n"
    gone = run(extras_daemon, "run", "--rm", "committed:v1", "ls", "/")
    assert gone.returncode != 0  # /bin/ls was deleted in the committed layer
    out = _ok(run(extras_daemon, "run", "--rm", "committed:v1", "cat", "/etc/group"))
    assert out.endswith(b"changed\n")
    history = _ok(run(extras_daemon, "history", "--no-trunc", "--format", "{{.Comment}}",
                      "committed:v1"))  # fmt: skip
    assert b"msg" in history
    client = docker_py.DockerClient(base_url=extras_daemon.url)
    try:
        image = client.containers.get(cid).commit("committed", "v2", changes=["ENV A=b"])
        assert "A=b" in image.attrs["Config"]["Env"]
    finally:
        client.close()
    _ok(run(extras_daemon, "rm", "-f", cid))
