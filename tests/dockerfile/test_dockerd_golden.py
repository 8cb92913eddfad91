"""Golden comparison with a real dockerd's classic builder (``DOCKER_BUILDKIT=0``).

Each case is built by dockerd; the frontend evaluates the same Dockerfile on the same base
config, and the resulting ``config`` and ``history`` (``created_by``, ``empty_layer``,
``author``) must be dockerd's, ignoring only IDs and timestamps. For ``RUN``/``COPY``/
``WORKDIR`` steps whether the layer was empty is the executor's finding, so dockerd's value
is fed in; everything else is computed here. A ``.dockerignore`` case checks which files
the docker CLI really sends against :func:`walk_context`.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from declarun.dockerfile.buildargs import unconsumed_warning
from declarun.dockerfile.context import context_matcher, walk_context
from declarun.dockerfile.copyplan import plan_copy
from declarun.dockerfile.evaluate import StageEvaluation, evaluate_stage
from declarun.dockerfile.graph import BuildPlan, plan_build
from declarun.dockerfile.ignore import read_dockerignore, removed_after_reading
from declarun.dockerfile.parse import parse_dockerfile
from declarun.dockerfile.sourcedigest import classic_source_hash
from tests.support.engine_fixtures import Engine

pytestmark = pytest.mark.root


@dataclass(frozen=True)
class Built:
    """What dockerd made: the image config document and the build's output."""

    document: dict[str, Any]
    output: str


