"""The build cache's life: ``cachefrom``, ``/build/prune`` and ``/system/df``, reproducible
images after a prune, a client that goes away, and docker-py and docker-compose as clients."""

from __future__ import annotations

import functools
import gzip
import hashlib
import http.server
import json
import os
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
from pathlib import Path

import docker as docker_py
import pytest

from tests.daemon.builder.conftest import BuildDaemon
from tests.daemon.builder.support import (
    docker,
    docker_build,
    docker_env,
    post_build,
    tar_of,
    write_context,
)
from tests.daemon.conftest import PushedImage
from tests.support.daemon import http_request

pytestmark = pytest.mark.root


def _cached_steps(output: str) -> int:
    return output.count("---> Using cache")


def _image_ids(host: str) -> set[str]:
    return set(docker(host, "images", "-aq", "--no-trunc").stdout.split())


def test_cache_from_an_image_without_local_cache(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    host = build_daemon.host
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
ENV MODE=cachefrom
RUN echo built > /built
COPY a.txt /a.txt
""",
        {"a.txt": "a\n"},
    )
    docker_build(host, context, "-t", "cachesrc:1")
    archive = tmp_path / "image.tar"
    docker(host, "save", "-o", str(archive), "cachesrc:1")
    docker(host, "rmi", "cachesrc:1")
    docker(host, "load", "-i", str(archive))
    # The loaded image has no parents here and no cache entries: only --cache-from helps.
    assert _cached_steps(docker_build(host, context, "--no-cache").stdout) == 0
    done = docker_build(host, context, "--cache-from", "cachesrc:1", "-t", "cachedfrom:1")
    assert _cached_steps(done.stdout) == 3, done.stdout
    built = docker(host, "image", "inspect", "-f", "{{.Id}}", "cachedfrom:1").stdout
    loaded = docker(host, "image", "inspect", "-f", "{{.Config.Env}}", "cachedfrom:1").stdout
    assert "MODE=cachefrom" in loaded
    assert built.strip()
    run = docker(host, "run", "--rm", "cachedfrom:1", "cat", "/built", "/a.txt").stdout
    assert run == "built\na\n"


def test_prune_and_disk_usage(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    host = build_daemon.host
    context = write_context(
        tmp_path / "ctx", f"FROM {build_daemon.base}\nRUN echo pruned > /p\nLABEL prune=me\n"
    )
    docker_build(host, context, "--no-cache", "-t", "keep:1")
    df = json.loads(http_request(build_daemon.daemon.socket_path, "GET", "/v1.45/system/df").body)
    assert set(df) >= {"LayersSize", "Images", "Containers", "Volumes", "BuildCache"}
    records = [r for r in df["BuildCache"] if r["Description"] == "RUN echo pruned > /p"]
    assert records and records[0]["Shared"] is True and records[0]["Size"] > 0
    assert records[0]["Type"] == "regular"
    keep = next(i for i in df["Images"] if "keep:1" in i["RepoTags"])
    assert keep["Containers"] == 0 and keep["SharedSize"] >= 0

    # Without --all, the cache of a tagged image stays.
    out = docker(host, "builder", "prune", "-f").stdout
    assert _cached_steps(docker_build(host, context, "-t", "keep:1").stdout) == 2, out

    # The untagged result of a build is not shared: a plain prune takes its cache.
    dangling = write_context(
        tmp_path / "dangling", f"FROM {build_daemon.base}\nRUN echo gone > /g\n"
    )
    docker_build(host, dangling)
    before = _image_ids(host)
    pruned = json.loads(
        http_request(build_daemon.daemon.socket_path, "POST", "/v1.45/build/prune").body
    )
    assert pruned["SpaceReclaimed"] > 0
    assert len(pruned["CachesDeleted"]) >= 1
    assert len(_image_ids(host)) < len(before)
    assert _cached_steps(docker_build(host, dangling).stdout) == 0

    # --all takes every record not in use; the tagged image itself stays.
    docker(host, "builder", "prune", "-a", "-f")
    assert _cached_steps(docker_build(host, context, "-t", "keep:1").stdout) == 0
    assert docker(host, "run", "--rm", "keep:1", "cat", "/p").stdout == "pruned\n"
    assert "Build Cache" in docker(host, "system", "df").stdout


def test_same_inputs_give_the_same_image_with_source_date_epoch(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    host = build_daemon.host
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
ARG SOURCE_DATE_EPOCH
RUN echo hi > /x && mkdir -p /d/e && touch /d/e/f
COPY a.txt /app/
WORKDIR /work
LABEL reproducible=yes
""",
        {"a.txt": "same\n"},
    )
    args = ("--build-arg", "SOURCE_DATE_EPOCH=1700000000", "-t", "repro:1")
    first = docker(host, "image", "inspect", "-f", "{{.Id}}", "repro:1", check=False)
    assert first.returncode != 0
    docker_build(host, context, *args)
    id1 = docker(host, "image", "inspect", "-f", "{{.Id}}", "repro:1").stdout.strip()
    created = docker(host, "image", "inspect", "-f", "{{.Created}}", "repro:1").stdout
    assert created.startswith("2023-11-14T22:13:20")
    docker(host, "rmi", "repro:1")
    docker(host, "builder", "prune", "-a", "-f")
    os.utime(context / "a.txt", (2_000_000_000, 2_000_000_000))
    again = docker_build(host, context, *args).stdout
    assert _cached_steps(again) == 0
    id2 = docker(host, "image", "inspect", "-f", "{{.Id}}", "repro:1").stdout.strip()
    assert id1 == id2


