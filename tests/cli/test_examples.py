"""The bundled web example does what the README says, on each engine: it builds its front
end's image, serves the greeting, after ``--var greeting=hi`` the page says hi, and an edit
of the front end's script is named in the plan and rebuilds and recreates only ``web``."""

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

WEB = Path(__file__).parents[2] / "examples" / "web"


@pytest.fixture
def web(engine: Engine, engine_registry: EngineImage, tmp_path: Path) -> Iterator[StackCli]:
    # The example's image, in the test registry under the name the example uses.
    skopeo_push(engine_registry.oci.layout, engine_registry.registry, "declarun/busybox:1.35")
    shutil.copytree(WEB, tmp_path / "web")
    cli = StackCli(engine, tmp_path / "web", "")
    shutil.copy(WEB / "stack.yaml", cli.path)
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
    assert "* build image web" in applied.stdout
    assert fetch(port).strip() == "hello from declarun"
    planned = web.run("plan", "stack.yaml", *options, "--var", "greeting=hi")
    assert "-/+ recreate container migrate" in planned.stdout
    edited = web.run("apply", "stack.yaml", *options, "--var", "greeting=hi")
    assert edited.returncode == 0, edited.stdout + edited.stderr
    wait_until("the page to say hi", lambda: _serves(port, "hi"), 30)


def test_an_edit_of_the_front_end_rebuilds_and_recreates_only_web(
    web: StackCli, engine_registry: EngineImage
) -> None:
    port = free_port()
    options = ["--var", f"registry={engine_registry.registry.host}", "--var", f"http_port={port}"]
    applied = web.run("apply", "stack.yaml", *options)
    assert applied.returncode == 0, applied.stdout + applied.stderr
    script = web.tmp / "web" / "serve.sh"
    script.write_text(script.read_text().replace("sleep 1", "sleep 2"))
    planned = web.run("plan", "stack.yaml", *options)
    assert planned.returncode == 2, planned.stdout + planned.stderr
    assert "1 file changed in the build context: serve.sh" in planned.stdout
    assert "-/+ recreate container web" in planned.stdout
    assert "container migrate" not in planned.stdout and "container store" not in planned.stdout
    rebuilt = web.run("apply", "stack.yaml", *options)
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    wait_until("the page again", lambda: _serves(port, "hello from declarun"), 30)
    assert web.run("plan", "stack.yaml", *options).returncode == 0
