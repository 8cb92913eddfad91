"""A stale saved plan names what moved: objects of the world, resources of the stack."""

from __future__ import annotations

from pathlib import Path

from declarun.plan.desired import desired_state
from declarun.plan.diff import diff
from declarun.plan.staleness import desired_differences, observed_objects, world_differences
from tests.plan.helpers import load, matching_snapshot, with_container, without

SHOP_LIKE = """\
stack: shop
volumes:
  data: {}
containers:
  web:
    image: busybox:1.36
    env: {LOG_LEVEL: info}
    volumes: [data:/data]
"""


def test_world_differences_name_each_object_that_moved(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP_LIKE)
    then = matching_snapshot(stack)
    recorded = observed_objects(then)
    assert world_differences(recorded, then) == []
    now = without(with_container(then, "shop-web", state="exited", exit_code=1), "volumes",
                  "shop-data")  # fmt: skip
    assert world_differences(recorded, now) == [
        "container shop-web changed (running → exited)",
        "volume shop-data is gone",
    ]


def test_desired_differences_name_each_resource_that_moved(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP_LIKE)
    saved = diff(stack, matching_snapshot(stack))
    edited = load(tmp_path, SHOP_LIKE.replace("LOG_LEVEL: info", "LOG_LEVEL: debug"))
    assert desired_differences(saved, desired_state(edited)) == [
        "container web has another configuration"
    ]
    grown = load(tmp_path, SHOP_LIKE + "  extra:\n    image: busybox:1.36\n")
    assert desired_differences(saved, desired_state(grown)) == [
        "container extra is new in the stack"
    ]
