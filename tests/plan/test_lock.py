"""stack.lock as a value: its text, its staleness, pinned references."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from declarun.frozen import FrozenDict
from declarun.plan.lock import (
    Lock,
    LockedImage,
    LockError,
    is_stale,
    lock_from_text,
    lock_path,
    lock_to_text,
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


def test_lock_text_is_stable_sorted_and_round_trips(tmp_path: Path) -> None:
    text = lock_to_text(_lock())
    assert text.endswith("\n")
    document = json.loads(text)
    assert document["lockVersion"] == 1
    assert list(document["images"]) == sorted(document["images"])
    assert lock_from_text(text) == _lock()
    assert lock_path(load(tmp_path, STACK)) == tmp_path / "stack.lock"
    assert _lock().pinned("busybox:1.36", "linux/amd64") == f"busybox@{D1}"


def test_staleness(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    assert not is_stale(
        _lock(), stack, "linux/amd64"
    )  # app pins its own platform; builds are not locked
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
