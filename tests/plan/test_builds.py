"""Plans of built images: a build action with reasons that name what changed, and nothing
when nothing did.

The world is a real directory tree (contexts, Dockerfiles) observed with
``observe_build`` — hashing, the record and the context's file list in the session's cache
directory — and an engine stood in for by a snapshot (``matching_snapshot``) whose images
all have :data:`IMAGE_ID`. ``built(stack)`` records a perfect build of every image, as apply
does after a build.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from declarun.frozen import FrozenDict
from declarun.observe.buildcache import cache_dir, write_record
from declarun.observe.builds import observe_build
from declarun.plan.desired import DEFAULT_PLATFORM
from declarun.plan.diff import diff
from declarun.plan.model import Plan
from declarun.plan.observed import ObservedState
from declarun.plan.render import plan_text
from declarun.stack.model import Stack
from declarun.stack.naming import image_reference
from tests.plan.helpers import IMAGE_ID, load, matching_snapshot

BASE_ID = "sha256:" + "b" * 64
NEWER_BASE_ID = "sha256:" + "c" * 64
SCHEMA = json.loads((Path(__file__).parents[2] / "schema" / "plan.schema.json").read_text())

STACK = """
stack: shop
images:
  base: {build: ./base}
  app:
    build: {context: ./app, args: {VERSION: "1", API_TOKEN: s3cret}, labels: {team: shop}}
  tools: {build: ./tools}
containers:
  web: {image: app, replicas: 2}
  worker: {image: app}
  toolbox: {image: tools}
  other: {image: busybox:1.36}
