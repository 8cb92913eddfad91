"""``docker push`` from declarund to real registries, checked with skopeo."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.daemon.conftest import PushedImage
from tests.daemon.images.daemon_support import docker, json_lines
from tests.support.daemon import DaemonProcess, http_request
from tests.support.images import busybox_rootfs_tar
from tests.support.registry import RunningRegistry


def skopeo_digest(ref: str, creds: str | None = None) -> str:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    command = ["skopeo", "inspect", "--tls-verify=false"]
    if creds:
        command += ["--creds", creds]
    done = subprocess.run(
        [*command, f"docker://{ref}"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    return str(json.loads(done.stdout)["Digest"])


def test_push_to_new_repository_mounts_blobs(
    images_daemon: DaemonProcess, busybox_image_pushed: PushedImage
) -> None:
    host = busybox_image_pushed.registry.host
    docker(images_daemon, "pull", busybox_image_pushed.reference)
    target = f"{host}/pushed/busybox:copy"
    docker(images_daemon, "tag", busybox_image_pushed.reference, target)
    pushed = docker(images_daemon, "push", target)
    digest = busybox_image_pushed.image.manifest.digest
    assert f"The push refers to repository [{host}/pushed/busybox]" in pushed.stdout
    assert "Mounted from busybox" in pushed.stdout
    assert f"copy: digest: {digest} size: {busybox_image_pushed.image.manifest.size}" in (
        pushed.stdout
    )
    assert skopeo_digest(target) == digest
    inspect = json.loads(docker(images_daemon, "image", "inspect", target).stdout)[0]
    assert f"{host}/pushed/busybox@{digest}" in inspect["RepoDigests"]


def test_push_stream_messages_and_aux(
    images_daemon: DaemonProcess, registry: RunningRegistry, tmp_path: Path
) -> None:
    archive = tmp_path / "rootfs.tar"
    archive.write_bytes(busybox_rootfs_tar())
    imported = docker(images_daemon, "import", str(archive), f"{registry.host}/fresh:one")
    image_id = imported.stdout.strip()
    result = http_request(
        images_daemon.socket_path, "POST", f"/v1.45/images/{registry.host}/fresh/push?tag=one"
    )
    assert result.status == 200
    messages = json_lines(result.body)
    assert messages[0] == {"status": f"The push refers to repository [{registry.host}/fresh]"}
    statuses = [m.get("status") for m in messages]
    assert "Preparing" in statuses and "Pushed" in statuses
    aux = messages[-1]["aux"]
    assert aux["Tag"] == "one" and aux["Size"] > 0
    assert messages[-2] == {"status": f"one: digest: {aux['Digest']} size: {aux['Size']}"}
    assert skopeo_digest(f"{registry.host}/fresh:one") == aux["Digest"]
    again = docker(images_daemon, "push", f"{registry.host}/fresh:one")
    assert "Layer already exists" in again.stdout
    docker(images_daemon, "rmi", image_id)


def test_push_of_unknown_tag_fails(images_daemon: DaemonProcess, registry: RunningRegistry) -> None:
    done = docker(images_daemon, "push", f"{registry.host}/absent:nope", check=False)
    assert done.returncode != 0
    assert "does not exist" in done.stderr


def test_push_to_auth_registry_with_login(
    images_daemon: DaemonProcess, auth_busybox_pushed: PushedImage, tmp_path: Path
) -> None:
    registry = auth_busybox_pushed.registry
    config = tmp_path / "docker-config"
    config.mkdir()
    docker(
        images_daemon, "login", "-u", str(registry.username), "--password-stdin", registry.host,
        input=f"{registry.password}\n".encode(), config=config,
    )  # fmt: skip
    docker(images_daemon, "pull", auth_busybox_pushed.reference, config=config)
    target = f"{registry.host}/private/copy:v1"
    docker(images_daemon, "tag", auth_busybox_pushed.reference, target)
    unauthenticated = docker(images_daemon, "push", target, check=False)
    assert unauthenticated.returncode != 0
    docker(images_daemon, "push", target, config=config)
    assert skopeo_digest(target, registry.creds) == auth_busybox_pushed.image.manifest.digest
