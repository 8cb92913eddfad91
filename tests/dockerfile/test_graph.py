"""Stages as a graph: FROM resolution, dependencies, target selection, levels, images."""

from __future__ import annotations

import pytest

from declarun.dockerfile.buildargs import platform_args, unconsumed_warning
from declarun.dockerfile.errors import BuildTargetError, DockerfileError
from declarun.dockerfile.graph import plan_build
from declarun.dockerfile.parse import parse_dockerfile
from declarun.dockerfile.platform import Platform, parse_platform

AMD64 = Platform("linux", "amd64")
MULTI = """\
ARG BASE=busybox
ARG TAG=1
FROM ${BASE}:${TAG} AS deps
RUN make deps
FROM golang:1.22 AS build
COPY --from=deps /out /deps
RUN --mount=type=cache,target=/cache,from=tools true
FROM alpine AS unused
FROM scratch AS tools
COPY --from=nginx:latest /etc/nginx /etc/nginx
FROM deps AS final
COPY --from=build /bin/app /app
COPY --from=3 /x /x
"""


def test_dependencies_levels_and_skipped_stages() -> None:
    built = plan_build(parse_dockerfile(MULTI), build_args={"TAG": "2"}, build_platform=AMD64)
    assert built.target == 4
    assert built.dependencies(1) == {0, 3}
    assert built.dependencies(4) == {0, 1, 3}
    assert built.levels == ((0, 3), (1,), (4,))
    assert built.order == (0, 3, 1, 4)
    assert built.skipped() == (2,)
    assert built.dependents(0) == {1, 4}
    assert built.external_images == ("busybox:2", "nginx:latest", "golang:1.22")
    assert built.node(4).base_stage == 0 and built.node(4).base_image is None
    assert built.node(3).base_image is None  # scratch


def test_target_selects_and_unknown_target_names_the_stages() -> None:
    built = plan_build(parse_dockerfile(MULTI), target="BUILD", build_platform=AMD64)
    assert built.order == (0, 3, 1)
    with pytest.raises(BuildTargetError) as caught:
        plan_build(parse_dockerfile(MULTI), target="prod", build_platform=AMD64)
    assert 'target stage "prod" could not be found' in str(caught.value)
    assert "deps, build, unused, tools, final" in str(caught.value)


def test_copy_from_a_later_stage_is_a_dependency_and_cycles_fail() -> None:
    forward = plan_build(
        parse_dockerfile("FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\n"),
        target="one",
        build_platform=AMD64,
    )
    assert forward.order == (1, 0)
    with pytest.raises(DockerfileError, match="circular dependency"):
        plan_build(
            parse_dockerfile(
                "FROM a AS one\nCOPY --from=two /x /x\nFROM b AS two\nCOPY --from=one /y /y\n"
            ),
            build_platform=AMD64,
        )


def test_from_uses_global_and_platform_args() -> None:
    text = "ARG IMG=base\nFROM --platform=$BUILDPLATFORM ${IMG}-${TARGETARCH}\n"
    built = plan_build(
        parse_dockerfile(text),
        target_platform=Platform("linux", "arm64"),
        build_platform=AMD64,
    )
    assert built.external_images == ("base-arm64",)
    assert built.node(0).platform == AMD64


def test_from_blank_and_bad_platform_are_errors() -> None:
    with pytest.raises(DockerfileError, match=r"base name .* should not be blank"):
        plan_build(parse_dockerfile("ARG X\nFROM $X\n"), build_platform=AMD64)
    with pytest.raises(DockerfileError, match="failed to parse platform"):
        plan_build(parse_dockerfile("FROM --platform=nope/x a\n"), build_platform=AMD64)


def test_copy_from_with_variable_is_refused() -> None:
    with pytest.raises(DockerfileError, match="variable expansion is not supported for --from"):
        plan_build(parse_dockerfile("FROM a\nCOPY --from=$X /a /b\n"), build_platform=AMD64)


def test_unconsumed_build_args() -> None:
    built = plan_build(
        parse_dockerfile("ARG G\nFROM a\nARG S\nFROM b AS later\nARG L\n"),
        build_args={"G": "1", "S": "2", "L": "3", "NOPE": "4", "HTTP_PROXY": "p"},
        target="later",
        build_platform=AMD64,
    )
    assert built.unconsumed_build_args() == ["NOPE", "S"]
    assert unconsumed_warning(["NOPE", "S"]) == (
        "[Warning] One or more build-args [NOPE S] were not consumed"
    )


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("linux/amd64", Platform("linux", "amd64")),
        ("linux/x86_64", Platform("linux", "amd64")),
        ("linux/aarch64", Platform("linux", "arm64")),
        ("linux/arm64/v8", Platform("linux", "arm64")),
        ("linux/arm", Platform("linux", "arm", "v7")),
        ("linux/armhf", Platform("linux", "arm", "v7")),
        ("arm64", Platform("linux", "arm64")),
    ],
)
def test_platforms_normalise(text: str, expected: Platform) -> None:
    assert parse_platform(text) == expected


def test_platform_args() -> None:
    args = platform_args(Platform("linux", "arm", "v7"), AMD64)
    assert args["TARGETPLATFORM"] == "linux/arm/v7" and args["TARGETVARIANT"] == "v7"
    assert args["BUILDPLATFORM"] == "linux/amd64" and args["BUILDVARIANT"] == ""


def test_given_proxy_args_are_visible_in_from_without_arg() -> None:
    built = plan_build(
        parse_dockerfile("FROM registry.local/${HTTP_PROXY:-none}\n"),
        build_args={"HTTP_PROXY": "proxied"},
        build_platform=AMD64,
    )
    assert built.external_images == ("registry.local/proxied",)
