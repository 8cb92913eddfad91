"""The ``build:`` flow end to end: plan and apply of built images on each engine that builds.

The stack: ``base`` (built from the registry's busybox), ``app`` built ``FROM`` the tag
``base`` gets (so the graph orders it after), ``other`` built from busybox too; ``web`` (two
replicas) runs ``app``, ``side`` runs ``other``, ``plain`` the registry's busybox. Each test
has its own stack name, so its tags and build records are its own.

Parameterised over ``build_engine`` (``tests.support.builds``): declarund and dockerd.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from declarun.observe.dockerfiles import base_images
from declarun.plan.lock import lock_path
from declarun.reconcile.apply import (
    ApplyReport,
    apply_stack,
    build_stack,
    destroy_stack,
    make_plan,
)
from declarun.reconcile.lockfile import resolve_lock, write_lock
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack
from tests.support.engine_fixtures import Engine
from tests.support.images import build_busybox_layout, skopeo_push
from tests.support.settle import apply_options
from tests.support.stacks import unique_stack

STACK = """\
stack: {name}
vars:
  greeting: hello
images:
  base: {{build: ./base}}
  app:
    build:
      context: ./app
      args: {{GREETING: "{{{{ vars.greeting }}}}"}}
      labels: {{team: shop}}
  other: {{build: ./other}}
containers:
  web:
    image: app
    replicas: 2
    command: [sleep, "3600"]
    stop_grace_period: 1s
  side:
    image: other
    command: [sleep, "3600"]
    stop_grace_period: 1s
  plain:
    image: {image}
    command: [sleep, "3600"]
    stop_grace_period: 1s
"""


class Built:
    """One test's stack of built images: its directory, name and helpers."""

    def __init__(self, engine: Engine, root: Path) -> None:
        self.engine = engine
        self.adapter = engine.adapter
        self.root = root
        self.name = unique_stack("b")
        (root / "base").mkdir()
        (root / "base" / "Dockerfile").write_text(f"FROM {engine.image}\nRUN echo base-1 > /base\n")
        (root / "app").mkdir()
        (root / "app" / "Dockerfile").write_text(
            f"FROM {self.name}-base\n"
            "ARG GREETING\n"
            "COPY index.txt /www/index.txt\n"
            "RUN echo $GREETING > /www/greeting\n"
        )
        (root / "app" / "index.txt").write_text("v1\n")
        (root / "app" / "notes.md").write_text("not copied by the Dockerfile\n")
        (root / "app" / ".dockerignore").write_text("*.log\n")
        (root / "other").mkdir()
        (root / "other" / "Dockerfile").write_text(f"FROM {engine.image}\nCOPY . /other\n")
        (root / "other" / "o.txt").write_text("other\n")
        self.path = root / "stack.yaml"
        self.path.write_text(STACK.format(name=self.name, image=engine.image))

    def load(self, **overrides: str) -> Stack:
        return load_stack(self.path, LoadOptions(var_overrides=overrides))

    def container_ids(self) -> dict[str, str]:
        return {
            name: self.engine.client.api.inspect_container(f"{self.name}-{name}")["Id"]
            for name in ("web-1", "web-2", "side", "plain")
        }

    def run(self, container: str, *command: str) -> str:
        exec_id = self.engine.client.api.exec_create(f"{self.name}-{container}", list(command))
        return str(self.engine.client.api.exec_start(exec_id).decode())

    def tags(self) -> list[str]:
        return [f"{self.name}-{image}:latest" for image in ("base", "app", "other")]


def _ok(report: ApplyReport) -> None:
    failures = [o for r in report.rounds for o in r.result.outcomes if o.status != "done"]
    assert report.ok, (failures, report.remaining.actionable)


@pytest.fixture
def built(build_engine: Engine, tmp_path: Path) -> Iterator[Built]:
    stack = Built(build_engine, tmp_path)
    yield stack
    destroy_stack(build_engine.adapter, stack.load())
    for tag in stack.tags():
        build_engine.docker("rmi", "-f", tag, check=False)


@pytest.fixture
def applied(built: Built) -> Built:
    report = apply_stack(built.adapter, built.load(), apply_options())
    _ok(report)
    (first,) = report.rounds[:1]
    order = [o.key for o in first.result.outcomes]
    assert order.index("image:base") < order.index("image:app")  # FROM the tag base gets
    return built


def test_nothing_changed_means_no_build_action(applied: Built) -> None:
    assert make_plan(applied.adapter, applied.load()).plan.is_empty
    # a new mtime with the same content is no change
    (applied.root / "app" / "index.txt").write_text("v1\n")
    (applied.root / "app" / "build.log").write_text("ignored by .dockerignore\n")
    plan = make_plan(applied.adapter, applied.load()).plan
    assert plan.is_empty, plan.actionable


