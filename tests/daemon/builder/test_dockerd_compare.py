"""The same Dockerfiles built by declarund and by dockerd 20.10's classic builder give the
same image config, the same history and the same files (paths, types, modes, owners,
content), compared through ``docker save`` and ``docker export`` of both engines."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path
from typing import Any

import pytest

from tests.daemon.builder.support import docker, docker_build, image_files, saved_image
from tests.support.engine_fixtures import Engine

pytestmark = pytest.mark.root

# What a container's runtime puts into ``docker export`` by itself, differently per engine.
_RUNTIME_PATHS = ("/dev", "/proc", "/sys", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
                  "/.dockerenv", "/etc/mtab")  # fmt: skip


def _archive() -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, data in (("pkg/bin/tool", b"#!/bin/sh\necho tool\n"), ("pkg/README", b"r\n")):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755 if name.endswith("tool") else 0o644
            info.uid, info.gid = 1000, 1000
            info.mtime = 1_600_000_000
            tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


CASES: dict[str, tuple[str, dict[str, str | bytes]]] = {
    "metadata-and-run": (
        """FROM BASE
ARG VERSION=1.0
LABEL org.example.version=$VERSION maintainer="someone"
ENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH
RUN mkdir -p $APP_HOME/bin /var/data && echo "v$VERSION" > $APP_HOME/version \\
    && chmod 0750 /var/data && chown 1000:1000 /var/data && ln -s $APP_HOME/version /ver
RUN rm /etc/group && touch /etc/group.new
WORKDIR $APP_HOME
USER 1000:1000
EXPOSE 8080/tcp 53/udp 9000
VOLUME ["/var/data"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --timeout=3s CMD ["true"]
SHELL ["/bin/sh", "-ec"]
ONBUILD RUN echo triggered
ENTRYPOINT ["/bin/sh", "-c"]
CMD ["echo hello"]
""",
        {},
    ),
    "copy-and-add": (
        """FROM BASE
COPY a.txt /app/
COPY dir/ /app/dir/
COPY --chown=1000:1000 dir /owned
COPY a.txt b.txt /multi/
ADD pkg.tar.gz /opt/
RUN ln -s /opt/pkg /pkglink
COPY a.txt /pkglink/through-link.txt
WORKDIR /app/dir
WORKDIR /new/work/dir
""",
        {
            "a.txt": "a\n",
            "b.txt": "b\n",
            "dir/one.txt": "1\n",
            "dir/sub/two.txt": "2\n",
            "pkg.tar.gz": _archive(),
        },
    ),
    "multi-stage": (
        """FROM BASE AS build
RUN mkdir /out && echo built > /out/result && chmod 600 /out/result
FROM scratch AS artifact
COPY --from=build /out/ /
FROM BASE
COPY --from=artifact /result /final/result
COPY --from=build /out /final/out
RUN ls -la /final > /final/listing
""",
        {},
    ),
}


def _files(engine: Engine, image: str) -> dict[str, Any]:
    files = image_files(engine.host, image)
    return {
        path: entry
        for path, entry in files.items()
        if not any(path == p or path.startswith(p + "/") for p in _RUNTIME_PATHS) and path != "/"
    }


def _config(document: dict[str, Any]) -> dict[str, Any]:
    config = dict(document["config"])
    config.pop("Image")
    return config


def _history(document: dict[str, Any]) -> list[dict[str, Any]]:
    return [{k: v for k, v in entry.items() if k != "created"} for entry in document["history"]]


@pytest.mark.parametrize("case", sorted(CASES))
def test_declarund_builds_what_dockerd_builds(
    case: str, declarund_engine: Engine, dockerd_engine: Engine, tmp_path: Path
) -> None:
    dockerfile, files = CASES[case]
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(dockerfile.replace("BASE", declarund_engine.image))
    for name, content in files.items():
        path = context / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content if isinstance(content, bytes) else content.encode())
    tag = f"compare-{case}:1"
    results = {}
    for engine in (dockerd_engine, declarund_engine):
        docker(engine.host, "pull", "-q", engine.image)
        docker_build(engine.host, context, "-t", tag, "--build-arg", "VERSION=2.0")
        results[engine.kind] = (saved_image(engine.host, tag), _files(engine, tag))
    theirs, ours = results["dockerd"], results["declarund"]
    assert _config(ours[0].config) == _config(theirs[0].config)
    assert _history(ours[0].config) == _history(theirs[0].config)
    for key in ("architecture", "os"):
        assert ours[0].config[key] == theirs[0].config[key]
    assert len(ours[0].config["rootfs"]["diff_ids"]) == len(theirs[0].config["rootfs"]["diff_ids"])
    assert sorted(ours[1]) == sorted(theirs[1])
    for path in sorted(theirs[1]):
        assert ours[1][path] == theirs[1][path], path
    for engine in (dockerd_engine, declarund_engine):
        docker(engine.host, "rmi", tag)
