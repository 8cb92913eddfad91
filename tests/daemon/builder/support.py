"""Helpers for the builder tests: contexts on disk, ``docker build`` with the classic builder,
raw ``POST /build`` calls, and a look into images (their config and files).

* :func:`write_context` makes a directory with a Dockerfile and files;
* :func:`docker_build` runs the docker CLI (``DOCKER_BUILDKIT=0``) against a daemon;
* :func:`post_build` sends a context tar (or any bytes) to ``/build`` over the socket and
  returns the status and the JSON messages;
* :func:`saved_image` reads an image's config and each layer's entries from ``docker save``;
* :func:`image_files` exports the image's filesystem (a container's ``docker export``) as
  ``{path: (type, mode, uid, gid, content-or-link)}``.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.daemon.images.daemon_support import DOCKER
from tests.support.daemon import http_request

__all__ = [
    "Saved",
    "docker_build",
    "docker_env",
    "image_files",
    "post_build",
    "saved_image",
    "tar_of",
    "write_context",
]


def write_context(root: Path, dockerfile: str, files: Mapping[str, str | bytes] = {}) -> Path:
    """``root`` with ``Dockerfile`` and ``files`` (path -> content) in it."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "Dockerfile").write_text(dockerfile)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def docker_env(host: str) -> dict[str, str]:
    """An environment for the docker CLI at ``host``, classic builder, no user config."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_HOST"] = host
    env["DOCKER_BUILDKIT"] = "0"
    return env


def docker_build(
    host: str, context: Path | str, *args: str, check: bool = True, input: str | None = None
) -> subprocess.CompletedProcess[str]:
    """``docker build [args] context`` with the classic builder."""
    done = subprocess.run(
        [DOCKER if Path(DOCKER).exists() else "docker", "build", *args, str(context)],
        input=input,
        capture_output=True,
        text=True,
        env=docker_env(host),
        timeout=600,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker build {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def docker(host: str, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Any docker CLI command at ``host``."""
    done = subprocess.run(
        [DOCKER if Path(DOCKER).exists() else "docker", *args],
        capture_output=True,
        text=True,
        env=docker_env(host),
        timeout=300,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"docker {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done


def tar_of(root: Path) -> bytes:
    """The directory ``root`` as a tar, the way the docker CLI sends a context."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w") as tar:
        for path in sorted(root.rglob("*")):
            tar.add(path, arcname=str(path.relative_to(root)), recursive=False)
    return out.getvalue()


def post_build(
    socket_path: Path,
    body: bytes,
    query: Mapping[str, str | list[str]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> tuple[int, list[dict[str, Any]], bytes]:
    """``POST /build`` with ``body``; the status, the JSON lines (if any) and the raw body."""
    path = "/v1.45/build"
    if query:
        path += "?" + urllib.parse.urlencode(query, doseq=True)
    result = http_request(
        socket_path,
        "POST",
        path,
        body=body,
        headers={"Content-Type": "application/x-tar", **(headers or {})},
    )
    lines = []
    if result.status == 200:
        lines = [json.loads(line) for line in result.body.decode().splitlines() if line.strip()]
    return result.status, lines, result.body


def stream_text(lines: list[dict[str, Any]]) -> str:
    """The ``stream`` messages joined, as the CLI prints them."""
    return "".join(str(m.get("stream", "")) for m in lines)


@dataclass(frozen=True)
class Saved:
    """An image as ``docker save`` gives it: its config and each layer's tar members."""

    config: dict[str, Any]
    layers: list[dict[str, tarfile.TarInfo]]
    layer_bytes: list[bytes]


def saved_image(host: str, image: str) -> Saved:
    """``docker save image``, read back."""
    data = subprocess.run(
        [DOCKER if Path(DOCKER).exists() else "docker", "save", image],
        capture_output=True,
        env=docker_env(host),
        timeout=300,
        check=True,
    ).stdout
    layers = []
    raw = []
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(archive.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            member = archive.extractfile(name)
            assert member is not None
            blob = member.read()
            raw.append(blob)
            with tarfile.open(fileobj=io.BytesIO(blob)) as layer:
                layers.append({"/" + m.name.rstrip("/"): m for m in layer.getmembers()})
    return Saved(config, layers, raw)


def image_files(host: str, image: str) -> dict[str, tuple[str, int, int, int, str]]:
    """The image's whole filesystem, from a created (not started) container's export."""
    created = docker(host, "create", image, "true").stdout.strip()
    try:
        data = subprocess.run(
            [DOCKER if Path(DOCKER).exists() else "docker", "export", created],
            capture_output=True,
            env=docker_env(host),
            timeout=300,
            check=True,
        ).stdout
    finally:
        docker(host, "rm", "-f", created, check=False)
    files: dict[str, tuple[str, int, int, int, str]] = {}
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        for member in archive.getmembers():
            path = "/" + member.name.strip("/")
            if member.isdir():
                kind, content = "dir", ""
            elif member.issym():
                kind, content = "symlink", member.linkname
            elif member.islnk():
                kind, content = "hardlink", "/" + member.linkname.strip("/")
            elif member.isfile():
                handle = archive.extractfile(member)
                assert handle is not None
                kind, content = "file", handle.read().decode("utf-8", "replace")
            else:
                kind, content = "other", ""
            files[path] = (kind, member.mode & 0o7777, member.uid, member.gid, content)
    return files
