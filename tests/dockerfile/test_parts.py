"""The small parts: Go formats, ports and signals, timestamps, configs, mounts, flags, scope."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import tarfile
from pathlib import Path

import pytest
import zstandard
from hypothesis import given
from hypothesis import strategies as st

from declarun.dockerfile.archive import archive_compression
from declarun.dockerfile.cachekey import step_cache_key
from declarun.dockerfile.epoch import created_timestamp, rfc3339_nano, source_date_epoch
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.flags import FlagError, parse_flags
from declarun.dockerfile.gofmt import (
    go_duration,
    go_quote,
    go_quote_rune,
    go_strings_q,
    parse_go_duration,
)
from declarun.dockerfile.imageconfig import HistoryEntry, ImageConfig, image_document
from declarun.dockerfile.metadata import check_stop_signal, exposed_port_keys
from declarun.dockerfile.mounts import MountError, SecretMount, SshMount, TmpfsMount, parse_mount
from declarun.dockerfile.scope import resolve_in_root
from declarun.errdefs import InvalidArgument


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (1500, "1.5µs"),
        (100_000_000, "100ms"),
        (1_500_000_000, "1.5s"),
        (90 * 10**9, "1m30s"),
        (3600 * 10**9, "1h0m0s"),
        (3661 * 10**9 + 5, "1h1m1.000000005s"),
    ],
)
def test_go_duration_round_trip(ns: int, text: str) -> None:
    assert go_duration(ns) == text
    assert parse_go_duration(text) == ns


@given(st.integers(min_value=0, max_value=10**15))
def test_parse_go_duration_inverts_go_duration(ns: int) -> None:
    assert parse_go_duration(go_duration(ns)) == ns


def test_go_quoting() -> None:
    assert go_quote('a"b\\c\n\x01é') == '"a\\"b\\\\c\\n\\x01é"'
    assert go_quote_rune(3) == "'\\x03'" and go_quote_rune(65) == "'A'"
    assert go_quote_rune(39) == "'\\''"
    assert go_strings_q(["a", "b c"]) == '["a" "b c"]' and go_strings_q(None) == "[]"
    with pytest.raises(ValueError, match='unknown unit "x"'):
        parse_go_duration("1x")
    with pytest.raises(ValueError, match="missing unit"):
        parse_go_duration("1")


def test_ports_and_signals() -> None:
    assert exposed_port_keys(["80", "53/UDP", "8000-8002/tcp"]) == [
        "80/tcp",
        "53/udp",
        "8000/tcp",
        "8001/tcp",
        "8002/tcp",
    ]
    for bad in ("x", "70000", "90-80"):
        with pytest.raises(InvalidArgument):
            exposed_port_keys([bad])
    for good in ("SIGTERM", "term", "9", "SIGRTMIN+3"):
        check_stop_signal(good)
    with pytest.raises(InvalidArgument, match="Invalid signal: SIGNOPE"):
        check_stop_signal("SIGNOPE")


def test_source_date_epoch_clamps() -> None:
    assert source_date_epoch({"SOURCE_DATE_EPOCH": "10"}, {"SOURCE_DATE_EPOCH": "20"}) == 10
    assert source_date_epoch({}, {"SOURCE_DATE_EPOCH": "20"}) == 20
    assert source_date_epoch({}, {}) is None
    with pytest.raises(InvalidArgument, match="SOURCE_DATE_EPOCH"):
        source_date_epoch({"SOURCE_DATE_EPOCH": "yesterday"})
    assert created_timestamp(5 * 10**18, epoch=0) == "1970-01-01T00:00:00Z"
    assert created_timestamp(1_500_000_000, epoch=10) == "1970-01-01T00:00:01.5Z"
    assert rfc3339_nano(1_700_000_000_123_000_000) == "2023-11-14T22:13:20.123Z"


def test_image_config_json_round_trip_keeps_dockerd_order() -> None:
    doc = {
        "Hostname": "",
        "Domainname": "",
        "User": "app",
        "AttachStdin": False,
        "AttachStdout": False,
        "AttachStderr": False,
        "ExposedPorts": {"80/tcp": {}},
        "Tty": False,
        "OpenStdin": False,
        "StdinOnce": False,
        "Env": ["PATH=/bin"],
        "Cmd": ["sh"],
        "Healthcheck": {"Test": ["CMD", "true"], "Retries": 2},
        "Image": "sha256:abc",
        "Volumes": None,
        "WorkingDir": "/w",
        "Entrypoint": None,
        "OnBuild": None,
        "Labels": {"b": "2", "a": "1"},
        "StopSignal": "SIGINT",
        "Shell": ["/bin/bash", "-c"],
    }
    config = ImageConfig.from_docker(doc)
    assert list(config.to_docker()) == list(doc)
    assert config.to_docker() == doc
    assert ImageConfig.from_docker(None).to_docker()["Env"] is None


def test_image_document_checks_layers_against_history() -> None:
    history = [HistoryEntry("base"), HistoryEntry("meta", empty_layer=True), HistoryEntry("run")]
    doc = image_document(
        config=ImageConfig(),
        history=history,
        diff_ids=["sha256:1", "sha256:2"],
        created="2024-01-01T00:00:00Z",
        architecture="amd64",
        author="me",
    )
    assert doc["rootfs"]["diff_ids"] == ["sha256:1", "sha256:2"]
    assert doc["history"][1] == {"created_by": "meta", "empty_layer": True}
    with pytest.raises(ValueError, match="2 entries with a layer but there are 1"):
        image_document(
            config=ImageConfig(), history=history, diff_ids=["x"], created="", architecture="amd64"
        )


def test_cache_key_is_stable_and_sensitive() -> None:
    key = step_cache_key(
        "p", "s", sources_digest="d", run_args=["B=2", "A=1"], platform="linux/amd64"
    )
    assert key == step_cache_key(
        "p", "s", sources_digest="d", run_args=["A=1", "B=2"], platform="linux/amd64"
    )
    assert key.startswith("sha256:") and len(key) == 71
    for changed in (
        step_cache_key(
            "q", "s", sources_digest="d", run_args=["A=1", "B=2"], platform="linux/amd64"
        ),
        step_cache_key(
            "p", "s", sources_digest="e", run_args=["A=1", "B=2"], platform="linux/amd64"
        ),
        step_cache_key("p", "s", sources_digest="d", run_args=["A=1"], platform="linux/amd64"),
        step_cache_key(
            "p", "s", sources_digest="d", run_args=["A=1", "B=2"], platform="linux/arm64"
        ),
    ):
        assert changed != key


def test_mount_defaults_and_errors() -> None:
    assert parse_mount("type=tmpfs,target=/t,size=64m") == TmpfsMount("/t", 64 * 1024 * 1024)
    assert parse_mount("type=secret,target=/run/s/key") == SecretMount("key", "/run/s/key")
    assert parse_mount("type=secret,id=a,required,mode=0440,uid=5") == SecretMount(
        "a", "/run/secrets/a", required=True, mode=0o440, uid=5
    )
    assert parse_mount("type=ssh") == SshMount()
    bind = parse_mount("target=/src,rw")
    assert bind.readwrite  # type: ignore[union-attr]
    for spec, message in (
        ("type=nfs,target=/x", 'unsupported mount type "nfs"'),
        ("type=cache,target=/x,sharing=all", "unsupported sharing value"),
        ("type=bind,target=/x,required", "unexpected key 'required'"),
        ("type=cache,target=/x,bogus=1", "unexpected key 'bogus'"),
        ("type=secret,id=a,src=b", "both source and id can't be set"),
        ("type=bind,target=/x,ro=maybe", "invalid value for ro: maybe"),
        ("type=cache,target=/x,mode=9", "invalid value 9 for mode"),
        ("type=tmpfs,target=/x,size=lots", "invalid value for size"),
    ):
        with pytest.raises(MountError, match=message):
            parse_mount(spec)


def test_flags() -> None:
    flags = parse_flags(["--from=x", "--link", "--exclude=a", "--exclude=b"], {
        "from": "string", "link": "bool", "exclude": "strings", "chown": "string",
    })  # fmt: skip
    assert (flags.string("from"), flags.boolean("link"), flags.strings("exclude")) == (
        "x",
        True,
        ("a", "b"),
    )
    assert flags.string("chown") is None
    for args, message in (
        (["--from"], "missing a value on flag: --from"),
        (["--from=a", "--from=b"], "duplicate flag specified: --from"),
        (["--link=maybe"], "expecting boolean value"),
        (["-x"], "arg should start with --"),
    ):
        with pytest.raises(FlagError, match=message):
            parse_flags(args, {"from": "string", "link": "bool"})


def test_resolve_in_root_never_leaves_it(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "up").symlink_to("../../../../..")
    (tmp_path / "d" / "abs").symlink_to("/d")
    (tmp_path / "loop").symlink_to("loop")
    assert resolve_in_root(tmp_path, "d/up/etc/passwd") == "etc/passwd"
    assert resolve_in_root(tmp_path, "d/abs/abs/abs") == "d"
    assert resolve_in_root(tmp_path, "../../x") == "x"
    with pytest.raises(CopySourceError, match="too many links"):
        resolve_in_root(tmp_path, "loop")


def _tar_bytes() -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        info = tarfile.TarInfo("f")
        info.size = 1
        archive.addfile(info, io.BytesIO(b"x"))
    return buffer.getvalue()


def test_archive_detection(tmp_path: Path) -> None:
    raw = _tar_bytes()
    for name, data, expected in (
        ("plain.tar", raw, "none"),
        ("a.tgz", gzip.compress(raw), "gzip"),
        ("a.tbz", bz2.compress(raw), "bzip2"),
        ("a.txz", lzma.compress(raw), "xz"),
        ("a.tzst", zstandard.ZstdCompressor().compress(raw), "zstd"),
        ("text", b"hello" * 200, None),
        ("fake.gz", gzip.compress(b"not a tar" * 100), None),
        ("broken.gz", b"\x1f\x8b\x08garbage", None),
    ):
        (tmp_path / name).write_bytes(data)
        assert archive_compression(tmp_path / name) == expected, name
