"""``docker pull`` against declarund, with real registries and the real docker CLI.

Covers Docker's progress stream, up-to-date pulls, missing tags, platform choice from an
index, registry auth through ``docker login``, our store read by skopeo, a connection cut
mid-layer (resumed), a corrupt blob (refused, nothing kept), a hostile layer between two
good ones (refused while the others unpack beside it; nothing staged or registered kept)
and a daemon killed mid-pull (its partial download kept for the next pull).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest
from aiohttp import web

from tests.daemon.conftest import PushedImage, PushedIndex
from tests.daemon.images.daemon_support import (
    ThreadLoop,
    docker,
    json_lines,
    layout_registry_app,
    need_docker,
)
from tests.daemon.images.layertar import LayerBuilder
from tests.support.daemon import DaemonProcess, daemon_check, http_request, running_daemon
from tests.support.images import (
    OCI_LAYER_GZIP,
    OciImage,
    _gzip,
    _write_blob,
    _write_image,
    _write_layout_index,
    build_busybox_layout,
    busybox_rootfs_tar,
)
from tests.support.loopback import CuttingProxy, serve_app
from tests.support.registry import RunningRegistry


def blob_files(daemon: DaemonProcess) -> set[str]:
    return {p.name for p in (daemon.data_root / "content" / "blobs" / "sha256").iterdir()}


def ingests(daemon: DaemonProcess) -> list[Path]:
    return list((daemon.data_root / "content" / "ingest").iterdir())


def test_docker_pull_then_up_to_date(
    images_daemon: DaemonProcess, busybox_image_pushed: PushedImage
) -> None:
    ref = busybox_image_pushed.reference
    first = docker(images_daemon, "pull", ref)
    assert f"Status: Downloaded newer image for {ref}" in first.stdout
    assert "test: Pulling from busybox" in first.stdout
    again = docker(images_daemon, "pull", ref)
    assert f"Status: Image is up to date for {ref}" in again.stdout
    listed = docker(images_daemon, "images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}")
    short = busybox_image_pushed.image.config.digest[7:19]
    assert f"{ref} {short}" in listed.stdout.splitlines()


def test_pull_streams_docker_progress_messages(
    images_daemon: DaemonProcess, busybox_image_pushed: PushedImage
) -> None:
    ref = busybox_image_pushed.reference
    docker(images_daemon, "rmi", "-f", ref, check=False)
    host = busybox_image_pushed.registry.host
    result = http_request(
        images_daemon.socket_path, "POST", f"/v1.45/images/create?fromImage={host}/busybox&tag=test"
    )
    assert result.status == 200
    messages = json_lines(result.body)
    assert messages[0] == {"status": "Pulling from busybox", "id": "test"}
    image = busybox_image_pushed.image
    for layer in image.layers:
        lid = layer.digest[7:19]
        statuses = [m["status"] for m in messages if m.get("id") == lid]
        assert statuses[0] == "Pulling fs layer"
        assert "Download complete" in statuses
        assert statuses[-1] == "Pull complete"
        assert {"status": "Pulling fs layer", "progressDetail": {}, "id": lid} in messages
    downloading = [m for m in messages if m.get("status") == "Downloading"]
    for m in downloading:
        assert set(m["progressDetail"]) == {"current", "total"}
        assert m["progress"].startswith("[")
    assert messages[-2] == {"status": f"Digest: {image.manifest.digest}"}
    assert messages[-1] == {"status": f"Status: Downloaded newer image for {ref}"}


def test_pull_missing_tag_fails_with_dockers_message(
    images_daemon: DaemonProcess, busybox_image_pushed: PushedImage
) -> None:
    missing = f"{busybox_image_pushed.registry.host}/busybox:no-such-tag"
    done = docker(images_daemon, "pull", missing, check=False)
    assert done.returncode != 0
    assert f"manifest for {missing} not found" in done.stderr
    assert "manifest unknown" in done.stderr


def test_pull_platform_from_index(
    images_daemon: DaemonProcess, busybox_index_pushed: PushedIndex
) -> None:
    ref = busybox_index_pushed.reference
    docker(images_daemon, "pull", "--platform", "linux/arm64", ref)
    inspect = json.loads(docker(images_daemon, "image", "inspect", ref).stdout)[0]
    arm = next(i for i in busybox_index_pushed.index.images if i.architecture == "arm64")
    assert inspect["Architecture"] == "arm64"
    assert inspect["Id"] == arm.config.digest
    assert inspect["RepoDigests"] == [
        f"{busybox_index_pushed.registry.host}/busybox-multi@{busybox_index_pushed.index.index.digest}"
    ]


def test_skopeo_reads_our_store(
    images_daemon: DaemonProcess, busybox_image_pushed: PushedImage, tmp_path: Path
) -> None:
    if shutil.which("skopeo") is None:
        pytest.skip("skopeo is not installed")
    ref = busybox_image_pushed.reference
    docker(images_daemon, "pull", ref)
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    content = images_daemon.data_root / "content"
    done = subprocess.run(
        ["skopeo", "--policy", str(policy), "inspect", "--raw", f"oci:{content}:{ref}"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == json.loads(busybox_image_pushed.image.manifest.data)


def test_auth_registry_needs_docker_login(
    images_daemon: DaemonProcess, auth_busybox_pushed: PushedImage, tmp_path: Path
) -> None:
    ref = auth_busybox_pushed.reference
    config = tmp_path / "docker-config"
    config.mkdir()
    denied = docker(images_daemon, "pull", ref, config=config, check=False)
    assert denied.returncode != 0
    assert "pull access denied" in denied.stderr or "authentication" in denied.stderr
    registry = auth_busybox_pushed.registry
    wrong = docker(
        images_daemon, "login", "-u", "nobody", "--password-stdin", registry.host,
        input=b"wrong\n", config=config, check=False,
    )  # fmt: skip
    assert wrong.returncode != 0
    docker(
        images_daemon, "login", "-u", str(registry.username), "--password-stdin", registry.host,
        input=f"{registry.password}\n".encode(), config=config,
    )  # fmt: skip
    pulled = docker(images_daemon, "pull", ref, config=config)
    assert f"Downloaded newer image for {ref}" in pulled.stdout


def test_pull_resumes_after_connection_cut_mid_layer(
    tmp_path: Path, registry: RunningRegistry, busybox_image_pushed: PushedImage
) -> None:
    need_docker()
    loop = ThreadLoop()
    big = max(busybox_image_pushed.image.layers, key=lambda layer: layer.size)
    proxy = CuttingProxy(registry.port, cuts=[big.size // 3, big.size // 3])
    try:
        loop.run(proxy.__aenter__())
        with running_daemon(tmp_path) as daemon:
            ref = f"127.0.0.1:{proxy.port}/busybox:test"
            pulled = docker(daemon, "pull", ref)
            assert "Downloaded newer image" in pulled.stdout
            assert any(b"Range: bytes=" in r for r in proxy.requests)
            assert big.digest[7:] in blob_files(daemon)
            assert ingests(daemon) == []
    finally:
        loop.run(proxy.__aexit__(None, None, None))
        loop.close()


def test_corrupt_blob_is_refused_and_nothing_kept(tmp_path: Path) -> None:
    need_docker()
    image = build_busybox_layout(tmp_path / "layout", tag="bad")
    layer = image.layers[0]
    loop = ThreadLoop()
    served = serve_app(layout_registry_app(image, "corrupt/busybox", corrupt=layer.digest))
    try:
        base = loop.run(served.__aenter__())
        port = base.rsplit(":", 1)[1]
        with running_daemon(tmp_path / "d") as daemon:
            done = docker(daemon, "pull", f"127.0.0.1:{port}/corrupt/busybox:bad", check=False)
            assert done.returncode != 0
            assert "digest mismatch" in (done.stdout + done.stderr)
            assert docker(daemon, "images", "-q").stdout.strip() == ""
            assert layer.digest[7:] not in blob_files(daemon)
            assert ingests(daemon) == []
    finally:
        loop.run(served.__aexit__(None, None, None))
        loop.close()


def _layout_of(dest: Path, tag: str, tars: list[bytes]) -> OciImage:
    dest.mkdir(parents=True)
    layers = [_write_blob(dest, OCI_LAYER_GZIP, _gzip(tar)) for tar in tars]
    diff_ids = [f"sha256:{hashlib.sha256(tar).hexdigest()}" for tar in tars]
    image = _write_image(dest, tag, layers, diff_ids, "amd64", None)
    _write_layout_index(dest, tag, image.manifest, {"os": "linux", "architecture": "amd64"})
    return image


def test_a_hostile_layer_between_good_ones_leaves_nothing_half_done(tmp_path: Path) -> None:
    need_docker()
    big = LayerBuilder()
    for index in range(40):
        big.file(f"data/f{index}", hashlib.sha256(str(index).encode()).digest() * 4096)
    hostile = LayerBuilder().file("ok", b"1").file("../../../escape", b"x")
    image = _layout_of(
        tmp_path / "layout", "bad", [busybox_rootfs_tar(), hostile.build(), big.build()]
    )
    loop = ThreadLoop()
    served = serve_app(layout_registry_app(image, "hostile/busybox"))
    try:
        base = loop.run(served.__aenter__())
        ref = f"127.0.0.1:{base.rsplit(':', 1)[1]}/hostile/busybox:bad"
        with running_daemon(tmp_path / "d") as daemon:
            done = docker(daemon, "pull", ref, check=False)
            assert done.returncode != 0
            assert "escape" in (done.stdout + done.stderr)
            assert docker(daemon, "images", "-q").stdout.strip() == ""
            snapshots = daemon.data_root / "snapshots"
            assert [p.name for p in snapshots.iterdir() if p.name.startswith(".")] == []
            assert not (tmp_path / "escape").exists()
            checked = daemon_check(daemon)
            assert checked.returncode == 0, checked.stdout + checked.stderr
    finally:
        loop.run(served.__aexit__(None, None, None))
        loop.close()


def test_daemon_killed_mid_pull_restarts_clean(
    tmp_path: Path, busybox_image_pushed: PushedImage
) -> None:
    need_docker()
    image = build_busybox_layout(
        tmp_path / "layout", tag="slow", extra_layers=1, extra_layer_size=4 << 20
    )
    big = max(image.layers, key=lambda layer: layer.size)
    loop = ThreadLoop()
    state = {"stall": True}
    started, release = asyncio.Event(), asyncio.Event()

    async def hook(digest: str, data: bytes, response: web.StreamResponse) -> bool:
        if digest != big.digest or not state["stall"]:
            return False
        await response.write(data[: len(data) // 2])
        loop.loop.call_soon(started.set)
        await release.wait()  # the daemon is killed meanwhile
        return True

    served = serve_app(layout_registry_app(image, "slow/busybox", blob_hook=hook))
    try:
        base = loop.run(served.__aenter__())
        ref = f"127.0.0.1:{base.rsplit(':', 1)[1]}/slow/busybox:slow"
        with running_daemon(tmp_path / "d") as daemon:
            client = subprocess.Popen(
                ["docker", "pull", ref], env=daemon.env(),
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                try:
                    loop.run(asyncio.wait_for(started.wait(), 50))
                except TimeoutError:
                    raise AssertionError(daemon.log()) from None
                deadline = time.monotonic() + 30
                # Until some of the big layer's bytes reached *its* ingest's file (another
                # blob's ingest having bytes says nothing of this one).
                while not any(
                    (p / "ref").exists()
                    and (p / "ref").read_text() == f"pull-{big.digest}"
                    and (p / "data").exists()
                    and (p / "data").stat().st_size > 0
                    for p in ingests(daemon)
                ):
                    assert time.monotonic() < deadline, "no ingest was started"
                    time.sleep(0.05)
                assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
            finally:
                client.wait(30)
        state["stall"] = False
        with running_daemon(tmp_path / "d") as daemon:
            # The partial download is kept (its lease survives) for the pull to resume.
            refs = {(p / "ref").read_text(): p for p in ingests(daemon)}
            assert (refs[f"pull-{big.digest}"] / "data").stat().st_size > 0
            assert big.digest[7:] not in blob_files(daemon)
            pulled = docker(daemon, "pull", ref)
            assert "Downloaded newer image" in pulled.stdout
            assert ingests(daemon) == []
            docker(daemon, "pull", busybox_image_pushed.reference)
            inspect = json.loads(docker(daemon, "image", "inspect", ref).stdout)[0]
            assert inspect["Id"] == image.config.digest
    finally:
        loop.loop.call_soon_threadsafe(release.set)
        loop.run(served.__aexit__(None, None, None))
        loop.close()
