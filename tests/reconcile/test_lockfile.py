"""stack.lock on disk: written atomically next to the stack, read back, missing made clear."""

from __future__ import annotations

from pathlib import Path

import pytest

from declarun.frozen import FrozenDict
from declarun.plan.lock import Lock, LockedImage, LockError, lock_path, lock_to_text
from declarun.reconcile.lockfile import load_stack_lock, read_lock, write_lock
from tests.plan.helpers import load

STACK = """
stack: shop
containers:
  web: {image: busybox:1.36}
"""
LOCK = Lock(
    stack="shop",
    images=FrozenDict(
        {
            "busybox:1.36": LockedImage(
                "busybox:1.36", "busybox", FrozenDict({"linux/amd64": "sha256:" + "a" * 64})
            )
        }
    ),
)


def test_a_written_lock_reads_back_and_is_its_stable_text(tmp_path: Path) -> None:
    stack = load(tmp_path, STACK)
    write_lock(LOCK, lock_path(stack))
    assert lock_path(stack) == tmp_path / "stack.lock"
    assert read_lock(lock_path(stack)) == LOCK
    assert lock_path(stack).read_text() == lock_to_text(LOCK)
    assert {p.name for p in tmp_path.iterdir()} == {"stack.yaml", "stack.lock"}  # no temp file
    assert load_stack_lock(stack, locked=True) == LOCK


def test_a_missing_lock_says_how_to_make_one(tmp_path: Path) -> None:
    with pytest.raises(LockError, match="declarun lock"):
        read_lock(tmp_path / "stack.lock")
    stack = load(tmp_path, STACK)
    assert load_stack_lock(stack, locked=False) is None  # optional unless --locked
    with pytest.raises(LockError, match="no lock file"):
        load_stack_lock(stack, locked=True)
