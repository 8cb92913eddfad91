"""The checks of a stack's builds, beyond the golden errors: what passes, and how the files
they name are shown."""

from __future__ import annotations

from pathlib import Path

import pytest

from declarun.errors import StackError
from declarun.stack.pipeline import LoadOptions, load_stack


def _load(path: Path) -> None:
    load_stack(path, LoadOptions(environ={}))


def test_valid_builds_pass_a_dockerfile_may_lie_outside_its_context(tmp_path: Path) -> None:
    (tmp_path / "app").mkdir()
    (tmp_path / "app.Dockerfile").write_text("FROM busybox:1.36 AS prod\nCOPY . /app\n")
    (tmp_path / "web").mkdir()
    (tmp_path / "web" / "Dockerfile").write_text("FROM shop-app:1\n")
    (tmp_path / "stack.yaml").write_text(
        "stack: shop\n"
        "images:\n"
        "  app:\n"
        "    ref: shop-app:1\n"
        "    build: {context: ./app, dockerfile: ../app.Dockerfile, target: prod}\n"
        "  web: {build: ./web}\n"
        "containers:\n"
        "  web: {image: web}\n"
    )
    _load(tmp_path / "stack.yaml")


def test_the_files_are_shown_as_the_stack_file_was_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = tmp_path / "shop"
    (project / "app").mkdir(parents=True)
    (project / "app" / "Dockerfile").write_text("FROM busybox\nRUNN x\n")
    (project / "stack.yaml").write_text("stack: shop\nimages:\n  app: {build: ./app}\n")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(StackError) as caught:
        _load(Path("shop/stack.yaml"))
    (problem,) = caught.value.problems
    assert str(problem) == (
        "shop/stack.yaml:3:16: images.app.build: shop/app/Dockerfile:2: unknown instruction: "
        "RUNN (did you mean RUN?)"
    )
