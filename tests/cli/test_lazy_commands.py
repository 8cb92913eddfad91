"""Start-up: commands are registered by name and import only what they use (issue 16).

Structural, never timed: each command named in ``declarun.cli.main.COMMANDS`` is the command
of that name and answers ``--help``; ``declarun --version`` and ``declarun validate`` of the
web example run in a fresh interpreter, and the heavy libraries other commands need are
asserted absent from ``sys.modules`` afterwards.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from declarun.cli.main import COMMANDS, cli

ROOT = Path(__file__).parents[2]
WEB = ROOT / "examples" / "web" / "stack.yaml"

# Libraries that only some commands need: the engine client (docker-py, requests), the live
# display (rich), the explanation of an invalid stack (jsonschema), graphs (networkx) and the
# daemon (aiohttp).
ENGINE_AND_DISPLAY = ("docker", "requests", "rich", "jsonschema", "networkx", "aiohttp")

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


def _loaded_by(*args: str) -> set[str]:
    environment = {**os.environ, "NO_COLOR": "1"}
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert "Traceback" not in done.stderr, done.stderr
    report = json.loads(done.stdout.splitlines()[-1])
    assert report["code"] in (0, None), done.stdout + done.stderr
    return set(report["modules"])


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
