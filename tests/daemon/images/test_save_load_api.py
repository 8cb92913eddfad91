"""``docker save``/``load``/``import`` against declarund with the real docker CLI."""

from __future__ import annotations

import gzip
import json
import subprocess
import tarfile
from pathlib import Path

from tests.daemon.conftest import PushedImage
from tests.daemon.images.daemon_support import docker
from tests.support.daemon import DaemonProcess, http_request
from tests.support.images import busybox_rootfs_tar


def test_save_pipe_load_round_trip(
    images_daemon: DaemonProcess, busybox_image_pushed: PushedImage, tmp_path: Path
) -> None:
    ref = busybox_image_pushed.reference
    docker(images_daemon, "pull", ref)
    env = images_daemon.env()
    saved = subprocess.run(["docker", "save", ref], env=env, capture_output=True, check=True)
    with tarfile.open(fileobj=__import__("io").BytesIO(saved.stdout)) as tar:
        names = tar.getnames()
    assert {"manifest.json", "index.json", "oci-layout"} <= set(names)
    docker(images_daemon, "rmi", ref)
    loaded = subprocess.run(
        ["docker", "load"], input=saved.stdout, env=env, capture_output=True, check=False
    )
    assert loaded.returncode == 0, loaded.stderr
    assert f"Loaded image: {ref}" in loaded.stdout.decode()
    inspect = json.loads(docker(images_daemon, "image", "inspect", ref).stdout)[0]
    assert inspect["Id"] == busybox_image_pushed.image.config.digest
    snapshots = images_daemon.data_root / "snapshots"
    top = inspect["GraphDriver"]["Data"].get("UpperDir") or inspect["GraphDriver"]["Data"]["Dir"]
    assert Path(top).is_relative_to(snapshots) and Path(top).is_dir()
    archive = tmp_path / "saved.tar"
    docker(images_daemon, "save", "-o", str(archive), ref)
    docker(images_daemon, "rmi", ref)
    again = docker(images_daemon, "load", "-i", str(archive))
    assert f"Loaded image: {ref}" in again.stdout


def test_load_garbage_is_refused(images_daemon: DaemonProcess, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"this is not a tar archive at all" * 100)
    done = docker(images_daemon, "load", "-i", str(junk), check=False)
    # As dockerd: the answer is a stream (200) whose one message is the error.
    assert done.returncode != 0
    assert "not a valid tar archive" in done.stderr


def test_save_unknown_image_is_404(images_daemon: DaemonProcess) -> None:
    result = http_request(images_daemon.socket_path, "GET", "/v1.45/images/get?names=nope:x")
    assert result.status == 404
    assert "No such image" in json.loads(result.body)["message"]


def test_import_rootfs_with_changes(images_daemon: DaemonProcess, tmp_path: Path) -> None:
    archive = tmp_path / "rootfs.tar.gz"
    archive.write_bytes(gzip.compress(busybox_rootfs_tar(), mtime=0))
    done = docker(
        images_daemon, "import", "--change", 'CMD ["sh"]', "--change", "ENV GREETING=hi",
        "--change", "WORKDIR /srv", "--change", "EXPOSE 8080", "-m", "from a tarball",
        str(archive), "imported/busybox:v1",
    )  # fmt: skip
    image_id = done.stdout.strip()
    assert image_id.startswith("sha256:")
    inspect = json.loads(docker(images_daemon, "image", "inspect", "imported/busybox:v1").stdout)[0]
    assert inspect["Id"] == image_id
    config = inspect["Config"]
    assert config["Cmd"] == ["sh"]
    assert config["Env"] == ["GREETING=hi"]
    assert config["WorkingDir"] == "/srv"
    assert config["ExposedPorts"] == {"8080/tcp": {}}
    history = docker(images_daemon, "history", "--format", "{{.Comment}}", "imported/busybox:v1")
    assert history.stdout.strip() == "from a tarball"
    bad = docker(images_daemon, "import", "--change", "FROB x", str(archive), "bad:v1", check=False)
    assert bad.returncode != 0 and "not a valid change command" in bad.stderr
    docker(images_daemon, "rmi", "imported/busybox:v1")
