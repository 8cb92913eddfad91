"""``docker build`` (CLI 28, classic builder) against declarund: output, tags, the cache,
``rm``/``forcerm``, quiet mode, a Dockerfile on stdin, failures with dockerd's wording."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.daemon.builder.conftest import BuildDaemon
from tests.daemon.builder.support import (
    docker,
    docker_build,
    post_build,
    tar_of,
    write_context,
)

pytestmark = pytest.mark.root


def _steps_cached(output: str) -> list[bool]:
    """For each ``Step``, whether it was served from the cache."""
    parts = re.split(r"^Step \d+/\d+ : ", output, flags=re.M)[1:]
    return ["---> Using cache" in part for part in parts]


def test_build_streams_dockerd_messages_and_tags_every_name(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""ARG X=1
FROM {build_daemon.base}
ENV A=b
RUN echo out; echo err >&2; echo data > /data.txt
COPY a.txt /app/
WORKDIR /app
LABEL x=y
""",
        {"a.txt": "hello\n"},
    )
    done = docker_build(build_daemon.host, context, "-t", "first:1", "-t", "second")
    out = done.stdout
    assert out.index("Step 1/7 : ARG X=1") < out.index("Step 2/7 : FROM ")
    assert "Step 4/7 : RUN echo out; echo err >&2; echo data > /data.txt" in out
    running = re.search(r" ---> Running in ([0-9a-f]{12})\n", out)
    assert running is not None
    assert f"Removing intermediate container {running.group(1)}" in out
    built = re.search(r"Successfully built ([0-9a-f]{12})", out)
    assert built is not None
    assert "Successfully tagged first:1" in out
    assert "Successfully tagged second:latest" in out
    image_id = docker(build_daemon.host, "image", "inspect", "-f", "{{.Id}}", "first:1").stdout
    assert image_id.strip()[7:19] == built.group(1)
    run = docker(build_daemon.host, "run", "--rm", "second", "sh", "-c", "cat /data.txt a.txt; pwd")
    assert run.stdout == "data\nhello\n/app\n"
    # No step container is left, and the intermediate images hide from a plain listing.
    assert docker(build_daemon.host, "ps", "-aq").stdout.strip() == ""
    listed = docker(build_daemon.host, "images", "-q", "--no-trunc").stdout.split()
    everything = docker(build_daemon.host, "images", "-aq", "--no-trunc").stdout.split()
    assert image_id.strip() in listed
    assert len(everything) >= len(listed) + 4
    parent = docker(build_daemon.host, "image", "inspect", "-f", "{{.Parent}}", "first:1").stdout
    assert parent.strip() in everything


def test_the_raw_stream_is_dockerds(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"FROM {build_daemon.base}\nRUN echo out; echo err >&2\n",
    )
    status, lines, _ = post_build(
        build_daemon.daemon.socket_path, tar_of(context), {"nocache": "1", "t": "raw:1"}
    )
    assert status == 200
    assert lines[0] == {"stream": f"Step 1/2 : FROM {build_daemon.base}"}
    assert lines[1] == {"stream": "\n"}
    assert {"stream": "out\n"} in lines
    assert {"stream": "\x1b[91merr\n\x1b[0m"} in lines
    aux = [m["aux"]["ID"] for m in lines if "aux" in m]
    assert aux and aux[-1].startswith("sha256:")
    assert lines[-2]["stream"] == f"Successfully built {aux[-1][7:19]}\n"
    assert lines[-1] == {"stream": "Successfully tagged raw:1\n"}


def test_rebuild_hits_the_cache_and_an_edit_reruns_only_from_the_step_reading_it(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"""FROM {build_daemon.base}
RUN echo one > /one
COPY a.txt /
RUN cat /a.txt > /copy-of-a
COPY b.txt /
RUN cat /b.txt > /copy-of-b
""",
        {"a.txt": "a1\n", "b.txt": "b1\n"},
    )
    first = docker_build(build_daemon.host, context, "-t", "cached:1").stdout
    assert _steps_cached(first) == [False] * 6
    again = docker_build(build_daemon.host, context, "-t", "cached:1").stdout
    assert _steps_cached(again) == [False, True, True, True, True, True]
    ids = [re.findall(r"Successfully built (\w+)", out)[0] for out in (first, again)]
    assert ids[0] == ids[1]

    (context / "b.txt").write_text("b2\n")
    edited_b = docker_build(build_daemon.host, context, "-t", "cached:1").stdout
    assert _steps_cached(edited_b) == [False, True, True, True, False, False]
    (context / "a.txt").write_text("a2\n")
    edited_a = docker_build(build_daemon.host, context, "-t", "cached:1").stdout
    assert _steps_cached(edited_a) == [False, True, False, False, False, False]
    # Touching a file without changing it keeps the cache (times are not in the key).
    (context / "a.txt").touch()
    touched = docker_build(build_daemon.host, context, "-t", "cached:1").stdout
    assert _steps_cached(touched) == [False, True, True, True, True, True]
    run = docker(build_daemon.host, "run", "--rm", "cached:1", "cat", "/copy-of-a", "/copy-of-b")
    assert run.stdout == "a2\nb2\n"

    uncached = docker_build(build_daemon.host, context, "--no-cache", "-t", "cached:1").stdout
    assert _steps_cached(uncached) == [False] * 6


