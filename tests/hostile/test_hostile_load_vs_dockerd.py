"""The same hostile ``docker load`` archives on declarund and on dockerd (the session's).

Each archive is a one-image legacy ``docker save`` layout with one thing wrong. Where dockerd
refuses, declarund must refuse too; where dockerd accepts, declarund may refuse (stricter)
but must not leave anything behind either way. The outcomes are printed as a table (the
figures in ``specs/reliability.md``).
"""

from __future__ import annotations

import gzip
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.daemon.images.archive_support import TarEntry, digest_of, tar_bytes
from tests.daemon.images.layertar import LayerBuilder
from tests.hostile.test_hostile_layers import _sparse_member, gzip_bomb
from tests.support.engine_fixtures import Engine


def _config(diff_ids: list[str]) -> bytes:
    return json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
            "config": {"Cmd": ["/bin/sh"]},
        }
    ).encode()


def _archive(
    tag: str,
    layer: bytes,
    *,
    diff_id: str | None = None,
    config_path: str = "c.json",
    layer_path: str = "l/layer.tar",
    extra: list[TarEntry] | None = None,
) -> bytes:
    uncompressed = gzip.decompress(layer) if layer[:2] == b"\x1f\x8b" else layer
    manifest = [{"Config": config_path, "RepoTags": [tag], "Layers": [layer_path]}]
    return tar_bytes(
        [
            TarEntry("manifest.json", json.dumps(manifest).encode()),
            TarEntry("c.json", _config([diff_id or digest_of(uncompressed)])),
            TarEntry("l/layer.tar", layer),
            *(extra or []),
        ]
    )


def _plain() -> bytes:
    return LayerBuilder().file("hello", b"hi").build()


ARCHIVES: dict[str, Callable[[str], bytes]] = {
    "config path outside the archive": lambda t: _archive(
        t, _plain(), config_path="../../../etc/passwd"
    ),
    "layer path absolute": lambda t: _archive(t, _plain(), layer_path="/etc/shadow"),
    "member climbing out": lambda t: _archive(
        t, _plain(), extra=[TarEntry("../../tmp/declarun-hostile-escape", b"x")]
    ),
    "lying diff_id": lambda t: _archive(t, _plain(), diff_id="sha256:" + "0" * 64),
    "layer entry climbing out": lambda t: _archive(
        t, LayerBuilder().file("../../escape", b"x").build()
    ),
    "layer hardlink to /etc/shadow": lambda t: _archive(
        t, LayerBuilder().hardlink("shadow", "/etc/shadow").build()
    ),
    "layer sparse 1 TB file": lambda t: _archive(t, _sparse_member("huge", 1 << 40)),
    "layer gzip bomb beyond the disk": lambda t: _archive(
        t, gzip_bomb(4 << 20, declared=1 << 44), diff_id="sha256:" + "1" * 64
    ),
    "duplicate manifest.json": lambda t: _archive(
        t, _plain(), extra=[TarEntry("manifest.json", b"[]")]
    ),
}


# Archives dockerd is not given, with what it did when it was (2026-12, dockerd 20.10).
NOT_ON_DOCKERD = {
    "layer sparse 1 TB file": "dockerd was still reading the terabyte of holes after 180 s",
}


def _load(engine: Engine, archive: Path, tag: str) -> tuple[bool, str]:
    done = engine.docker("load", "-i", str(archive), check=False)
    loaded = done.returncode == 0
    message = (done.stderr or done.stdout).strip().splitlines()
    if loaded:
        engine.docker("rmi", "-f", tag, check=False)
    return loaded, (message[-1] if message else "")[:160]


@pytest.mark.parametrize("kind", list(ARCHIVES))
def test_hostile_archive_outcome_matches_dockerd(
    declarund_engine: Engine, dockerd_engine: Engine, kind: str, tmp_path: Path
) -> None:
    tag = f"hostile-{list(ARCHIVES).index(kind)}:1"
    archive = tmp_path / "archive.tar"
    archive.write_bytes(ARCHIVES[kind](tag))
    ours = _load(declarund_engine, archive, tag)
    if kind in NOT_ON_DOCKERD:
        assert not ours[0], "declarund refuses what does not fit on its disk"
        print(f"\n| {kind} | declarund: {ours} | dockerd: {NOT_ON_DOCKERD[kind]} |")
        return
    theirs = _load(dockerd_engine, archive, tag)
    print(f"\n| {kind} | declarund: {ours} | dockerd: {theirs} |")
    assert not Path("/tmp/declarun-hostile-escape").exists()
    assert not Path("/escape").exists()
    if not theirs[0]:
        assert not ours[0], f"dockerd refused ({theirs[1]}) but declarund loaded it"
    if not ours[0]:
        assert "Traceback" not in ours[1] and ours[1], ours


def test_archive_builders_make_valid_tars() -> None:
    for kind, build in ARCHIVES.items():
        with tarfile.open(fileobj=io.BytesIO(build("x:1"))) as tar:
            assert "manifest.json" in tar.getnames(), kind
