"""Content digests of host inputs: read-only binds, by content and mode (build contexts are
``observe.builds``')."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from declarun.observe import digests
from declarun.observe.digests import input_digests, path_digest
from declarun.plan.inputs import MISSING, UNHASHED
from tests.plan.helpers import load

STACK = """
stack: shop
images:
  tools: {build: {context: ./tools}}
containers:
  web: {image: busybox:1.36}
  tool: {image: tools}
"""


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
    monkeypatch.setattr(digests, "MAX_ENTRIES", 3)
    assert path_digest(tmp_path / "big") == UNHASHED


def test_input_digests_cover_read_only_binds_only(tmp_path: Path) -> None:
    (tmp_path / "tools").mkdir()
    (tmp_path / "tools" / "Dockerfile").write_text("FROM scratch\n")
    (tmp_path / "conf").mkdir()
    text = STACK.replace(
        "web: {image: busybox:1.36}",
        'web: {image: busybox:1.36, volumes: ["./conf:/c:ro", "./data:/d"]}',
    )
    found = input_digests(load(tmp_path, text))
    assert set(found) == {f"bind:{tmp_path / 'conf'}"}
