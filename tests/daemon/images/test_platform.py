"""Platform names and choosing an image from an index (pure logic)."""

from __future__ import annotations

import platform as host

import pytest

from declarun.daemon.images.platform import (
    Platform,
    PlatformError,
    host_platform,
    parse_platform,
    select_manifest,
)


def entry(digest: str, os: str, arch: str, variant: str | None = None) -> dict[str, object]:
    plat: dict[str, str] = {"os": os, "architecture": arch}
    if variant:
        plat["variant"] = variant
    return {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": digest,
        "size": 1,
        "platform": plat,
    }


INDEX = {
    "manifests": [
        entry("sha256:amd64", "linux", "amd64"),
        entry("sha256:armv6", "linux", "arm", "v6"),
        entry("sha256:armv7", "linux", "arm", "v7"),
        entry("sha256:arm64", "linux", "arm64", "v8"),
        entry("sha256:attest", "unknown", "unknown"),
        entry("sha256:win", "windows", "amd64"),
    ]
}


@pytest.mark.parametrize(
    ("wanted", "digest"),
    [
        ("linux/amd64", "sha256:amd64"),
        ("linux/x86_64", "sha256:amd64"),
        ("linux/arm64", "sha256:arm64"),
        ("linux/aarch64", "sha256:arm64"),
        ("linux/arm64/v8", "sha256:arm64"),
        ("linux/arm/v7", "sha256:armv7"),
        ("linux/arm/v6", "sha256:armv6"),
        ("windows/amd64", "sha256:win"),
        ("arm64", "sha256:arm64"),
    ],
)
def test_select_manifest(wanted: str, digest: str) -> None:
    assert select_manifest(INDEX, parse_platform(wanted))["digest"] == digest


def test_no_match_lists_what_is_offered() -> None:
    with pytest.raises(PlatformError, match=r"linux/s390x.*offered: linux/amd64, linux/arm/v6"):
        select_manifest(INDEX, parse_platform("linux/s390x"))


def test_entry_without_variant_matches_any_variant() -> None:
    index = {"manifests": [entry("sha256:arm", "linux", "arm")]}
    assert select_manifest(index, Platform("linux", "arm", "v7"))["digest"] == "sha256:arm"


def test_host_platform_uses_docker_names() -> None:
    expected = {"x86_64": Platform("linux", "amd64"), "aarch64": Platform("linux", "arm64", "v8")}
    machine = host.machine()
    if machine in expected:
        assert host_platform() == expected[machine]
    assert str(Platform("linux", "aarch64").normalized()) == "linux/arm64/v8"
    assert str(Platform("linux", "x86_64").normalized()) == "linux/amd64"


@pytest.mark.parametrize("bad", ["", "linux//amd64", "a/b/c/d"])
def test_bad_platform_strings(bad: str) -> None:
    with pytest.raises(PlatformError):
        parse_platform(bad)