def test_a_client_going_away_cancels_the_build(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    host = build_daemon.host
    context = write_context(
        tmp_path / "ctx", f"FROM {build_daemon.base}\nRUN echo started-$((1+1)); sleep 300\n"
    )
    before = _image_ids(host)
    body = tar_of(context)
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(build_daemon.daemon.socket_path))
        sock.sendall(
            b"POST /v1.45/build?nocache=1 HTTP/1.1\r\nHost: d\r\n"
            + b"Content-Type: application/x-tar\r\n"
            + f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        seen = b""
        deadline = time.monotonic() + 60
        while b"started-2" not in seen and time.monotonic() < deadline:
            seen += sock.recv(65536)
        assert b"Running in" in seen and b"started-2" in seen
        assert docker(host, "ps", "-q").stdout.strip()
    deadline = time.monotonic() + 30
    while docker(host, "ps", "-aq").stdout.strip() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert docker(host, "ps", "-aq").stdout.strip() == ""
    assert _image_ids(host) == before
    builds = build_daemon.daemon.data_root / "builder" / "builds"
    deadline = time.monotonic() + 10
    while any(builds.iterdir()) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert list(builds.iterdir()) == []


def test_docker_py_builds(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"FROM {build_daemon.base} AS base\nARG V\nRUN echo $V > /v\nFROM base AS extra\nRUN false\n",
    )
    client = docker_py.DockerClient(base_url=build_daemon.host, timeout=300)
    try:
        image, logs = client.images.build(
            path=str(context), tag="dockerpy:1", buildargs={"V": "py"}, target="base", rm=True
        )
        assert "dockerpy:1" in image.tags
        assert any("Successfully built" in chunk.get("stream", "") for chunk in logs)
        assert client.containers.run("dockerpy:1", ["cat", "/v"], remove=True) == b"py\n"
        with pytest.raises(docker_py.errors.BuildError, match="returned a non-zero code: 1"):
            client.images.build(path=str(context), tag="dockerpy:2")
        with pytest.raises(docker_py.errors.APIError, match="unknown instruction"):
            (context / "Dockerfile").write_text("FROM scratch\nNOPE x\n")
            client.images.build(path=str(context))
    finally:
        client.close()
    docker(build_daemon.host, "container", "prune", "-f")


def test_docker_compose_v1_builds(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    compose = shutil.which("docker-compose")
    if compose is None:
        pytest.skip("docker-compose (v1) is not installed")
    write_context(tmp_path / "app", f"FROM {build_daemon.base}\nRUN echo compose > /c\n")
    (tmp_path / "docker-compose.yml").write_text(
        "version: '3'\nservices:\n  app:\n    build: ./app\n    image: composed:1\n"
    )
    env = docker_env(build_daemon.host)
    env["COMPOSE_DOCKER_CLI_BUILD"] = "0"
    done = subprocess.run(
        [compose, "build"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    run = docker(build_daemon.host, "run", "--rm", "composed:1", "cat", "/c")
    assert run.stdout == "compose\n"


def test_remote_contexts_over_http_and_git_urls_refused(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx", f"FROM {build_daemon.base}\nCOPY f.txt /f.txt\n", {"f.txt": "remote\n"}
    )
    served = tmp_path / "served"
    served.mkdir()
    (served / "context.tar.gz").write_bytes(gzip.compress(tar_of(context)))
    (served / "Dockerfile").write_text(f"FROM {build_daemon.base}\nRUN echo lone > /lone\n")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        base_url = f"http://127.0.0.1:{server.server_address[1]}"
        docker_build(build_daemon.host, f"{base_url}/context.tar.gz", "-t", "remote:1")
        out = docker(build_daemon.host, "run", "--rm", "remote:1", "cat", "/f.txt").stdout
        assert out == "remote\n"
        docker_build(build_daemon.host, f"{base_url}/Dockerfile", "-t", "remote:2")
        out = docker(build_daemon.host, "run", "--rm", "remote:2", "cat", "/lone").stdout
        assert out == "lone\n"
        missing = docker_build(build_daemon.host, f"{base_url}/nothing.tar", check=False)
        assert missing.returncode != 0 and "404" in missing.stderr
        # The CLI downloads URLs itself; the API's ``remote`` makes the daemon do it.
        socket_path = build_daemon.daemon.socket_path
        for name, tag in (("context.tar.gz", "remote:3"), ("Dockerfile", "remote:4")):
            status, lines, _ = post_build(
                socket_path, b"", {"remote": f"{base_url}/{name}", "t": tag}
            )
            assert status == 200 and f"Successfully tagged {tag}" in str(lines), lines
        status, _, body = post_build(socket_path, b"", {"remote": f"{base_url}/nothing.tar"})
        assert status == 400 and b"404" in body
    finally:
        server.shutdown()
        server.server_close()
    refused = http_request(
        build_daemon.daemon.socket_path,
        "POST",
        "/v1.45/build?" + urllib.parse.urlencode({"remote": "https://example.com/repo.git"}),
    )
    assert refused.status == 501
    assert "git repository" in json.loads(refused.body)["message"]


def test_system_df_answers_every_part_as_dockerd(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    from tests.support.swagger import SWAGGER_PATH, validate

    host = build_daemon.host
    context = write_context(tmp_path / "ctx", f"FROM {build_daemon.base}\nRUN echo df > /df\n")
    docker_build(host, context, "-t", "df:1")
    docker(host, "volume", "create", "df-volume")
    container = docker(host, "create", "-v", "df-volume:/data", "df:1", "true").stdout.strip()
    try:
        socket_path = build_daemon.daemon.socket_path
        df = json.loads(http_request(socket_path, "GET", "/v1.45/system/df").body)
        assert df["LayersSize"] > 0
        image = next(i for i in df["Images"] if "df:1" in i["RepoTags"])
        assert image["Containers"] == 1
        ours = next(c for c in df["Containers"] if c["Id"] == container)
        assert ours["SizeRootFs"] >= ours.get("SizeRw", 0)
        volume = next(v for v in df["Volumes"] if v["Name"] == "df-volume")
        assert volume["UsageData"] == {"Size": 0, "RefCount": 1}
        assert any(r["Description"] == "RUN echo df > /df" for r in df["BuildCache"])
        if SWAGGER_PATH.exists():  # vendored into the repository soon
            # Containers and Volumes are shaped by their own areas (and tested there).
            for part, definition in (("Images", "ImageSummary"), ("BuildCache", "BuildCache")):
                for item in df[part]:
                    validate(item, definition)
        only = json.loads(http_request(socket_path, "GET", "/v1.45/system/df?type=volume").body)
        assert only["Images"] is None and only["BuildCache"] is None and only["Volumes"]
        old = json.loads(http_request(socket_path, "GET", "/v1.41/system/df?type=volume").body)
        assert old["Images"] is not None and "BuilderSize" in old
        bad = http_request(socket_path, "GET", "/v1.45/system/df?type=nope")
        assert bad.status == 400
    finally:
        docker(host, "rm", "-f", container)
        docker(host, "volume", "rm", "df-volume")


def test_private_base_images_use_the_clients_registry_config(
    build_daemon: BuildDaemon, auth_busybox_pushed: PushedImage, tmp_path: Path
) -> None:
    registry = auth_busybox_pushed.registry
    context = write_context(
        tmp_path / "ctx", f"FROM {auth_busybox_pushed.reference}\nRUN echo private > /p\n"
    )
    config = tmp_path / "docker-config"
    config.mkdir()
    env = docker_env(build_daemon.host)
    env["DOCKER_CONFIG"] = str(config)

    def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            ["docker", *args], input=stdin, capture_output=True, text=True, env=env, timeout=300
        )

    denied = cli("build", "-t", "private:1", str(context))
    assert denied.returncode != 0
    assert "denied" in denied.stderr or "unauthorized" in denied.stderr.lower(), denied.stderr
    login = cli(
        "login", "-u", str(registry.username), "--password-stdin", registry.host,
        stdin=f"{registry.password}\n",
    )  # fmt: skip
    assert login.returncode == 0, login.stderr
    # The CLI sends every credential of its config as X-Registry-Config.
    built = cli("build", "--pull", "-t", "private:1", str(context))
    assert built.returncode == 0, built.stderr
    assert "Pulling from" in built.stdout or "Pull complete" in built.stdout, built.stdout
    assert docker(build_daemon.host, "run", "--rm", "private:1", "cat", "/p").stdout == "private\n"


def test_add_downloads_urls_and_rmi_takes_the_build_along(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    served = tmp_path / "served"
    served.mkdir()
    (served / "payload.txt").write_text("downloaded\n")
    digest = "sha256:" + hashlib.sha256(b"downloaded\n").hexdigest()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    host = build_daemon.host
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/payload.txt"
        context = write_context(
            tmp_path / "ctx",
            f"FROM {build_daemon.base}\nADD {url} /dl/\nADD --checksum={digest} {url} /sum.txt\n",
        )
        before = _image_ids(host)
        docker_build(host, context, "-t", "download:1")
        out = docker(host, "run", "--rm", "download:1", "cat", "/dl/payload.txt", "/sum.txt")
        assert out.stdout == "downloaded\n" * 2
        mode = docker(host, "run", "--rm", "download:1", "stat", "-c", "%a", "/dl/payload.txt")
        assert mode.stdout == "600\n"
        docker(host, "rmi", "download:1")
        assert _image_ids(host) == before  # the intermediate images went with it
        (served / "payload.txt").write_text("changed\n")
        failed = docker_build(host, context, "-t", "download:1", check=False)
        assert "digest mismatch" in failed.stderr, failed.stderr
        # A failed build leaves its last image dangling (as dockerd): a prune takes it.
        assert _image_ids(host) - before
        docker(host, "image", "prune", "-f")
        assert not _image_ids(host) - before
    finally:
        server.shutdown()
        server.server_close()