def _docker(engine: Engine, *args: str, cwd: Path | None = None) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    env["DOCKER_BUILDKIT"] = "0"
    done = subprocess.run(
        ["docker", "-H", engine.host, *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=cwd,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, f"docker {' '.join(args)}: {done.stderr}\n{done.stdout}"
    return done.stdout + done.stderr


def _image_document(engine: Engine, image: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    saved = subprocess.run(
        ["docker", "-H", engine.host, "save", image],
        capture_output=True,
        env=env,
        timeout=300,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = archive.extractfile(manifest[0]["Config"])
        assert config is not None
        document: dict[str, Any] = json.load(config)
    return document


@pytest.fixture(scope="module")
def dockerd(dockerd_engine: Engine) -> Engine:
    """The session's dockerd, with the busybox test image pulled."""
    _docker(dockerd_engine, "pull", "-q", dockerd_engine.image)
    return dockerd_engine


def _build(engine: Engine, context: Path, tag: str, *args: str) -> Built:
    output = _docker(engine, "build", "-t", tag, *args, str(context))
    return Built(_image_document(engine, tag), output)


def _write(context: Path, dockerfile: str, engine: Engine) -> str:
    context.mkdir(parents=True, exist_ok=True)
    text = dockerfile.replace("BUSYBOX", engine.image)
    (context / "Dockerfile").write_text(text)
    return text


def _layers(engine: Engine, image: str) -> list[dict[str, tarfile.TarInfo]]:
    """Each layer of ``image`` as ``{path: TarInfo}``, base first."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    saved = subprocess.run(
        ["docker", "-H", engine.host, "save", image],
        capture_output=True,
        env=env,
        timeout=300,
        check=True,
    ).stdout
    layers = []
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        for name in manifest[0]["Layers"]:
            member = archive.extractfile(name)
            assert member is not None
            with tarfile.open(fileobj=io.BytesIO(member.read())) as layer:
                layers.append({"/" + m.name.rstrip("/"): m for m in layer.getmembers()})
    return layers


def _check_copy_layers(
    built_image: str,
    engine: Engine,
    chain: list[StageEvaluation],
    context: Path,
    history: list[dict[str, Any]],
    base_layers: int,
) -> None:
    """Every COPY/ADD step's layer holds what plan_copy said, with dockerd's modes and owners."""
    layers = _layers(engine, built_image)
    existing = {p for layer in layers[:base_layers] for p, m in layer.items() if m.isdir()}
    layer_index = base_layers
    checked = 0
    steps = [step for evaluation in chain for step in evaluation.steps]
    for step, entry in zip(steps, history, strict=True):
        if entry.get("empty_layer"):
            continue
        layer = layers[layer_index]
        layer_index += 1
        if step.copy is not None:
            plan = plan_copy(step.copy, context, is_dir=set(existing).__contains__)
            for planned in plan.entries:
                member = layer.get(planned.path)
                if planned.create_only and planned.path in existing:
                    continue
                assert member is not None, (
                    f"{planned.path} missing from {step.instruction.original}"
                )
                assert (member.mode & 0o7777, member.uid, member.gid) == (
                    planned.mode,
                    planned.uid,
                    planned.gid,
                ), f"{planned.path} in {step.instruction.original}"
                if planned.kind == "symlink":
                    assert member.issym() and member.linkname == planned.link
                elif planned.kind in ("file", "inline"):
                    assert member.isfile() and member.size == planned.size
                elif planned.kind == "dir":
                    assert member.isdir()
                checked += 1
            for extraction in plan.extractions:
                assert extraction.dest + "/o.txt" in layer
        existing |= {p for p, m in layer.items() if m.isdir()}
    assert checked >= 25


def _evaluate_chain(plan: BuildPlan, base: dict[str, Any]) -> list[StageEvaluation]:
    """Evaluate the target and the stages it stands on through FROM, base first."""
    results: dict[int, StageEvaluation] = {}
    for index in plan.order:
        node = plan.node(index)
        parent = base if node.base_stage is None else results[node.base_stage].config
        results[index] = evaluate_stage(plan, index, parent)
    chain = [plan.target]
    while (parent_stage := plan.node(chain[0]).base_stage) is not None:
        chain.insert(0, parent_stage)
    return [results[i] for i in chain]


def _compare(
    built: Built,
    base: dict[str, Any],
    chain: list[StageEvaluation],
    context: Path,
    *,
    stage_roots: dict[int, Path] | None = None,
) -> None:
    theirs_config = dict(built.document["config"])
    ours_config = chain[-1].config.to_docker()
    theirs_config.pop("Image")
    ours_config.pop("Image")
    assert ours_config == theirs_config
    history = built.document["history"][len(base["history"]) :]
    steps = [step for evaluation in chain for step in evaluation.steps]
    assert len(history) == len(steps)
    for step, entry in zip(steps, history, strict=True):
        theirs = {k: v for k, v in entry.items() if k != "created"}
        source_hash = None
        if step.copy is not None:
            if step.copy.from_stage is None:
                source_hash = classic_source_hash(plan_copy(step.copy, context))
            else:
                # dockerd hashes --from sources on the stage's filesystem ("image" flavor).
                assert stage_roots is not None
                root = stage_roots[step.copy.from_stage]
                source_hash = classic_source_hash(plan_copy(step.copy, root), flavor="image")
        empty = None if step.kind == "metadata" else bool(entry.get("empty_layer"))
        ours = step.history(empty_layer=empty, source_hash=source_hash).to_docker()
        assert ours == theirs, f"step {step.instruction.original!r}"


def _check(
    engine: Engine,
    tmp_path: Path,
    dockerfile: str,
    *args: str,
    stage_roots: dict[str, Path] | None = None,
) -> Built:
    context = tmp_path / "context"
    text = _write(context, dockerfile, engine)
    built = _build(engine, context, "golden:latest", *args)
    base = _image_document(engine, engine.image)
    build_args = {}
    for i, arg in enumerate(args):
        if arg == "--build-arg":
            key, _, value = args[i + 1].partition("=")
            build_args[key] = value
    plan = plan_build(parse_dockerfile(text), build_args=build_args)
    roots = {}
    for name, root in (stage_roots or {}).items():
        index = plan.stage_reference(name)
        assert index is not None
        roots[index] = root
    _compare(built, base, _evaluate_chain(plan, base["config"]), context, stage_roots=roots)
    return built


def _export(engine: Engine, image: str, dest: Path, members: set[str]) -> Path:
    """Extract ``members`` of ``image``'s filesystem into ``dest`` (owners and modes kept)."""
    container = _docker(engine, "create", image, "true").strip().splitlines()[-1]
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    exported = subprocess.run(
        ["docker", "-H", engine.host, "export", container],
        capture_output=True,
        env=env,
        timeout=300,
        check=True,
    ).stdout
    _docker(engine, "rm", container)
    dest.mkdir(parents=True)
    with tarfile.open(fileobj=io.BytesIO(exported)) as archive:
        wanted = [m for m in archive.getmembers() if m.name in members]
        archive.extractall(dest, members=wanted, numeric_owner=True, filter="fully_trusted")
    return dest


def test_metadata_instructions(dockerd: Engine, tmp_path: Path) -> None:
    built = _check(
        dockerd,
        tmp_path,
        """\
FROM BUSYBOX
ENV A=b C="d e"
ENV X y z
LABEL a=b "c d"="e f" single=y\\ z
EXPOSE 443 80/tcp 53/udp 8000-8001
USER nobody:nogroup
WORKDIR /app
WORKDIR sub
VOLUME /data /cache
VOLUME ["/json"]
STOPSIGNAL SIGTERM
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
HEALTHCHECK --timeout=1m30s --start-period=100ms --interval=1h CMD ["x", "y"]
ONBUILD RUN echo onbuild
SHELL ["/bin/sh", "-ec"]
CMD echo "hi $A"
ENTRYPOINT ["/bin/sh"]
MAINTAINER someone <a@b>
ARG FOO=bar
ARG BAZ
RUN echo $FOO > /tmp/foo
RUN ["echo", "exec"]
""",
        "--build-arg",
        "BAZ=q",
        "--build-arg",
        "UNUSED=1",
    )
    assert unconsumed_warning(["UNUSED"]) in built.output


def test_arg_env_scoping_and_cmd_entrypoint(dockerd: Engine, tmp_path: Path) -> None:
    _check(
        dockerd,
        tmp_path,
        """\
FROM BUSYBOX
ARG A=arg
ENV A=env B=$A
ARG A=arg2
ENV C=$A D=${UNSET:-dflt} E=${A:+set}
ARG P=1 Q
ARG HTTP_PROXY
WORKDIR a b
ENTRYPOINT echo entry
LABEL from.arg=$P
ENV PATH=/x:$PATH
CMD
RUN true
HEALTHCHECK NONE
USER ${A}
""",
        "--build-arg",
        "Q=9",
        "--build-arg",
        "HTTP_PROXY=http://proxy",
        "--build-arg",
        "NO_PROXY=x",
    )


def test_copy_and_add(dockerd: Engine, tmp_path: Path) -> None:
    context = tmp_path / "context"
    (context / "dir" / "sub").mkdir(parents=True)
    (context / "a.txt").write_text("hello\n")
    (context / "b.txt").write_text("b\n")
    (context / "dir" / "x").write_text("x\n")
    (context / "dir" / "sub" / "y").write_text("y\n")
    (context / "dir" / "abslink").symlink_to("/etc/passwd")
    (context / "dir" / "rellink").symlink_to("../../../outside")
    (context / "dir" / "sub").chmod(0o700)
    (context / "tolink").symlink_to("dir/x")
    (context / "exec.sh").write_text("#!/bin/sh\n")
    (context / "exec.sh").chmod(0o755)
    payload = tmp_path / "o.txt"
    payload.write_text("o\n")
    with tarfile.open(context / "arch.tgz", "w:gz") as archive:
        archive.add(payload, "o.txt")
    with tarfile.open(context / "arch.tar", "w") as archive:
        archive.add(payload, "o.txt")
    built = _check(
        dockerd,
        tmp_path,
        """\
FROM BUSYBOX
WORKDIR /tmp
WORKDIR /tmp/new
COPY a.txt /
COPY a.txt b.txt /multi/
COPY --chown=1:1 dir /d/
COPY dir/ /d2
COPY *.txt /glob/
COPY exec.sh /bin/
COPY /a.txt ./rel
COPY tolink dir/s* /wild/
COPY ["a.txt", "/json dest"]
ADD arch.tgz /ex/
ADD arch.tar a.txt /ex2/
ADD a.txt /added
""",
    )
    base = _image_document(dockerd, dockerd.image)
    text = (context / "Dockerfile").read_text()
    chain = _evaluate_chain(plan_build(parse_dockerfile(text)), base["config"])
    history = built.document["history"][len(base["history"]) :]
    _check_copy_layers(
        "golden:latest", dockerd, chain, context, history, len(base["rootfs"]["diff_ids"])
    )


def test_multi_stage_and_global_args(dockerd: Engine, tmp_path: Path) -> None:
    dockerfile = """\
ARG BASE=BUSYBOX
ARG V
FROM ${BASE} AS one
ARG V=1
ENV E=$V
RUN echo one > /one
FROM one AS two
ARG BASE
LABEL base=$BASE
COPY --from=one /one /from-one
FROM two
EXPOSE 80
"""
    stage = tmp_path / "stage-one"
    _write(stage, dockerfile, dockerd)
    _build(dockerd, stage, "golden-one:latest", "--target", "one", "--build-arg", "V=7")
    root = _export(dockerd, "golden-one:latest", tmp_path / "rootfs-one", {"one"})
    _check(dockerd, tmp_path, dockerfile, "--build-arg", "V=7", stage_roots={"one": root})


def test_onbuild_triggers_run_in_the_child(dockerd: Engine, tmp_path: Path) -> None:
    parent_context = tmp_path / "parent"
    _write(
        parent_context,
        "FROM BUSYBOX\nONBUILD ENV FROM_TRIGGER=yes\nONBUILD COPY a.txt /onb\n"
        "ONBUILD RUN echo triggered\n",
        dockerd,
    )
    (parent_context / "a.txt").write_text("a\n")
    _build(dockerd, parent_context, "golden-parent:latest")
    parent = _image_document(dockerd, "golden-parent:latest")
    context = tmp_path / "child"
    text = _write(context, "FROM golden-parent:latest\nLABEL child=1\n", dockerd)
    (context / "a.txt").write_text("child a\n")
    built = _build(dockerd, context, "golden-child:latest")
    plan = plan_build(parse_dockerfile(text))
    chain = _evaluate_chain(plan, parent["config"])
    assert [s.onbuild for s in chain[0].steps] == [True, True, True, False]
    _compare(built, parent, chain, context)


def _sent_files(dockerd: Engine, context: Path) -> Iterator[str]:
    """The paths the docker CLI sent, read from the layer ``COPY . /ctx`` made."""
    _build(dockerd, context, "golden-context:latest")
    env = {k: v for k, v in os.environ.items() if not k.startswith("DOCKER_")}
    saved = subprocess.run(
        ["docker", "-H", dockerd.host, "save", "golden-context:latest"],
        capture_output=True,
        env=env,
        timeout=300,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(saved)) as archive:
        manifest = json.load(archive.extractfile("manifest.json"))  # type: ignore[arg-type]
        layer = archive.extractfile(manifest[0]["Layers"][-1])
        assert layer is not None
        with tarfile.open(fileobj=io.BytesIO(layer.read())) as files:
            for name in files.getnames():
                if name.startswith("ctx/"):
                    yield name.removeprefix("ctx/").rstrip("/")


def test_dockerignore_sends_what_the_cli_sends(dockerd: Engine, tmp_path: Path) -> None:
    context = tmp_path / "context"
    for path in (
        "a/b/c.go",
        "a/x.txt",
        "node_modules/x/y.js",
        "keep/k",
        "docs/readme.md",
        "docs/other.md",
        "main.go",
        "deep/er/still/file.log",
        "deep/er/keep.log",
        "tmp1",
        "tmpdir/z",
        "dot.d/file",
    ):
        (context / path).parent.mkdir(parents=True, exist_ok=True)
        (context / path).write_text(path)
    _write(context, "FROM BUSYBOX\nCOPY . /ctx\n", dockerd)
    (context / ".dockerignore").write_text(
        "# comment\n\nnode_modules\n**/*.go\n!a/b/*.go\n/docs\n!docs/readme.md\n"
        "deep/**/*.log\n!deep/er/keep.log\ntmp?\n./dot.d/\nDockerfile\n.dockerignore\n"
    )
    sent = set(_sent_files(dockerd, context))
    ours = {entry.path for entry in walk_context(context, context_matcher(context))}
    patterns = read_dockerignore((context / ".dockerignore").read_text())
    ours -= set(removed_after_reading(patterns, "Dockerfile"))
    # Parents of re-included files are created by the extraction though not sent themselves.
    parents = {str(Path(p).parent) for p in ours if "/" in p}
    assert sent == ours | parents
