"""``build_image`` of the docker-py adapter against real engines: what the docker CLI does.

Parameterised over the engines as the other end-to-end tests are (``build_engine``):
declarund's builder and dockerd's classic builder are held to the same results.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.engine.types import BuildEvent, BuildFailed, BuildRequest
from declarun.frozen import FrozenDict
from tests.support.engine_fixtures import Engine


@pytest.fixture
def tags(build_engine: Engine) -> Iterator[list[str]]:
    """The tags a test builds, removed afterwards."""
    made: list[str] = []
    yield made
    for tag in made:
        build_engine.docker("rmi", "-f", tag, check=False)


def _tag(made: list[str], prefix: str) -> str:
    tag = f"{prefix}-{uuid.uuid4().hex[:8]}:1"
    made.append(tag)
    return tag


def _build(engine: Engine, request: BuildRequest) -> tuple[list[BuildEvent], str]:
    events = list(engine.adapter.build_image(request))
    ids = [e.image_id for e in events if e.image_id]
    assert ids, events
    return events, ids[-1]


def _output(events: list[BuildEvent]) -> str:
    return "".join(e.output for e in events)


def _context(root: Path, image: str) -> Path:
    context = root / "ctx"
    (context / "src" / "sub").mkdir(parents=True)
    (context / "empty").mkdir()
    (context / "tmp").mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {image}\nCOPY . /ctx\nRUN cd /ctx && find . | sort > /list\n"
    )
    (context / ".dockerignore").write_text("*.log\ntmp/\n!tmp/keep\n")
    (context / "src" / "app.py").write_text("print(1)\n")
    (context / "src" / "run.sh").write_text("#!/bin/sh\n")
    (context / "src" / "run.sh").chmod(0o755)
    (context / "debug.log").write_text("ignored\n")
    (context / "tmp" / "scratch").write_text("ignored\n")
    (context / "tmp" / "keep").write_text("kept\n")
    os.symlink("src/app.py", context / "link")
    os.link(context / "src" / "app.py", context / "src" / "sub" / "same.py")
    return context


def _cli_build(engine: Engine, context: Path, tag: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_BUILDKIT"] = "0"  # the classic builder: POST /build, as the adapter uses
    subprocess.run(
        ["docker", "-H", engine.host, "build", "-q", "-t", tag, str(context)],
        check=True,
        capture_output=True,
        env=env,
        timeout=300,
    )


def test_the_context_is_the_one_the_docker_cli_sends(
    build_engine: Engine, tmp_path: Path, tags: list[str]
) -> None:
    # Same sources (names, modes, owners, links, contents) give the same COPY cache key, so a
    # build of the adapter's context right after the CLI's is all cache: the same image.
    context = _context(tmp_path, build_engine.image)
    cli, ours = _tag(tags, "cli"), _tag(tags, "ours")
    _cli_build(build_engine, context, cli)
    events, built = _build(build_engine, BuildRequest(context=context, tags=(ours,)))
    assert built == build_engine.client.api.inspect_image(cli)["Id"]
    assert _output(events).count("Using cache") == 2
    listing = build_engine.client.containers.run(ours, ["cat", "/list"], remove=True).decode()
    assert listing.split() == [
        ".",
        "./.dockerignore",
        "./Dockerfile",
        "./empty",
        "./link",
        "./src",
        "./src/app.py",
        "./src/run.sh",
        "./src/sub",
        "./src/sub/same.py",
        "./tmp",
        "./tmp/keep",
    ]


def test_args_target_labels_tags_and_an_outside_dockerfile(
    build_engine: Engine, tmp_path: Path, tags: list[str]
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "hello.txt").write_text("hello\n")
    (tmp_path / "app.Dockerfile").write_text(
        f"FROM {build_engine.image} AS prod\n"
        "ARG VERSION=0\n"
        "COPY hello.txt /\n"
        "RUN echo $VERSION > /version\n"
        "FROM prod AS debug\n"
        "RUN echo debug > /debug\n"
    )
    first, second = _tag(tags, "multi"), _tag(tags, "multi-too")
    events, built = _build(
        build_engine,
        BuildRequest(
            context=context,
            dockerfile="../app.Dockerfile",
            tags=(first, second),
            args=FrozenDict({"VERSION": "7"}),
            target="prod",
            labels=FrozenDict({"team": "shop"}),
        ),
    )
    image = build_engine.client.api.inspect_image(first)
    assert image["Id"] == built == build_engine.client.api.inspect_image(second)["Id"]
    assert image["Config"]["Labels"]["team"] == "shop"
    assert any(e.output.startswith("Step 1/") for e in events)
    run = build_engine.client.containers.run
    assert run(first, ["cat", "/version"], remove=True).decode() == "7\n"
    assert b"No such file" in run(first, ["sh", "-c", "cat /debug 2>&1; true"], remove=True)


def test_a_failing_run_fails_with_its_exit_code_and_the_output_so_far(
    build_engine: Engine, tmp_path: Path, tags: list[str]
) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "Dockerfile").write_text(
        f"FROM {build_engine.image}\nRUN echo about to fail; exit 3\n"
    )
    seen: list[BuildEvent] = []
    with pytest.raises(BuildFailed) as caught:
        for event in build_engine.adapter.build_image(
            BuildRequest(context=context, tags=(_tag(tags, "fails"),))
        ):
            seen.append(event)
    assert caught.value.code == 3
    assert "returned a non-zero code: 3" in str(caught.value)
    assert "about to fail" in _output(seen)


def test_tag_image_names_an_image_again(build_engine: Engine) -> None:
    other = f"127.0.0.1:1/tagged-{uuid.uuid4().hex[:8]}:x"
    build_engine.adapter.tag_image(build_engine.image, other)
    try:
        assert (
            build_engine.adapter.inspect_image(other).id
            == build_engine.adapter.inspect_image(build_engine.image).id
        )
    finally:
        # the session's busybox is compared across engines by other tests: untag it
        build_engine.docker("rmi", other)
