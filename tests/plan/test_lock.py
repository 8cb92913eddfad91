"""stack.lock as a value: its text, its staleness, pinned references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from declarun.frozen import FrozenDict
from declarun.observe.dockerfiles import base_images
from declarun.plan.lock import (
    Lock,
    LockedImage,
    LockError,
    is_stale,
    lock_from_text,
    lock_path,
    lock_to_text,
    lockable_references,
    pinned_reference,
    stale_reasons,
)
from tests.plan.helpers import load

STACK = """
stack: shop
images:
  app: {ref: "127.0.0.1:5000/shop/app:2", platform: linux/arm64}
  tools: {build: {context: ./tools}}
containers:
  web: {image: busybox:1.36}
  app: {image: app}
  tool: {image: tools}
"""
D1, D2 = "sha256:" + "a" * 64, "sha256:" + "b" * 64


def _lock() -> Lock:
    return Lock(
        stack="shop",
        images=FrozenDict(
            {
                "busybox:1.36": LockedImage(
                    "busybox:1.36", "busybox", FrozenDict({"linux/amd64": D1})
                ),
                "127.0.0.1:5000/shop/app:2": LockedImage(
                    "127.0.0.1:5000/shop/app:2",
                    "127.0.0.1:5000/shop/app",
                    FrozenDict({"linux/arm64": D2}),
                ),
            }
        ),
    )


def _tools(tmp_path: Path, dockerfile: str = "FROM scratch\nCOPY x /x\n") -> None:
    (tmp_path / "tools").mkdir(exist_ok=True)
    (tmp_path / "tools" / "Dockerfile").write_text(dockerfile)


def test_lock_text_is_stable_sorted_and_round_trips(tmp_path: Path) -> None:
    _tools(tmp_path)
    text = lock_to_text(_lock())
    assert text.endswith("\n")
    document = json.loads(text)
    assert document["lockVersion"] == 1
    assert list(document["images"]) == sorted(document["images"])
    assert lock_from_text(text) == _lock()
    assert lock_path(load(tmp_path, STACK)) == tmp_path / "stack.lock"
    assert _lock().pinned("busybox:1.36", "linux/amd64") == f"busybox@{D1}"


def test_staleness(tmp_path: Path) -> None:
    _tools(tmp_path)
    stack = load(tmp_path, STACK)
    assert not is_stale(
        _lock(), stack, "linux/amd64"
    )  # app pins its own platform; tools builds FROM scratch
    assert stale_reasons(_lock(), stack, "linux/arm64") == [
        "image busybox:1.36 is not locked for platform linux/arm64"
    ]
    newer = load(tmp_path, STACK.replace("busybox:1.36", "busybox:1.37"))
    assert stale_reasons(_lock(), newer, "linux/amd64") == [
        "image busybox:1.37 is not locked",
        "the lock pins busybox:1.36, which the stack no longer uses",
    ]
    other = Lock(stack="other", images=_lock().images)
    assert is_stale(other, stack, "linux/amd64")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{", "not valid JSON"),
        ('{"lockVersion": 9, "stack": "s"}', "unsupported lockVersion"),
        (
            '{"lockVersion": 1, "stack": "s", "images": {"x": {"repository": "x", "platforms": {"a": 1}}}}',
            "platforms",
        ),
    ],
)
def test_malformed_locks_are_clear_errors(text: str, message: str) -> None:
    with pytest.raises(LockError, match=message):
        lock_from_text(text)


def test_pinned_reference_uses_docker_familiar_names() -> None:
    assert pinned_reference("docker.io/library/busybox:1.36", D1) == f"busybox@{D1}"
    assert pinned_reference("127.0.0.1:5000/a/b:1", D1) == f"127.0.0.1:5000/a/b@{D1}"


BUILDS = """
stack: shop
images:
  base: {build: ./base}
  tools: {build: ./tools, platform: linux/arm64}
  app: {ref: "127.0.0.1:5000/shop/app:2"}
"""


def test_the_base_images_of_builds_are_locked_on_their_platform(tmp_path: Path) -> None:
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "Dockerfile").write_text("FROM busybox:1.36\n")
    # tools builds on the stack's own base (not locked) and on the app image (locked once,
    # on both platforms it is used on)
    _tools(tmp_path, "FROM shop-base\nCOPY --from=127.0.0.1:5000/shop/app:2 /x /x\n")
    stack = load(tmp_path, BUILDS)
    bases = base_images(stack)
    assert lockable_references(stack, "linux/amd64", bases) == {
        "127.0.0.1:5000/shop/app:2": ("linux/amd64", "linux/arm64"),
        "busybox:1.36": ("linux/amd64",),
    }
    only_app = Lock(
        stack="shop",
        images=FrozenDict(
            {
                "127.0.0.1:5000/shop/app:2": LockedImage(
                    "127.0.0.1:5000/shop/app:2",
                    "127.0.0.1:5000/shop/app",
                    FrozenDict({"linux/amd64": D1, "linux/arm64": D1}),
                )
            }
        ),
    )
    assert stale_reasons(only_app, stack, "linux/amd64", bases) == [
        "image busybox:1.36 is not locked"
    ]
    # without the base images (what the stack alone says), only pulled images are locked
    assert stale_reasons(only_app, stack, "linux/amd64") == []
