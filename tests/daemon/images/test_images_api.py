"""The image API against declarund: list, inspect, history, tag, remove, prune, filters.

Clients are the real docker CLI and docker-py; response bodies are checked against the
Swagger definitions of API v1.45.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import docker as docker_py
import pytest

from tests.daemon.conftest import PushedImage, PushedIndex
from tests.daemon.images.daemon_support import docker
from tests.support.daemon import DaemonProcess, http_request
from tests.support.swagger import validate


@pytest.fixture
def pulled(images_daemon: DaemonProcess, busybox_image_pushed: PushedImage) -> PushedImage:
    docker(images_daemon, "pull", busybox_image_pushed.reference)
    return busybox_image_pushed


@pytest.fixture
def client(images_daemon: DaemonProcess) -> Iterator[docker_py.DockerClient]:
    api = docker_py.DockerClient(base_url=images_daemon.url, version="1.45")
    try:
        yield api
    finally:
        api.close()


def get_json(daemon: DaemonProcess, path: str) -> object:
    result = http_request(daemon.socket_path, "GET", path)
    assert result.status == 200, result.body
    assert result.headers["Content-Type"] == "application/json"
    return json.loads(result.body)


def test_list_inspect_history_match_swagger(
    images_daemon: DaemonProcess, pulled: PushedImage
) -> None:
    image = pulled.image
    listed = get_json(images_daemon, "/v1.45/images/json")
    assert isinstance(listed, list)
    for item in listed:
        validate(item, "ImageSummary")
    mine = next(i for i in listed if i["Id"] == image.config.digest)
    assert pulled.reference in mine["RepoTags"]
    assert mine["RepoDigests"] == [f"{pulled.registry.host}/busybox@{image.manifest.digest}"]
    assert mine["Created"] == 1_700_000_000
    inspect = get_json(images_daemon, f"/v1.45/images/{pulled.reference}/json")
    validate(inspect, "ImageInspect")
    assert isinstance(inspect, dict)
    assert inspect["RootFS"] == {"Type": "layers", "Layers": list(image.diff_ids)}
    assert inspect["Config"]["Cmd"] == ["sh"]
    assert inspect["Os"] == "linux" and inspect["Architecture"] == "amd64"
    assert inspect["Created"] == "2023-11-14T22:13:20Z"
    history = get_json(images_daemon, f"/v1.45/images/{image.config.digest[7:19]}/history")
    assert isinstance(history, list) and len(history) == len(image.layers)
    for item in history:
        validate(item, "ImageHistoryResponseItem")
    assert history[0]["Id"] == image.config.digest
    cli = docker(images_daemon, "history", "--no-trunc", "--format", "{{.ID}}", pulled.reference)
    assert cli.stdout.splitlines()[0] == image.config.digest


def test_missing_image_is_404(images_daemon: DaemonProcess) -> None:
    result = http_request(images_daemon.socket_path, "GET", "/v1.45/images/no/such:image/json")
    assert result.status == 404
    assert json.loads(result.body) == {"message": "No such image: no/such:image"}
    done = docker(images_daemon, "image", "inspect", "no-such-image", check=False)
    assert done.returncode != 0 and "No such image" in done.stderr


def test_tag_and_rmi_with_the_cli(images_daemon: DaemonProcess, pulled: PushedImage) -> None:
    image_id = pulled.image.config.digest
    docker(images_daemon, "tag", pulled.reference, "renamed/app:v1")
    docker(images_daemon, "tag", image_id[7:19], "other:v2")
    refs = docker(images_daemon, "images", "--format", "{{.Repository}}:{{.Tag}}").stdout
    assert {"renamed/app:v1", "other:v2"} <= set(refs.split())
    # By ID while two repositories name it: Docker refuses without force.
    conflict = docker(images_daemon, "rmi", image_id[7:19], check=False)
    assert conflict.returncode != 0
    assert "image is referenced in multiple repositories" in conflict.stderr
    untagged = docker(images_daemon, "rmi", "renamed/app:v1")
    assert untagged.stdout.strip() == "Untagged: renamed/app:v1"
    forced = docker(images_daemon, "rmi", "-f", image_id[7:19])
    assert "Untagged: other:v2" in forced.stdout
    assert f"Deleted: {image_id}" in forced.stdout
    assert docker(images_daemon, "images", "-q").stdout.strip() == ""
    blobs = images_daemon.data_root / "content" / "blobs" / "sha256"
    assert pulled.image.layers[0].digest[7:] not in {p.name for p in blobs.iterdir()}


def test_filters(images_daemon: DaemonProcess, pulled: PushedImage) -> None:
    docker(images_daemon, "tag", pulled.reference, "filtered/one:x")
    by_ref = docker(
        images_daemon, "images", "--filter", "reference=filtered/*", "--format", "{{.Repository}}"
    )
    assert by_ref.stdout.split() == ["filtered/one"]
    dangling = docker(images_daemon, "images", "-q", "--filter", "dangling=true")
    assert dangling.stdout.strip() == ""
    bad = http_request(images_daemon.socket_path, "GET", '/images/json?filters={"nope":["x"]}')
    assert bad.status == 400
    docker(images_daemon, "rmi", "filtered/one:x")


def test_prune_all(images_daemon: DaemonProcess, pulled: PushedImage) -> None:
    done = docker(images_daemon, "image", "prune", "-a", "-f")
    assert f"deleted: {pulled.image.config.digest}" in done.stdout
    assert "Total reclaimed space" in done.stdout
    assert docker(images_daemon, "images", "-q").stdout.strip() == ""


def test_docker_py(
    client: docker_py.DockerClient, busybox_image_pushed: PushedImage, registry: object
) -> None:
    host = busybox_image_pushed.registry.host
    image = client.images.pull(f"{host}/busybox", tag="test")
    assert image.id == busybox_image_pushed.image.config.digest
    assert f"{host}/busybox:test" in image.tags
    assert any(i.id == image.id for i in client.images.list())
    assert client.images.get(f"{host}/busybox:test").id == image.id
    assert image.tag(f"{host}/pypushed", tag="py")
    pushed = client.images.push(f"{host}/pypushed", tag="py")
    assert f"py: digest: {busybox_image_pushed.image.manifest.digest}" in pushed
    client.images.remove(f"{host}/pypushed:py")
    assert f"{host}/pypushed:py" not in client.images.get(image.id).tags
    client.images.remove(image.id, force=True)
    with pytest.raises(docker_py.errors.ImageNotFound):
        client.images.get(image.id)


def test_distribution_inspect(
    images_daemon: DaemonProcess,
    client: docker_py.DockerClient,
    busybox_index_pushed: PushedIndex,
) -> None:
    ref = busybox_index_pushed.reference
    doc = get_json(images_daemon, f"/v1.45/distribution/{ref}/json")
    validate(doc, "DistributionInspect")
    assert isinstance(doc, dict)
    assert doc["Descriptor"]["digest"] == busybox_index_pushed.index.index.digest
    archs = {p["architecture"] for p in doc["Platforms"]}
    assert archs == {"amd64", "arm64"}
    data = client.images.get_registry_data(ref)
    assert data.id == busybox_index_pushed.index.index.digest
    missing = http_request(
        images_daemon.socket_path, "GET", f"/distribution/{ref.rsplit(':', 1)[0]}:nope/json"
    )
    assert missing.status == 404
