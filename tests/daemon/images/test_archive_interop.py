"""Save/load archives against real tools: skopeo both ways, and a real dockerd.

The dockerd test starts Debian's ``dockerd`` on a Unix socket in a temporary directory
(root only; skipped with the reason when it cannot start within 30 s), drives it with the
``docker`` CLI, and stops it at the end even when a test fails.
"""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.daemon.images.archive_load import load_archive
from declarun.daemon.images.archive_save import resolve_save_names, write_save_archive
from tests.daemon.images.archive_support import Daemon, add_busybox, make_daemon
from tests.support.images import OciImage, build_busybox_layout

_START_TIMEOUT = 30.0

needs_skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo not installed")


def skopeo(tmp: Path, *args: str) -> str:
    policy = tmp / "policy.json"
    policy.write_text(json.dumps({"default": [{"type": "insecureAcceptAnything"}]}))
    done = subprocess.run(
        ["skopeo", "--policy", str(policy), *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def save_to(daemon: Daemon, path: Path, *names: str) -> Path:
    with open(path, "wb") as out:
        write_save_archive(daemon.store, resolve_save_names(daemon.metadata, names), out)
    return path


def load_from(daemon: Daemon, path: Path) -> list[str]:
    with open(path, "rb") as body:
        return list(load_archive(daemon.store, daemon.metadata, body).messages)


# -- skopeo --------------------------------------------------------------------------------


@needs_skopeo
def test_load_what_skopeo_writes(tmp_path: Path) -> None:
    image = build_busybox_layout(tmp_path / "layout", extra_layers=1)
    docker_archive = tmp_path / "docker-archive.tar"
    oci_archive = tmp_path / "oci-archive.tar"
    skopeo(
        tmp_path,
        "copy",
        f"oci:{image.layout}:latest",
        f"docker-archive:{docker_archive}:sk/busybox:v1",
    )
    skopeo(
        tmp_path, "copy", f"oci:{image.layout}:latest", f"oci-archive:{oci_archive}:sk/busybox:v2"
    )

    daemon, other = make_daemon(tmp_path / "daemon"), make_daemon(tmp_path / "other")
    assert load_from(daemon, docker_archive) == ["Loaded image: sk/busybox:v1"]
    assert load_from(other, oci_archive) == ["Loaded image: sk/busybox:v2"]
    first = daemon.metadata.resolve("sk/busybox:v1")
    second = other.metadata.resolve("sk/busybox:v2")
    assert first.id == second.id == image.config.digest
    # The manifest of the OCI archive is kept as skopeo wrote it.
    with tarfile.open(oci_archive) as tar:
        handle = tar.extractfile("index.json")
        assert handle is not None
        (entry,) = json.load(handle)["manifests"]
    assert second.record.manifest.digest == entry["digest"]
    assert [layer.diff_id for layer in first.record.layers] == list(image.diff_ids)
    for digest in first.record.blob_digests():
        daemon.store.verify(digest)
    for digest in second.record.blob_digests():
        other.store.verify(digest)


@needs_skopeo
def test_skopeo_reads_what_we_save(tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path / "daemon")
    image = add_busybox(daemon, tmp_path / "layout", ("busybox:test",), extra_layers=1)
    archive = save_to(daemon, tmp_path / "saved.tar", "busybox:test")

    as_oci = json.loads(skopeo(tmp_path, "inspect", f"oci-archive:{archive}:test"))
    assert as_oci["Digest"] == image.manifest.digest
    assert as_oci["Layers"] == [layer.digest for layer in image.layers]
    as_docker = json.loads(skopeo(tmp_path, "inspect", f"docker-archive:{archive}"))
    assert (as_docker["Architecture"], as_docker["Os"]) == ("amd64", "linux")
    assert len(as_docker["Layers"]) == len(image.layers)
    config = json.loads(skopeo(tmp_path, "inspect", "--config", f"docker-archive:{archive}"))
    assert config["rootfs"]["diff_ids"] == list(image.diff_ids)

    # A full copy makes skopeo read and verify every blob of both views.
    skopeo(tmp_path, "copy", f"docker-archive:{archive}", f"oci:{tmp_path / 'from-docker'}:x")
    skopeo(tmp_path, "copy", f"oci-archive:{archive}:test", f"oci:{tmp_path / 'from-oci'}:x")
    copied = json.loads((tmp_path / "from-oci" / "index.json").read_text())
    assert copied["manifests"][0]["digest"] == image.manifest.digest


# -- a real dockerd ------------------------------------------------------------------------


def _docker(host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        ["docker", "-H", host, *args], capture_output=True, text=True, check=False, timeout=120
    )
    if check:
        assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}"
    return done


@pytest.fixture(scope="module")
def dockerd() -> Iterator[str]:
    """A real dockerd on a private socket; yields its ``unix://`` host."""
    if os.geteuid() != 0:
        pytest.skip("dockerd needs root")
    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        pytest.skip("dockerd or the docker CLI is not installed")
    # Short paths: Unix socket names (containerd's too, under exec-root) are limited.
    root = Path(tempfile.mkdtemp(prefix="dd-", dir="/tmp"))
    host = f"unix://{root}/docker.sock"
    log = open(root / "dockerd.log", "wb")  # noqa: SIM115 - closed in the finally below
    command = [
        "dockerd",
        "--data-root", str(root / "data"),
        "--exec-root", str(root / "exec"),
        "--pidfile", str(root / "dockerd.pid"),
        "--host", host,
        "--bridge", "none",
        "--iptables=false",
        "--ip6tables=false",
    ]  # fmt: skip
    process = subprocess.Popen(
        command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + _START_TIMEOUT
        while _docker(host, "version", check=False).returncode != 0:
            if process.poll() is not None or time.monotonic() > deadline:
                tail = (root / "dockerd.log").read_text(errors="replace")[-2000:]
                pytest.skip(f"dockerd did not start within {_START_TIMEOUT:.0f} s:\n{tail}")
            time.sleep(0.3)
        yield host
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)  # its own session: dockerd + containerd
                process.wait(timeout=10)
        log.close()
        shutil.rmtree(root, ignore_errors=True)


def test_docker_loads_our_archive_and_runs_it(dockerd: str, tmp_path: Path) -> None:
    daemon = make_daemon(tmp_path / "daemon")
    image = add_busybox(
        daemon, tmp_path / "layout", ("declarun-test/busybox:saved",), extra_layers=1
    )
    archive = save_to(daemon, tmp_path / "saved.tar", "declarun-test/busybox:saved")
    loaded = _docker(dockerd, "load", "-i", str(archive))
    assert "Loaded image: declarun-test/busybox:saved" in loaded.stdout
    inspect = _docker(dockerd, "image", "inspect", "declarun-test/busybox:saved")
    (info,) = json.loads(inspect.stdout)
    assert info["Id"] == image.config.digest
    assert info["RootFS"]["Layers"] == list(image.diff_ids)
    # The layers unpacked: a container runs busybox and sees the second layer's file.
    ran = _docker(
        dockerd,
        "run",
        "--rm",
        "--network",
        "none",
        "declarun-test/busybox:saved",
        "ls",
        "/extra",
    )
    assert ran.stdout == "layer-1.bin\n"


def test_we_load_what_docker_saves(dockerd: str, tmp_path: Path) -> None:
    source = make_daemon(tmp_path / "source")
    base: OciImage = add_busybox(source, tmp_path / "a", ("declarun-test/base:1",))
    bigger = add_busybox(source, tmp_path / "b", ("declarun-test/bigger:1",), extra_layers=2)
    for name in ("declarun-test/base:1", "declarun-test/bigger:1"):
        _docker(dockerd, "load", "-i", str(save_to(source, tmp_path / "in.tar", name)))
    # Two images sharing their base layer: dockerd 20.10 stores it once and links it.
    saved = tmp_path / "docker-saved.tar"
    _docker(dockerd, "save", "-o", str(saved), "declarun-test/base:1", "declarun-test/bigger:1")

    target = make_daemon(tmp_path / "target")
    assert sorted(load_from(target, saved)) == [
        "Loaded image: declarun-test/base:1",
        "Loaded image: declarun-test/bigger:1",
    ]
    for name, image in (("declarun-test/base:1", base), ("declarun-test/bigger:1", bigger)):
        record = target.metadata.resolve(name).record
        assert record.id == image.config.digest
        assert [layer.diff_id for layer in record.layers] == list(image.diff_ids)
        for digest in record.blob_digests():
            target.store.verify(digest)
    # docker save | gzip is accepted too, as docker load accepts it.
    target2 = make_daemon(tmp_path / "target2")
    body = io.BytesIO(gzip.compress(saved.read_bytes(), compresslevel=1))
    result = load_archive(target2.store, target2.metadata, body)
    assert len(result.images) == 2
