"""Start-up: commands are registered by name and import only what they use (issue 16).

Structural, never timed: each command named in ``declarun.cli.main.COMMANDS`` is the command
of that name and answers ``--help``; ``declarun --version`` and ``declarun validate`` of the
web example run in a fresh interpreter, and the heavy libraries other commands need are
asserted absent from ``sys.modules`` afterwards. So are a ``plan`` and an ``apply`` with
nothing to do, on both engines: they read the engine without docker-py (or requests) and print
without rich.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from declarun.cli.main import COMMANDS, cli
from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine

ROOT = Path(__file__).parents[2]
WEB = ROOT / "examples" / "web" / "stack.yaml"

# Libraries that only some commands need: the engine client (docker-py, requests), the live
# display (rich), the explanation of an invalid stack (jsonschema), graphs (networkx) and the
# daemon (aiohttp).
ENGINE_AND_DISPLAY = ("docker", "requests", "rich", "jsonschema", "networkx", "aiohttp")
# What a plan or apply with nothing to do must not load: docker-py and its HTTP stack, the
# live display, and Jinja for a stack without templates.
NOT_FOR_A_NO_OP = (*ENGINE_AND_DISPLAY, "urllib3", "jinja2")

# Runs the CLI's entry point as the console script does, then prints the top-level packages
# loaded. stdout carries the command's own output first, the JSON list on the last line.
_PROBE = """
import json, sys
sys.argv = ["declarun", *sys.argv[1:]]
from declarun.cli.main import main
try:
    main()
except SystemExit as exc:
    code = exc.code
sys.stdout.flush()
print()
print(json.dumps({"code": code, "modules": sorted({m.split(".")[0] for m in sys.modules})}))
"""


def _run_probe(
    *args: str, cwd: Path | None = None, host: str | None = None
) -> tuple[set[str], str]:
    """The top-level packages ``declarun ARGS`` loaded, and its standard output."""
    environment = {**os.environ, "NO_COLOR": "1"}
    if host is not None:
        environment["DECLARUN_HOST"] = host
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
        cwd=cwd,
    )
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    return set(report["modules"]), done.stdout


def _loaded_by(*args: str) -> set[str]:
    return _run_probe(*args)[0]


def test_every_registered_command_is_the_command_of_its_name() -> None:
    for name, (module, attribute) in COMMANDS.items():
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command)
        assert command.name == name


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(cli, ["--help"])
    assert result.exit_code == 0, result.output
    listed = {
        line.split()[0] for line in result.output.split("Commands:")[1].splitlines() if line.strip()
    }
    assert listed == set(COMMANDS)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_command_answers_help(name: str) -> None:
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"Usage: cli {name}" in result.output


def test_an_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["no-such-command"])
    assert result.exit_code == 2
    assert "No such command 'no-such-command'" in result.output


def test_version_imports_no_heavy_library() -> None:
    loaded = _loaded_by("--version")
    assert not loaded & {*ENGINE_AND_DISPLAY, "yaml", "jinja2", "fastjsonschema"}


def test_validate_imports_only_the_stack_language() -> None:
    loaded = _loaded_by("validate", str(WEB))
    assert "yaml" in loaded  # the probe did run the command
    assert not loaded & set(ENGINE_AND_DISPLAY)


# Its network has a subnet of its own: the default address pools are shared with every
# other engine on this machine and may all be taken.
NO_OP_STACK = """
stack: {name}
networks:
  default: {{subnet: {subnet}}}
volumes:
  data: {{}}
containers:
  web:
    image: {image}
    command: ["sleep", "600"]
    volumes: ["data:/data"]
"""


@pytest.fixture
def applied(engine: Engine, tmp_path: Path) -> Iterator[StackCli]:
    """A stack applied on ``engine`` (a network, a volume, a running container)."""
    subnet = f"10.{random.randrange(160, 250)}.{random.randrange(256)}.0/24"
    stack = StackCli(engine, tmp_path, NO_OP_STACK.replace("{subnet}", subnet))
    try:
        done = stack.run("apply", "stack.yaml", "--yes")
        assert done.returncode == 0, done.stdout + done.stderr
        yield stack
    finally:
        stack.clean()


@pytest.mark.parametrize("command", [("plan",), ("apply", "--yes")], ids=["plan", "apply"])
def test_a_no_op_reads_the_engine_without_docker_py_and_prints_without_rich(
    applied: StackCli, command: tuple[str, ...]
) -> None:
    host = applied.engine.host
    loaded, output = _run_probe(
        command[0], "stack.yaml", "--host", host, *command[1:], cwd=applied.tmp, host=host
    )
    assert "No changes. The machine matches the stack." in output
    assert "click" in loaded  # the probe did run the command
    assert not loaded & set(NOT_FOR_A_NO_OP)