"""


@pytest.fixture(autouse=True)
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def _tree(root: Path) -> None:
    (root / "base").mkdir()
    (root / "base" / "Dockerfile").write_text("FROM busybox:1.36\n")
    app = root / "app"
    (app / "src").mkdir(parents=True)
    (app / "Dockerfile").write_text("FROM shop-base\nARG VERSION\nCOPY src /src\n")
    (app / ".dockerignore").write_text("*.log\n")
    for index in range(8):
        (app / "src" / f"m{index}.py").write_text(f"print({index})\n")
    (root / "tools").mkdir()
    (root / "tools" / "Dockerfile").write_text("FROM alpine:3\n")


def _image_id(ref: str) -> str | None:
    return {"busybox:1.36": BASE_ID, "alpine:3": BASE_ID}.get(ref, IMAGE_ID)


def observe(stack: Stack, image_id: object = _image_id) -> ObservedState:
    """The snapshot of a perfect apply, with the builds as observed now."""
    builds = {
        name: observe_build(stack, image, platform=DEFAULT_PLATFORM, image_id=image_id)  # type: ignore[arg-type]
        for name, image in stack.images.items()
        if image.build is not None
    }
    return replace(matching_snapshot(stack), builds=FrozenDict(sorted(builds.items())))


def built(stack: Stack) -> None:
    """Record every build as apply does once it built the image (its id: IMAGE_ID)."""
    for name, seen in observe(stack).builds.items():
        tag = image_reference(stack, stack.images[name])
        assert tag is not None and seen.inputs is not None
        write_record(tag, IMAGE_ID, seen.inputs)


def plan_of(stack: Stack, snapshot: ObservedState | None = None) -> Plan:
    return diff(stack, snapshot or observe(stack), created_at="t")


def actions(plan: Plan) -> dict[str, str]:
    return {c.id: c.action for c in plan.actionable}


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    _tree(tmp_path)
    loaded = load(tmp_path, STACK)
    built(loaded)
    return loaded


def test_nothing_changed_means_no_build(stack: Stack) -> None:
    plan = plan_of(stack)
    assert plan.is_empty, plan_text(plan)


def test_an_edited_file_is_named_and_only_the_containers_on_that_image_may_be_replaced(
    stack: Stack, tmp_path: Path
) -> None:
    (tmp_path / "app" / "src" / "m3.py").write_text("print('changed')\n")
    (tmp_path / "app" / "debug.log").write_text("ignored by .dockerignore\n")
    plan = plan_of(stack)
    assert actions(plan) == {
        "image:app": "build",
        "container:web-1": "recreate",
        "container:web-2": "recreate",
        "container:worker": "recreate",
    }
    (reason,) = plan.change("image:app").reasons
    assert reason.kind == "input_changed"
    assert reason.field == "build.context"
    assert reason.message == "1 file changed in the build context: src/m3.py (modified)"
    for replica in ("web-1", "web-2", "worker"):
        (why,) = plan.change(f"container:{replica}").reasons
        assert why.kind == "image_rebuilt"
        assert "replaced if that gives a new image" in why.message
    text = plan_text(plan)
    assert "* build image app (shop-app:latest)" in text
    assert "1 file changed in the build context: src/m3.py (modified)" in text
    assert "3 to recreate (if their image changes)" in text
    Draft202012Validator(SCHEMA).validate(plan.to_data())
    # the image is built before the containers that use it are touched
    order = [c.id for c in plan.changes]
    assert order.index("image:app") < order.index("container:worker")
    assert "image:app" in plan.change("container:worker").depends_on


def test_many_changed_files_are_named_up_to_five_and_the_rest_counted(
    stack: Stack, tmp_path: Path
) -> None:
    for index in range(8):
        (tmp_path / "app" / "src" / f"m{index}.py").write_text("changed\n")
    (tmp_path / "app" / "src" / "new.py").write_text("new\n")
    (tmp_path / "app" / "src" / "m0.py").unlink()
    (reason,) = plan_of(stack).change("image:app").reasons
    assert reason.message == (
        "9 files changed in the build context: src/m1.py (modified), src/m2.py (modified), "
        "src/m3.py (modified), src/m4.py (modified), src/m5.py (modified) and 4 more files"
    )


def test_a_changed_arg_is_named_and_a_secret_one_masked(stack: Stack, tmp_path: Path) -> None:
    changed = load(tmp_path, STACK.replace('VERSION: "1"', 'VERSION: "2"').replace("s3cret", "x"))
    reasons = plan_of(changed).change("image:app").reasons
    assert [(r.kind, r.field) for r in reasons] == [
        ("field_changed", "build.args.API_TOKEN"),
        ("field_changed", "build.args.VERSION"),
    ]
    token, version = reasons
    assert (version.before, version.after) == ("1", "2")
    assert version.message == 'build.args.VERSION: "1" → "2"'
    assert "s3cret" not in json.dumps(plan_of(changed).to_data())
    assert str(token.after).startswith("*** (sha256:")


def test_target_labels_and_platform_are_reasons(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "tools" / "Dockerfile").write_text("FROM alpine:3 AS run\n")
    built(stack)
    text = STACK.replace(
        "tools: {build: ./tools}", "tools: {build: {context: ./tools, target: run}}"
    )
    text = text.replace("labels: {team: shop}", "labels: {team: web}")
    changed = load(tmp_path, text)
    plan = plan_of(changed)
    assert [r.field for r in plan.change("image:tools").reasons] == ["build.target"]
    assert [r.field for r in plan.change("image:app").reasons] == ["build.labels.team"]


def test_an_edited_dockerfile_is_its_own_reason(stack: Stack, tmp_path: Path) -> None:
    (tmp_path / "tools" / "Dockerfile").write_text("FROM alpine:3\nRUN true\n")
    (reason,) = plan_of(stack).change("image:tools").reasons
    assert (reason.kind, reason.field) == ("input_changed", "build.dockerfile")
    dockerfile = tmp_path / "tools" / "Dockerfile"
    assert reason.message.startswith(f"Dockerfile changed: {dockerfile} (sha256 ")


def test_a_base_image_that_moved_is_named(stack: Stack) -> None:
    def moved(ref: str) -> str | None:
        return NEWER_BASE_ID if ref == "alpine:3" else _image_id(ref)

    plan = plan_of(stack, observe(stack, moved))
    (reason,) = plan.change("image:tools").reasons
    assert (reason.kind, reason.field) == ("image_changed", "build.from.alpine:3")
    assert (reason.before, reason.after) == (BASE_ID, NEWER_BASE_ID)
    assert actions(plan) == {"image:tools": "build", "container:toolbox": "recreate"}


def test_a_base_image_of_the_stack_built_again_builds_its_dependents_after_it(
    stack: Stack, tmp_path: Path
) -> None:
    (tmp_path / "base" / "Dockerfile").write_text("FROM busybox:1.36\nRUN true\n")
    plan = plan_of(stack)
    assert plan.change("image:base").action == "build"
    app = plan.change("image:app")
    assert app.action == "build"
    assert "image:base" in app.depends_on
    (reason,) = app.reasons
    assert (reason.kind, reason.message) == (
        "dependency_replaced",
        "its base image shop-base is built again first",
    )


def test_without_a_record_it_is_built_again_and_says_why(stack: Stack) -> None:
    for record in (cache_dir() / "builds").glob("*/*.json"):
        record.unlink()
    plan = plan_of(stack)
    assert {c.id for c in plan.actionable if c.kind == "image"} == {
        "image:base",
        "image:app",
        "image:tools",
    }
    (reason,) = plan.change("image:tools").reasons
    assert reason.kind == "not_recorded"


def test_without_the_previous_file_list_the_context_change_is_told_without_files(
    stack: Stack, tmp_path: Path
) -> None:
    for kept in (cache_dir() / "contexts").glob("*.json"):
        kept.unlink()
    (tmp_path / "app" / "src" / "m1.py").write_text("changed\n")
    (reason,) = plan_of(stack).change("image:app").reasons
    assert reason.field == "build.context"
    assert "which files is not known here" in reason.message


def test_a_missing_image_is_built_and_an_unreadable_build_is_an_error(
    stack: Stack, tmp_path: Path
) -> None:
    snapshot = observe(stack)
    gone = replace(
        snapshot,
        images=FrozenDict({k: v for k, v in snapshot.images.items() if k != "shop-tools:latest"}),
    )
    (reason,) = plan_of(stack, gone).change("image:tools").reasons
    assert (reason.kind, reason.message) == ("missing", "image shop-tools:latest is not built yet")
    (tmp_path / "tools" / "Dockerfile").unlink()
    broken = plan_of(stack).change("image:tools")
    assert broken.action == "error"
    assert broken.reasons[0].kind == "input_unreadable"
    assert "there is no Dockerfile at" in broken.reasons[0].message


def test_the_observed_builds_round_trip_and_are_fingerprinted(stack: Stack, tmp_path: Path) -> None:
    snapshot = observe(stack)
    assert ObservedState.from_data(snapshot.to_data()) == snapshot
    (tmp_path / "app" / "src" / "m1.py").write_text("changed\n")
    assert observe(stack).fingerprint() != snapshot.fingerprint()
