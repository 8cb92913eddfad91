"""Base images of builds, read from their Dockerfiles, and the one graph the plan and
``declarun graph`` both build from them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from declarun.observe.dockerfiles import base_images, dockerfile_base_images
from declarun.plan.diff import diff
from declarun.plan.graph import build_graph, export_graph
from declarun.plan.observed import ObservedState
from declarun.stack.model import Build
from tests.plan.helpers import load

STACK = """
stack: shop
images:
  base: {ref: "127.0.0.1:5000/shop/base:1"}
  app: {build: {context: ./app, args: {BASE: "127.0.0.1:5000/shop/base:1"}}}
  tools: {build: {context: ./tools, dockerfile: tools.Dockerfile}}
containers:
  web: {image: app}
  tool: {image: tools}
"""


def _write(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        "ARG BASE\n"
        "FROM --platform=linux/amd64 ${BASE} AS builder\n"
        "RUN make\n"
        "FROM builder\n"
        "from busybox:1.36\n"
        "COPY --from=builder /out /out\n"
    )
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "tools.Dockerfile").write_text("FROM scratch\nCOPY x /x\n")


def _forbidden(*args: object, **kwargs: object) -> str:
    raise AssertionError("the plan read a file")


def test_base_images_fill_args_and_skip_stages_and_scratch(tmp_path: Path) -> None:
    _write(tmp_path)
    stack = load(tmp_path, STACK)
    assert base_images(stack) == {
        "app": ("127.0.0.1:5000/shop/base:1", "busybox:1.36"),
        "tools": (),
    }
    assert dockerfile_base_images(Build(context=tmp_path / "nowhere")) == ()


def test_the_plan_orders_a_build_after_its_base_image_as_the_graph_command_draws(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(tmp_path)
    stack = load(tmp_path, STACK)
    observed = ObservedState(stack="shop", base_images=base_images(stack))
    with monkeypatch.context() as patched:
        patched.setattr(Path, "read_text", _forbidden)  # the plan reads no Dockerfile
        plan = diff(stack, observed, created_at="t")
    assert "image:base" in plan.change("image:app").depends_on
    drawn = subprocess.run(
        [sys.executable, "-m", "declarun", "graph", str(tmp_path / "stack.yaml"), "--format",
         "json"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    edges = {(e["from"], e["to"]) for e in json.loads(drawn.stdout)["edges"]}
    assert ("image:app", "image:base") in edges
    same = build_graph(stack, observed.base_images)
    assert json.loads(export_graph(same, "json")) == json.loads(drawn.stdout)


def test_observed_base_images_are_fingerprinted_only_for_stacks_that_build(
    tmp_path: Path,
) -> None:
    _write(tmp_path)
    stack = load(tmp_path, STACK)
    building = ObservedState(stack="shop", base_images=base_images(stack))
    assert ObservedState.from_data(building.to_data()) == building
    assert building.fingerprint() != ObservedState(stack="shop").fingerprint()
    assert "base_images" not in ObservedState(stack="shop").to_data()


BUILT_ON_BUILT = """
stack: shop
images:
  base: {build: ./base}
  app: {build: {context: ./app, target: prod}}
containers:
  web: {image: app}
"""


def test_a_build_from_another_built_image_is_ordered_after_it_by_its_tag(
    tmp_path: Path,
) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text("FROM busybox:1.36\n")
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text(
        "FROM golang:1.22 AS dev\n"  # not needed by the target: not a base image
        "FROM shop-base AS prod\n"  # the tag shop-base:latest, the image 'base' gets
        "COPY --from=alpine:3 /etc/os-release /\n"
    )
    stack = load(tmp_path, BUILT_ON_BUILT)
    bases = base_images(stack)
    assert bases == {"app": ("shop-base", "alpine:3"), "base": ("busybox:1.36",)}
    graph = build_graph(stack, bases)
    assert graph.has_edge("image:app", "image:base")
    plan = diff(stack, ObservedState(stack="shop", base_images=bases), created_at="t")
    order = [c.id for c in plan.changes]
    assert order.index("image:base") < order.index("image:app") < order.index("container:web")


def test_an_image_name_is_not_a_reference(tmp_path: Path) -> None:
    # FROM base means docker.io/library/base:latest to the builder, whatever images: says.
    (tmp_path / "app").mkdir()
    (tmp_path / "app" / "Dockerfile").write_text("FROM base\n")
    stack = load(
        tmp_path,
        """
        stack: shop
        images:
          base: {ref: "127.0.0.1:5000/shop/base:1"}
          app: {build: ./app}
        """,
    )
    assert not build_graph(stack, base_images(stack)).has_edge("image:app", "image:base")
