"""The bundled web example does what the README says, on each engine: it serves the greeting,
and after ``--var greeting=hi`` the page says hi."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine, EngineImage
from tests.support.images import skopeo_push
from tests.support.registry import free_port
from tests.support.stacks import fetch, wait_until

WEB = Path(__file__).parents[2] / "examples" / "web" / "stack.yaml"


@pytest.fixture
def web(engine: Engine, engine_registry: EngineImage, tmp_path: Path) -> Iterator[StackCli]:
    # The example's image, in the test registry under the name the example uses.
    skopeo_push(engine_registry.oci.layout, engine_registry.registry, "declarun/busybox:1.35")
    cli = StackCli(engine, tmp_path, "")
    shutil.copy(WEB, cli.path)
    cli.name = "webapp"  # the example's own stack name, for clean()
    yield cli
    cli.run("destroy", "stack.yaml", "--volumes", "--yes", "--var",
            f"registry={engine_registry.registry.host}")  # fmt: skip
    cli.clean()


def _serves(port: int, text: str) -> bool:
    try:
        return fetch(port).strip() == text
    except OSError:
        return False


def test_the_readme_edit_changes_what_curl_shows(
    web: StackCli, engine_registry: EngineImage
) -> None:
    port = free_port()
    options = ["--var", f"registry={engine_registry.registry.host}", "--var", f"http_port={port}"]
    applied = web.run("apply", "stack.yaml", *options)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    assert fetch(port).strip() == "hello from declarun"
    planned = web.run("plan", "stack.yaml", *options, "--var", "greeting=hi")
    assert "-/+ recreate container migrate" in planned.stdout
    edited = web.run("apply", "stack.yaml", *options, "--var", "greeting=hi")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    wait_until("the page to say hi", lambda: _serves(port, "hi"), 30)