def test_edit_one_file_plan_names_it_apply_replaces_only_the_containers_on_that_image(
    applied: Built,
) -> None:
    before = applied.container_ids()
    (applied.root / "app" / "index.txt").write_text("v2\n")
    plan = make_plan(applied.adapter, applied.load()).plan
    assert {c.id: c.action for c in plan.actionable} == {
        "image:app": "build",
        "container:web-1": "recreate",
        "container:web-2": "recreate",
    }
    (reason,) = plan.change("image:app").reasons
    assert reason.message == "1 file changed in the build context: index.txt (modified)"

    _ok(apply_stack(applied.adapter, applied.load(), apply_options()))
    after = applied.container_ids()
    assert after["web-1"] != before["web-1"] and after["web-2"] != before["web-2"]
    assert (after["side"], after["plain"]) == (before["side"], before["plain"])
    assert applied.run("web-1", "cat", "/www/index.txt") == "v2\n"
    assert make_plan(applied.adapter, applied.load()).plan.is_empty


def test_a_rebuild_that_gives_the_same_image_replaces_no_container(applied: Built) -> None:
    before = applied.container_ids()
    (applied.root / "app" / "notes.md").write_text("edited, but no COPY reads it\n")
    plan = make_plan(applied.adapter, applied.load()).plan
    (reason,) = plan.change("image:app").reasons
    assert reason.message == "1 file changed in the build context: notes.md (modified)"
    report = apply_stack(applied.adapter, applied.load(), apply_options())
    _ok(report)
    (round_,) = report.rounds
    for replica in ("container:web-1", "container:web-2"):
        assert round_.result.outcome(replica).note.startswith("kept: the build of")
    assert applied.container_ids() == before
    assert make_plan(applied.adapter, applied.load()).plan.is_empty


def test_a_changed_arg_is_named_and_rebuilt(applied: Built) -> None:
    plan = make_plan(applied.adapter, applied.load(greeting="bonjour")).plan
    (reason,) = plan.change("image:app").reasons
    assert (reason.field, reason.before, reason.after) == (
        "build.args.GREETING",
        "hello",
        "bonjour",
    )
    _ok(apply_stack(applied.adapter, applied.load(greeting="bonjour"), apply_options()))
    assert applied.run("web-2", "cat", "/www/greeting") == "bonjour\n"


def test_a_base_image_of_the_stack_is_built_before_the_images_on_it(applied: Built) -> None:
    (applied.root / "base" / "Dockerfile").write_text(
        f"FROM {applied.engine.image}\nRUN echo base-2 > /base\n"
    )
    plan = make_plan(applied.adapter, applied.load()).plan
    assert plan.change("image:base").action == plan.change("image:app").action == "build"
    assert "image:base" in plan.change("image:app").depends_on
    assert plan.change("image:app").reasons[0].kind == "dependency_replaced"
    report = apply_stack(applied.adapter, applied.load(), apply_options())
    _ok(report)
    order = [o.key for o in report.rounds[0].result.outcomes]
    assert order.index("image:base") < order.index("image:app") < order.index("container:web-1")
    assert applied.run("web-1", "cat", "/base") == "base-2\n"


def test_a_failing_build_fails_the_apply_and_skips_the_containers_on_it(built: Built) -> None:
    (built.root / "other" / "Dockerfile").write_text(
        f"FROM {built.engine.image}\nRUN echo about to fail; exit 3\n"
    )
    report = apply_stack(built.adapter, built.load(), apply_options())
    assert not report.ok
    (round_,) = report.rounds
    failed = round_.result.outcome("image:other")
    assert failed.status == "failed"
    assert "returned a non-zero code: 3" in (failed.error or "")
    assert "about to fail" in failed.report
    skipped = round_.result.outcome("container:side")
    assert (skipped.status, skipped.cause) == ("skipped", "image:other")
    assert round_.result.outcome("container:web-1").status == "done"  # unrelated: carried on