def test_quiet_build_prints_the_id_only(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {build_daemon.base}\nRUN echo noisy\n")
    done = docker_build(build_daemon.host, context, "-q", "--no-cache", "-t", "quiet:1")
    assert re.fullmatch(r"sha256:[0-9a-f]{64}\n", done.stdout)
    inspect = docker(build_daemon.host, "image", "inspect", "-f", "{{.Id}}", "quiet:1")
    assert inspect.stdout == done.stdout


def test_a_failing_run_reports_the_exit_code_and_keeps_its_container_unless_forcerm(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx", f"FROM {build_daemon.base}\nRUN echo before-failing; exit 3\n"
    )
    failed = docker_build(build_daemon.host, context, check=False)
    assert failed.returncode == 3
    assert "before-failing" in failed.stdout
    message = "The command '/bin/sh -c echo before-failing; exit 3' returned a non-zero code: 3"
    assert message in failed.stderr
    kept = docker(build_daemon.host, "ps", "-aq", "--filter", "status=exited").stdout.split()
    assert len(kept) == 1
    docker(build_daemon.host, "rm", *kept)

    forced = docker_build(build_daemon.host, context, "--force-rm", check=False)
    assert forced.returncode == 3
    assert "Removing intermediate container" in forced.stdout
    assert docker(build_daemon.host, "ps", "-aq").stdout.strip() == ""

    status, lines, _ = post_build(build_daemon.daemon.socket_path, tar_of(context))
    assert status == 200
    assert lines[-1] == {"errorDetail": {"code": 3, "message": message}, "error": message}
    docker(build_daemon.host, "container", "prune", "-f")


def test_syntax_errors_are_plain_400s_naming_file_and_line(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", f"FROM {build_daemon.base}\nRUNN echo\n")
    failed = docker_build(build_daemon.host, context, check=False)
    assert failed.returncode != 0
    assert "Dockerfile:2: unknown instruction: RUNN" in failed.stderr
    status, _, body = post_build(build_daemon.daemon.socket_path, tar_of(context))
    assert status == 400
    assert "Dockerfile:2" in json.loads(body)["message"]

    missing = write_context(tmp_path / "none", "")
    (missing / "Dockerfile").unlink()
    (missing / "x").write_text("x")
    failed = docker_build(build_daemon.host, missing, "-f", "x/Dockerfile", check=False)
    assert failed.returncode != 0

    target = write_context(tmp_path / "target", f"FROM {build_daemon.base} AS one\n")
    failed = docker_build(build_daemon.host, target, "--target", "two", check=False)
    assert 'target stage "two" could not be found' in failed.stderr


def test_a_missing_base_image_is_a_clear_error(build_daemon: BuildDaemon, tmp_path: Path) -> None:
    registry = build_daemon.base.split("/", 1)[0]
    context = write_context(tmp_path / "ctx", f"FROM {registry}/no-such-image:1\nRUN true\n")
    failed = docker_build(build_daemon.host, context, check=False)
    assert failed.returncode != 0
    assert "no-such-image" in failed.stderr
    assert "not found" in failed.stderr or "denied" in failed.stderr


def test_a_dockerfile_from_stdin_is_read_and_left_out_of_the_context(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(tmp_path / "ctx", "FROM scratch\n", {"data/f.txt": "f"})
    (context / "Dockerfile").unlink()
    dockerfile = f"FROM {build_daemon.base}\nCOPY . /ctx/\nRUN ls -A /ctx > /listing\n"
    docker_build(build_daemon.host, context, "-f", "-", "-t", "stdin:1", input=dockerfile)
    listing = docker(build_daemon.host, "run", "--rm", "stdin:1", "cat", "/listing").stdout
    assert listing.split() == ["data"]


def test_build_args_labels_and_unused_arg_warning(
    build_daemon: BuildDaemon, tmp_path: Path
) -> None:
    context = write_context(
        tmp_path / "ctx",
        f"FROM {build_daemon.base}\nARG WHO=nobody\nRUN echo hello $WHO > /greeting\n",
    )
    done = docker_build(
        build_daemon.host,
        context,
        "--build-arg",
        "WHO=world",
        "--build-arg",
        "UNUSED=1",
        "--label",
        "team=builders",
        "-t",
        "args:1",
    )
    assert "[Warning] One or more build-args [UNUSED] were not consumed" in done.stdout
    assert "LABEL team=builders" in done.stdout
    run = docker(build_daemon.host, "run", "--rm", "args:1", "cat", "/greeting")
    assert run.stdout == "hello world\n"
    labels = docker(
        build_daemon.host, "image", "inspect", "-f", "{{json .Config.Labels}}", "args:1"
    )
    assert json.loads(labels.stdout) == {"team": "builders"}
    history = docker(
        build_daemon.host, "history", "--no-trunc", "--format", "{{.CreatedBy}}", "args:1"
    )
    assert "|1 WHO=world /bin/sh -c echo hello $WHO > /greeting" in history.stdout
