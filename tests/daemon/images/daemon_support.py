"""Helpers for the image API tests: the docker CLI against a test daemon, fake registries.

* :func:`docker` runs ``/usr/local/bin/docker`` with ``DOCKER_HOST`` pointing at a test
  daemon (and ``DOCKER_CONFIG`` at a directory of the test's choice).
* :class:`ThreadLoop` runs an asyncio loop in a background thread, to host servers from
  :mod:`tests.support.loopback` (a fake registry, a connection-cutting proxy) while the
  test itself blocks on subprocesses.
* :func:`layout_registry_app` serves an OCI layout as a minimal read-only registry, with
  hooks to corrupt or stall a blob.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiohttp import web

from tests.support.daemon import DaemonProcess
from tests.support.images import OciImage

__all__ = ["DOCKER", "ThreadLoop", "docker", "json_lines", "layout_registry_app", "need_docker"]

DOCKER = "/usr/local/bin/docker"
T = TypeVar("T")


def need_docker() -> None:
    """Skip unless the docker CLI is installed."""
    if not Path(DOCKER).exists() and shutil.which("docker") is None:
        pytest.skip("the docker CLI is not installed")


def docker(
    daemon: DaemonProcess,
    *args: str,
    input: bytes | None = None,
    config: Path | None = None,
    check: bool = True,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    """Run the docker CLI against ``daemon``; with ``check`` a failure shows its output."""
    env = daemon.env()
    if config is not None:
        env["DOCKER_CONFIG"] = str(config)
    done = subprocess.run(
        [DOCKER if Path(DOCKER).exists() else "docker", *args],
        input=input.decode() if input is not None else None,
        capture_output=True,
        text=True,
        env=env,
        timeout=timeout,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
            f"\n--- daemon log ---\n{daemon.log()[-4000:]}"
        )
    return done


class ThreadLoop:
    """An asyncio event loop in a daemon thread; ``run(coro)`` waits for a result."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro: Coroutine[Any, Any, T], timeout: float = 60) -> T:
        """Run ``coro`` on the loop and return its result."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        """Stop the loop and its thread."""
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)
        self.loop.close()


def layout_registry_app(
    image: OciImage,
    repository: str,
    *,
    blob_hook: Callable[[str, bytes, web.StreamResponse], Awaitable[bool]] | None = None,
    corrupt: str | None = None,
) -> web.Application:
    """A read-only registry serving ``image`` as ``repository:<image.tag>``.

    ``corrupt`` names a blob digest whose bytes are served with one byte flipped;
    ``blob_hook(digest, data, response)`` may write a blob itself (return True when it did).
    """
    blobs = {b.digest: b for b in (image.manifest, image.config, *image.layers)}

    async def ping(_request: web.Request) -> web.Response:
        return web.json_response({})

    async def manifest(request: web.Request) -> web.StreamResponse:
        ref = request.match_info["ref"]
        if ref not in (image.tag, image.manifest.digest):
            body = {"errors": [{"code": "MANIFEST_UNKNOWN", "message": "manifest unknown"}]}
            return web.json_response(body, status=404)
        headers = {
            "Content-Type": image.manifest.media_type,
            "Docker-Content-Digest": image.manifest.digest,
        }
        data = b"" if request.method == "HEAD" else image.manifest.data
        return web.Response(body=data, headers=headers)

    async def blob(request: web.Request) -> web.StreamResponse:
        digest = request.match_info["digest"]
        found = blobs.get(digest)
        if found is None:
            return web.json_response({"errors": [{"code": "BLOB_UNKNOWN"}]}, status=404)
        data = found.data
        if digest == corrupt:
            data = bytes([data[0] ^ 0xFF]) + data[1:]
        response = web.StreamResponse(headers={"Content-Length": str(len(data))})
        await response.prepare(request)
        if blob_hook is not None and await blob_hook(digest, data, response):
            return response
        await response.write(data)
        return response

    app = web.Application()
    app.router.add_get("/v2/", ping)
    app.router.add_route("*", f"/v2/{repository}/manifests/{{ref}}", manifest)
    app.router.add_get(f"/v2/{repository}/blobs/{{digest}}", blob)
    return app


def json_lines(text: bytes | str) -> list[dict[str, Any]]:
    """The JSON documents of a streamed response, one per line."""
    if isinstance(text, bytes):
        text = text.decode()
    return [json.loads(line) for line in text.splitlines() if line.strip()]