def test_lock_pins_the_base_images_and_locked_builds_use_them(
    build_engine: Engine, tmp_path: Path
) -> None:
    # Two images of their own (not the session's busybox, whose id other tests compare):
    # the one locked has one extra layer, the one the tag moves to has two.
    registry = build_engine.registry
    repository = f"lockbase-{unique_stack('')}"
    pinned = build_busybox_layout(tmp_path / "v1", tag="1", extra_layers=1)
    moved = build_busybox_layout(tmp_path / "v2", tag="1", extra_layers=2)
    reference = skopeo_push(tmp_path / "v1", registry, f"{repository}:1", tag="1")
    name = unique_stack("lk")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        f"FROM {reference}\nRUN ls /extra | wc -l > /extra.txt\n"
    )
    path = tmp_path / "stack.yaml"
    path.write_text(f"stack: {name}\nimages:\n  app: {{build: ./app}}\n")
    stack = load_stack(path)
    platform = build_engine.adapter.version().platform
    lock = resolve_lock(build_engine.adapter, stack, platform, base_images(stack, platform))
    write_lock(lock, lock_path(stack))
    locked = json.loads(lock_path(stack).read_text())["images"][reference]
    assert locked["platforms"][platform] == pinned.manifest.digest
    # the tag moves on in the registry, and the engine has the newer image under it
    skopeo_push(tmp_path / "v2", registry, f"{repository}:1", tag="1")
    for _ in build_engine.adapter.pull_image(reference):
        pass
    assert build_engine.adapter.inspect_image(reference).id == moved.config.digest
    try:
        _ok(apply_stack(build_engine.adapter, stack, apply_options(locked=True)))
        built_tag = f"{name}-app:latest"
        output = build_engine.client.containers.run(built_tag, ["cat", "/extra.txt"], remove=True)
        assert output.strip() == b"1"  # built FROM the pinned image: one extra layer
        assert build_engine.adapter.inspect_image(reference).id == pinned.config.digest
        assert make_plan(build_engine.adapter, stack, apply_options(locked=True)).plan.is_empty
    finally:
        for image in (f"{name}-app:latest", reference, pinned.config.digest, moved.config.digest):
            build_engine.docker("rmi", "-f", image, check=False)


def _declarun(built: Built, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            sys.executable,
            "-m",
            "declarun",
            *args,
            "--engine",
            "docker",
            "--host",
            built.engine.host,
        ],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_declarun_build_builds_on_its_own_and_touches_no_container(applied: Built) -> None:
    before = applied.container_ids()
    done = _declarun(applied, "build", str(applied.path), "other", "--no-cache")
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"build \S+-other:latest Step 1/\d : FROM", done.stdout), done.stdout
    assert "Build complete: 1 built" in done.stdout
    assert applied.container_ids() == before
    # --no-cache gave a new image: the plan now replaces the container on it
    plan = make_plan(applied.adapter, applied.load()).plan
    assert [(c.id, c.action) for c in plan.actionable] == [("container:side", "recreate")]
    unknown = _declarun(applied, "build", str(applied.path), "ap")
    assert unknown.returncode == 1
    assert "the stack builds no image 'ap'; did you mean 'app'?" in unknown.stderr


def test_declarun_plan_shows_the_build_and_its_reason(applied: Built) -> None:
    (applied.root / "app" / "index.txt").write_text("v3\n")
    done = _declarun(applied, "plan", str(applied.path))
    assert done.returncode == 2, done.stderr
    assert (
        f"  * build image app ({applied.name}-app:latest)\n"
        "      1 file changed in the build context: index.txt (modified)\n"
    ) in done.stdout
    assert "2 to recreate (if their image changes)" in done.stdout


def test_building_one_image_builds_the_missing_stack_image_it_starts_from(built: Built) -> None:
    report = build_stack(built.adapter, built.load(), ["app"])
    _ok(report)
    (round_,) = report.rounds
    assert [o.key for o in round_.result.outcomes] == ["image:base", "image:app"]
    assert [r.kind for r in round_.plan.change("image:base").reasons] == ["missing"]
    assert [r.kind for r in round_.plan.change("image:app").reasons] == ["requested"]
    # what was built is recorded: the plan only creates the containers now
    plan = make_plan(built.adapter, built.load()).plan
    assert {c.id for c in plan.actionable if c.kind == "image"} == {"image:other"}


def test_declarun_build_push_sends_the_built_image_to_its_registry(
    build_engine: Engine, tmp_path: Path
) -> None:
    name = unique_stack("p")
    repository = f"pushed/{name}"
    ref = f"{build_engine.registry.host}/{repository}:1"
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        f"FROM {build_engine.image}\nRUN echo {name} > /pushed\n"
    )
    path = tmp_path / "stack.yaml"
    path.write_text(
        f"stack: {name}\nimages:\n  app: {{ref: '{ref}', build: ./app}}\n"
        "  loose: {build: ./app}\n"
    )
    try:
        untagged = _run_declarun(build_engine, "build", str(path), "--push")
        assert untagged.returncode == 1
        assert "cannot push loose: a built image needs a ref naming its registry" in (
            untagged.stderr
        )
        done = _run_declarun(build_engine, "build", str(path), "app", "--push")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"✓ push {ref}" in done.stdout and "Push complete: 1 image(s)." in done.stdout
        url = f"http://{build_engine.registry.host}/v2/{repository}/tags/list"
        with urllib.request.urlopen(url, timeout=30) as answer:
            assert json.load(answer)["tags"] == ["1"]
    finally:
        build_engine.docker("rmi", "-f", ref, check=False)


def _run_declarun(engine: Engine, *args: str) -> subprocess.CompletedProcess[str]:
    kind = ["--engine", "docker"] if engine.kind == "dockerd" else []
    return subprocess.run(
        [sys.executable, "-m", "declarun", *args, *kind, "--host", engine.host],
        capture_output=True, text=True, timeout=600, check=False,
    )  # fmt: skip
