"""Context walking and hashing: .dockerignore applied, the stat-keyed cache, change lists."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from declarun.dockerfile import context as context_module
from declarun.dockerfile.context import (
    ContextDigest,
    DigestCache,
    context_matcher,
    hash_context,
    walk_context,
)
from declarun.dockerfile.errors import FrontendError

OLD = time.time() - 3600  # older than the racy window


def make(root: Path, files: dict[str, str]) -> None:
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        os.utime(path, (OLD, OLD))


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ctx"
    make(
        root,
        {
            "Dockerfile": "FROM scratch\n",
            "src/app.py": "print(1)\n",
            "src/lib/util.py": "x = 1\n",
            "node_modules/pkg/index.js": "js",
            "README.md": "readme",
            ".dockerignore": "node_modules\n*.md\n",
        },
    )
    (root / "src" / "link").symlink_to("app.py")
    return root


def test_walk_applies_dockerignore_in_lexical_depth_first_order(tree: Path) -> None:
    paths = [e.path for e in walk_context(tree, context_matcher(tree))]
    assert paths == [
        ".dockerignore",
        "Dockerfile",
        "src",
        "src/app.py",
        "src/lib",
        "src/lib/util.py",
        "src/link",
    ]
    assert context_matcher(tree / "src") is None  # no .dockerignore there


def test_digest_covers_content_mode_and_links_but_not_times(tree: Path) -> None:
    first = hash_context(tree)
    assert first.entries["src/link"] == "symlink 777 app.py"
    assert first.entries["src"].startswith("dir ")
    os.utime(tree / "src/app.py", (OLD - 10, OLD - 10))
    assert hash_context(tree).digest == first.digest
    (tree / "src/app.py").chmod(0o755)
    changed = hash_context(tree)
    assert first.changes(changed).modified == ("src/app.py",)
    (tree / "README.md").write_text("ignored anyway")
    assert hash_context(tree).digest == changed.digest


def test_changes_name_added_removed_and_modified(tree: Path) -> None:
    before = hash_context(tree)
    (tree / "src/app.py").write_text("print(2)\n")
    (tree / "src/lib/util.py").unlink()
    (tree / "src/new.py").write_text("new")
    after = hash_context(tree)
    changes = before.changes(after)
    assert changes.added == ("src/new.py",)
    assert changes.removed == ("src/lib/util.py",)
    assert changes.modified == ("src/app.py",)
    assert changes and not after.changes(after)
    assert changes.paths() == ("src/app.py", "src/lib/util.py", "src/new.py")
    assert ContextDigest.from_json(after.to_json()) == after


def test_cache_hashes_content_only_when_stat_changes(
    tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads: list[str] = []
    real = context_module._file_digest

    def counting(path: str) -> str:
        reads.append(path)
        return real(path)

    monkeypatch.setattr(context_module, "_file_digest", counting)
    store = tmp_path / "cache" / "digests.json"
    first = hash_context(tree, cache=store)
    assert len(reads) == 4 and store.exists()
    reads.clear()
    assert hash_context(tree, cache=store) == first
    assert reads == []
    (tree / "src/app.py").write_text("print(3)\n")
    os.utime(tree / "src/app.py", (OLD + 5, OLD + 5))
    third = hash_context(tree, cache=store)
    assert reads == [str(tree / "src/app.py")]
    assert first.changes(third).modified == ("src/app.py",)


def test_recently_modified_files_are_not_trusted_from_the_cache(tree: Path) -> None:
    mapping: dict[str, object] = {}
    (tree / "fresh.txt").write_text("just written")
    hash_context(tree, cache=mapping)
    assert str(tree / "fresh.txt") not in mapping
    assert str(tree / "src/app.py") in mapping


def test_cache_drops_files_that_are_gone(tree: Path) -> None:
    mapping: dict[str, object] = {}
    cache = DigestCache(mapping)
    hash_context(tree, cache=cache)
    (tree / "src/app.py").unlink()
    hash_context(tree, cache=cache)
    assert str(tree / "src/app.py") not in mapping


def test_damaged_cache_file_is_only_a_miss(tree: Path, tmp_path: Path) -> None:
    store = tmp_path / "digests.json"
    store.write_text("{not json")
    assert hash_context(tree, cache=store).digest == hash_context(tree).digest


def test_dockerfile_kept_even_when_ignored(tmp_path: Path) -> None:
    root = tmp_path / "ctx"
    make(root, {"Dockerfile": "x", "other": "y", ".dockerignore": "*\n"})
    assert set(hash_context(root).entries) == {".dockerignore", "Dockerfile"}


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(FrontendError, match="is not a directory"):
        hash_context(tmp_path / "missing")
