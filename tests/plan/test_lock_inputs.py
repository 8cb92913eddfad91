"""stack.lock reading, writing and staleness; host input digests."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from declarun.frozen import FrozenDict
from declarun.plan import inputs
from declarun.plan.inputs import MISSING, UNHASHED, input_digests, path_digest
from declarun.plan.lock import (
    Lock,
    LockedImage,
    LockError,
    is_stale,
    lock_from_text,
    lock_path,
    lock_to_text,
    pinned_reference,
    read_lock,
    stale_reasons,
    write_lock,
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
    stack = load(tmp_path, STACK)
    write_lock(_lock(), lock_path(stack))
    assert lock_path(stack) == tmp_path / "stack.lock"
    assert read_lock(lock_path(stack)) == _lock()
    assert lock_path(stack).read_text() == text
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


def test_a_missing_lock_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="declarun lock"):
        read_lock(tmp_path / "stack.lock")


def test_pinned_reference_uses_docker_familiar_names() -> None:
    assert pinned_reference("docker.io/library/busybox:1.36", D1) == f"busybox@{D1}"
    assert pinned_reference("127.0.0.1:5000/a/b:1", D1) == f"127.0.0.1:5000/a/b@{D1}"


def test_path_digest_follows_content_and_mode_not_times(tmp_path: Path) -> None:
    tree = tmp_path / "conf"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.ini").write_text("a=1\n")
    os.symlink("sub/a.ini", tree / "link")
    first = path_digest(tree)
    assert first.startswith("sha256:")
    os.utime(tree / "sub" / "a.ini", (1, 1))
    assert path_digest(tree) == first
    (tree / "sub" / "a.ini").chmod(0o600)
    second = path_digest(tree)
    assert second != first
    (tree / "sub" / "a.ini").write_text("a=2\n")
    assert path_digest(tree) not in (first, second)
    assert path_digest(tree / "sub" / "a.ini") != path_digest(tree)
    assert path_digest(tmp_path / "nope") == MISSING


def test_too_large_inputs_are_not_tracked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "big").mkdir()
    for index in range(5):
        (tmp_path / "big" / str(index)).write_text("x")
    monkeypatch.setattr(inputs, "MAX_ENTRIES", 3)
    assert path_digest(tmp_path / "big") == UNHASHED


def test_input_digests_cover_read_only_binds_and_build_contexts(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "conf").mkdir()
    text = STACK.replace(
        "web: {image: busybox:1.36}",
        'web: {image: busybox:1.36, volumes: ["./conf:/c:ro", "./data:/d"]}',
    )
    digests = input_digests(load(tmp_path, text))
    assert set(digests) == {f"bind:{tmp_path / 'conf'}", f"context:{tmp_path / 'tools'}"}
