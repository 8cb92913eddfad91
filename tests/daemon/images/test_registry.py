"""The registry client against the real distribution registry (and loopback fault servers)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import subprocess
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from declarun.daemon.images import registry_transport
from declarun.daemon.images.auth import Credentials, RegistryAuthError
from declarun.daemon.images.platform import Platform, PlatformError, parse_platform
from declarun.daemon.images.registry import (
    BytesSink,
    RegistryClient,
    RegistryConfig,
    RegistryNotFoundError,
    new_hasher,
)
from declarun.daemon.images.registry_push import bytes_opener, push_blob, put_manifest
from declarun.errors import ContentError, RegistryError
from declarun.reference import parse_reference
from tests.daemon.conftest import AUTH_PASSWORD, AUTH_USER, PushedImage, PushedIndex
from tests.support.images import OciImage, build_busybox_layout, skopeo_push
from tests.support.loopback import CuttingProxy, serve_app
from tests.support.registry import RunningRegistry

T = TypeVar("T")
FAST = RegistryConfig(backoff_base=0.001, backoff_max=0.01)


def run(coro: Coroutine[Any, Any, T]) -> T:
    return asyncio.run(coro)


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


# -- against the real registry ---------------------------------------------------------


def test_pull_manifest_by_tag_and_digest_and_blobs(busybox_image_pushed: PushedImage) -> None:
    image = busybox_image_pushed.image

    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(parse_reference(busybox_image_pushed.reference))
            by_tag = await repo.get_manifest("test")
            assert by_tag.digest == image.manifest.digest
            assert by_tag.media_type == "application/vnd.oci.image.manifest.v1+json"
            assert by_tag.data == image.manifest.data
            by_digest = await repo.get_manifest(image.manifest.digest)
            assert by_digest == by_tag
            assert await repo.head_manifest("test") == by_tag.descriptor()
            config = await repo.fetch_blob_bytes(image.config.digest)
            assert json.loads(config)["config"]["Cmd"] == ["sh"]
            for layer in image.layers:
                sink = BytesSink()
                seen: list[int] = []
                size = await repo.fetch_blob(
                    layer.digest, sink, size=layer.size, progress=seen.append
                )
                assert size == layer.size and bytes(sink.buffer) == layer.data
                assert seen[-1] == layer.size
                assert await repo.head_blob(layer.digest) == layer.size
            assert await repo.list_tags() == ["test"]

    run(main())


def test_missing_manifest_and_blob_are_clear_errors(busybox_image_pushed: PushedImage) -> None:
    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(parse_reference(busybox_image_pushed.reference))
            with pytest.raises(RegistryNotFoundError, match="manifest unknown"):
                await repo.get_manifest("no-such-tag")
            absent = sha256(b"absent")
            assert await repo.head_blob(absent) is None
            with pytest.raises(RegistryNotFoundError, match="blob unknown"):
                await repo.fetch_blob(absent, BytesSink())
            assert await repo.head_manifest("no-such-tag") is None

    run(main())


def test_blob_download_resumes_with_range_after_dropped_connections(
    busybox_image_pushed: PushedImage,
) -> None:
    layer = max(busybox_image_pushed.image.layers, key=lambda b: b.size)
    assert layer.size > 300_000  # the busybox layer: big enough to cut twice

    async def main() -> None:
        # Connections 1 and 2 break mid-body; the third delivers the rest.
        async with CuttingProxy(
            busybox_image_pushed.registry.port, cuts=[120_000, 90_000]
        ) as proxy:
            async with RegistryClient(FAST) as client:
                repo = client.repository(f"127.0.0.1:{proxy.port}/busybox")
                sink = BytesSink()
                size = await repo.fetch_blob(layer.digest, sink, size=layer.size)
            assert size == layer.size and bytes(sink.buffer) == layer.data
            sent = b"".join(proxy.requests).decode("latin-1").lower()
            assert proxy.connections >= 3
            assert sent.count("range: bytes=") >= 2  # resumed, not restarted

    run(main())


def test_resume_from_an_earlier_partial_download(busybox_image_pushed: PushedImage) -> None:
    layer = busybox_image_pushed.image.layers[0]
    half = layer.size // 2

    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(parse_reference(busybox_image_pushed.reference))
            hasher = new_hasher(layer.digest)
            hasher.update(layer.data[:half])
            sink = BytesSink()
            await repo.fetch_blob(layer.digest, sink, size=layer.size, offset=half, hasher=hasher)
            assert bytes(sink.buffer) == layer.data[half:]
            # A wrong prefix is caught by the final digest check.
            bad = new_hasher(layer.digest)
            bad.update(b"x" * half)
            with pytest.raises(ContentError, match="digest mismatch"):
                await repo.fetch_blob(
                    layer.digest, BytesSink(), size=layer.size, offset=half, hasher=bad
                )

    run(main())


def test_platform_selection_from_a_multi_platform_index(
    busybox_index_pushed: PushedIndex,
) -> None:
    amd64, arm64 = busybox_index_pushed.index.images

    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(parse_reference(busybox_index_pushed.reference))
            top = await repo.get_manifest("test")
            assert top.is_index and top.digest == busybox_index_pushed.index.index.digest
            chosen = await repo.resolve("test", parse_platform("linux/arm64"))
            assert chosen.manifest.digest == arm64.manifest.digest
            assert chosen.index is not None and chosen.index.digest == top.digest
            chosen = await repo.resolve("test", Platform("linux", "amd64"))
            assert chosen.manifest.digest == amd64.manifest.digest
            with pytest.raises(PlatformError, match=r"linux/s390x.*offered: linux/amd64"):
                await repo.resolve("test", parse_platform("linux/s390x"))
            # By digest, a single-platform manifest is used as is.
            direct = await repo.resolve(arm64.manifest.digest)
            assert direct.index is None and direct.manifest.digest == arm64.manifest.digest

    run(main())


def test_basic_auth_with_htpasswd(auth_busybox_pushed: PushedImage) -> None:
    ref = parse_reference(auth_busybox_pushed.reference)
    digest = auth_busybox_pushed.image.manifest.digest

    async def main() -> None:
        good = Credentials(AUTH_USER, AUTH_PASSWORD)
        async with RegistryClient(FAST, credentials=lambda name: good) as client:
            manifest = await client.repository(ref).get_manifest("test")
            assert manifest.digest == digest
        async with RegistryClient(FAST) as client:
            wrong = client.repository(ref, credentials=Credentials(AUTH_USER, "wrong"))
            with pytest.raises(RegistryAuthError, match="authentication failed"):
                await wrong.get_manifest("test")
            with pytest.raises(RegistryAuthError, match="authentication required"):
                await client.repository(ref).get_manifest("test")

    run(main())


def _manifest_of(image: OciImage) -> tuple[bytes, str]:
    return image.manifest.data, image.manifest.media_type


def test_push_monolithic_and_chunked_then_skopeo_reads_it(
    registry: RunningRegistry, tmp_path: Path
) -> None:
    image = build_busybox_layout(
        tmp_path / "layout", tag="x", extra_layers=2, extra_layer_size=200_000
    )
    blobs = [image.config, *image.layers]

    async def main() -> None:
        async with RegistryClient(FAST) as client:
            for target, chunk in (("pushed/mono", None), ("pushed/chunked", 65_536)):
                repo = client.repository(f"{registry.host}/{target}")
                for blob in blobs:
                    result = await push_blob(
                        repo, blob.digest, blob.size, bytes_opener(blob.data), chunk_size=chunk
                    )
                    assert result.outcome == "uploaded"
                    assert await repo.head_blob(blob.digest) == blob.size
                data, media_type = _manifest_of(image)
                assert await put_manifest(repo, "v1", data, media_type) == image.manifest.digest
                # Pushed again: everything is already there.
                again = await push_blob(repo, blobs[1].digest, blobs[1].size, bytes_opener(b""))
                assert again.outcome == "exists"

    run(main())
    for target in ("pushed/mono", "pushed/chunked"):
        out = subprocess.run(
            ["skopeo", "inspect", "--tls-verify=false", f"docker://{registry.host}/{target}:v1"],
            capture_output=True,
            text=True,
            check=True,
        )
        doc = json.loads(out.stdout)
        assert doc["Digest"] == image.manifest.digest
        assert doc["Layers"] == [layer.digest for layer in image.layers]


def test_cross_repository_mount(busybox_image_pushed: PushedImage) -> None:
    image = busybox_image_pushed.image
    host = busybox_image_pushed.registry.host

    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(f"{host}/mounted/busybox")
            for blob in (image.config, *image.layers):
                result = await push_blob(
                    repo, blob.digest, blob.size, bytes_opener(b""), mount_from=["busybox"]
                )
                assert result.outcome == "mounted" and result.mounted_from == "busybox"
            data, media_type = _manifest_of(image)
            await put_manifest(repo, "test", data, media_type)
            fetched = await repo.get_manifest("test")
            assert fetched.digest == image.manifest.digest
            # A source that lacks the blob: the registry opens an upload instead.
            fresh = b"fresh blob content"
            result = await push_blob(
                repo, sha256(fresh), len(fresh), bytes_opener(fresh), mount_from=["nowhere"]
            )
            assert result.outcome == "uploaded"

    run(main())


def test_push_refuses_bytes_that_do_not_match_the_digest(registry: RunningRegistry) -> None:
    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(f"{registry.host}/pushed/bad")
            with pytest.raises(RegistryError, match="digest invalid"):
                await push_blob(repo, sha256(b"right"), 5, bytes_opener(b"wrong"))
            assert await repo.head_blob(sha256(b"right")) is None

    run(main())


def test_docker_hub_mirrors_are_tried_first(
    busybox_image_pushed: PushedImage, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg = busybox_image_pushed.registry
    skopeo_push(busybox_image_pushed.image.layout, reg, "library/busybox:test", tag="test")
    # Never reach the real Docker Hub from a test, even if the mirrors failed.
    monkeypatch.setattr(registry_transport, "DOCKER_HUB_HOST", "127.0.0.1:9")
    dead = f"http://127.0.0.1:{_closed_port()}"

    async def main() -> None:
        config = RegistryConfig(mirrors=(dead, reg.url), backoff_base=0.001, backoff_max=0.01)
        async with RegistryClient(config) as client:
            repo = client.repository(parse_reference("busybox:test"))
            manifest = await repo.get_manifest("test")
            assert manifest.digest == busybox_image_pushed.image.manifest.digest
            layer = busybox_image_pushed.image.layers[0]
            sink = BytesSink()
            await repo.fetch_blob(layer.digest, sink)
            assert bytes(sink.buffer) == layer.data

    run(main())


def _closed_port() -> int:
    from tests.support.registry import free_port

    return free_port()


# -- loopback fault servers --------------------------------------------------------------


def _registry_app(routes: list[web.RouteDef]) -> web.Application:
    app = web.Application()

    async def ping(request: web.Request) -> web.Response:
        return web.Response(status=200)

    app.add_routes([web.get("/v2/", ping), *routes])
    return app


def test_digest_mismatch_is_an_error_and_nothing_is_accepted() -> None:
    good, evil = b"the real layer", b"a tampered layer"
    digest = sha256(good)
    manifest = json.dumps({"schemaVersion": 2, "layers": [], "config": {}}).encode()

    async def blob(request: web.Request) -> web.Response:
        return web.Response(body=evil)

    async def manifests(request: web.Request) -> web.Response:
        return web.Response(
            body=manifest, content_type="application/vnd.oci.image.manifest.v1+json"
        )

    async def main() -> None:
        app = _registry_app(
            [web.get("/v2/x/blobs/{d}", blob), web.get("/v2/x/manifests/{r}", manifests)]
        )
        async with serve_app(app) as url, RegistryClient(FAST) as client:
            repo = client.repository(f"{url.removeprefix('http://')}/x")
            with pytest.raises(ContentError, match="digest mismatch"):
                await repo.fetch_blob(digest, BytesSink())
            with pytest.raises(ContentError, match="more than"):
                await repo.fetch_blob(digest, BytesSink(), size=len(good))
            with pytest.raises(ContentError, match="digest mismatch"):
                await repo.get_manifest(sha256(b"another manifest"))
            assert (await repo.get_manifest("tag")).digest == sha256(manifest)

    run(main())


def test_authorization_is_not_forwarded_on_redirect_to_another_host() -> None:
    data = b"blob behind a redirect"
    digest = sha256(data)
    seen: dict[str, str | None] = {}

    async def storage(request: web.Request) -> web.Response:
        seen["storage"] = request.headers.get("Authorization")
        return web.Response(body=data)

    async def main() -> None:
        async with serve_app(_registry_app([web.get("/blob", storage)])) as storage_url:

            async def ping(request: web.Request) -> web.Response:
                if request.headers.get("Authorization") is None:
                    return web.Response(
                        status=401, headers={"WWW-Authenticate": 'Basic realm="test"'}
                    )
                return web.Response(status=200)

            async def blob(request: web.Request) -> web.Response:
                seen["registry"] = request.headers.get("Authorization")
                raise web.HTTPTemporaryRedirect(f"{storage_url}/blob")

            app = web.Application()
            app.add_routes([web.get("/v2/", ping), web.get("/v2/x/blobs/{d}", blob)])
            async with serve_app(app) as url:
                creds = Credentials("user", "pass")
                async with RegistryClient(FAST) as client:
                    repo = client.repository(f"{url.removeprefix('http://')}/x", credentials=creds)
                    sink = BytesSink()
                    await repo.fetch_blob(digest, sink)
                    assert bytes(sink.buffer) == data

    run(main())
    assert seen["registry"] is not None and seen["registry"].startswith("Basic ")
    assert seen["storage"] is None


@pytest.mark.parametrize("status", [503, 429, 500])
def test_retries_on_server_errors_and_rate_limits(status: int) -> None:
    manifest = json.dumps({"schemaVersion": 2, "manifests": []}).encode()
    calls = {"n": 0}

    async def flaky(request: web.Request) -> web.Response:
        calls["n"] += 1
        if calls["n"] <= 2:
            return web.Response(status=status, headers={"Retry-After": "0"})
        return web.Response(body=manifest, content_type="application/vnd.oci.image.index.v1+json")

    async def main() -> None:
        app = _registry_app([web.get("/v2/x/manifests/{r}", flaky)])
        async with serve_app(app) as url, RegistryClient(FAST) as client:
            got = await client.repository(f"{url.removeprefix('http://')}/x").get_manifest("t")
            assert got.is_index and got.digest == sha256(manifest)

    run(main())
    assert calls["n"] == 3


def test_retries_are_bounded() -> None:
    calls = {"n": 0}

    async def down(request: web.Request) -> web.Response:
        calls["n"] += 1
        return web.json_response(
            {"errors": [{"code": "UNAVAILABLE", "message": "service unavailable"}]}, status=503
        )

    async def main() -> None:
        config = RegistryConfig(max_retries=3, backoff_base=0.001, backoff_max=0.01)
        app = _registry_app([web.get("/v2/x/manifests/{r}", down)])
        async with serve_app(app) as url, RegistryClient(config) as client:
            repo = client.repository(f"{url.removeprefix('http://')}/x")
            with pytest.raises(RegistryError, match="503: unavailable: service unavailable"):
                await repo.get_manifest("t")

    run(main())
    assert calls["n"] == 4  # the first try and three retries


def test_unreachable_registry_is_a_clear_error() -> None:
    async def main() -> None:
        async with RegistryClient(FAST) as client:
            repo = client.repository(f"127.0.0.1:{_closed_port()}/x")
            with pytest.raises(RegistryError, match="cannot reach registry"):
                await repo.get_manifest("t")

    run(main())


def test_schema1_manifests_are_refused() -> None:
    async def schema1(request: web.Request) -> web.Response:
        body = json.dumps({"schemaVersion": 1, "name": "x", "fsLayers": []}).encode()
        return web.Response(
            body=body, content_type="application/vnd.docker.distribution.manifest.v1+prettyjws"
        )

    async def main() -> None:
        app = _registry_app([web.get("/v2/x/manifests/{r}", schema1)])
        async with serve_app(app) as url, RegistryClient(FAST) as client:
            repo = client.repository(f"{url.removeprefix('http://')}/x")
            with pytest.raises(ContentError, match="schema 1"):
                await repo.get_manifest("t")

    run(main())


def test_transport_rules() -> None:
    config = RegistryConfig(insecure_registries=("reg.lan:5000", "10.1.0.0/16"))
    assert config.is_insecure("127.0.0.1:5000")
    assert config.is_insecure("127.8.9.10")
    assert config.is_insecure("localhost:5000")
    assert config.is_insecure("[::1]:5000")
    assert config.is_insecure("reg.lan:5000")
    assert config.is_insecure("10.1.2.3:443")
    assert not config.is_insecure("10.2.0.1")
    assert not config.is_insecure("reg.lan:5001")
    assert not config.is_insecure("example.com")
    client = RegistryClient(RegistryConfig(mirrors=("https://mirror.example",)))
    hub = client.endpoints("docker.io")
    assert [str(e.url) for e in hub] == ["https://mirror.example", "https://registry-1.docker.io"]
    assert [str(e.url) for e in client.endpoints("docker.io", push=True)] == [
        "https://registry-1.docker.io"
    ]
    assert str(client.endpoints("example.com:5000")[0].url) == "https://example.com:5000"
