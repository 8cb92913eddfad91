"""The shared options reach a command as one value each: ``source`` and ``target``."""

from __future__ import annotations

from pathlib import Path

import click
from click.testing import CliRunner

from declarun.cli.options import (
    EngineTarget,
    StackSource,
    engine_options,
    parallel_option,
    stack_options,
)


def test_stack_and_engine_options_become_one_value_each(tmp_path: Path) -> None:
    seen: list[tuple[StackSource, EngineTarget, int]] = []

    @click.command()
    @click.argument("file")
    @parallel_option
    @stack_options
    @engine_options
    def command(file: str, parallel: int, source: StackSource, target: EngineTarget) -> None:
        seen.append((source, target, parallel))

    vars_file = tmp_path / "vars.yaml"
    vars_file.write_text("a: 1\n")
    args = ["stack.yaml", "--var", "mode=two", "--vars-file", str(vars_file), "--profile", "debug",
            "--host", "unix:///tmp/x.sock", "--engine", "docker"]  # fmt: skip
    result = CliRunner().invoke(command, args)
    assert result.exit_code == 0, result.output
    ((source, target, parallel),) = seen
    assert source == StackSource(("debug",), (vars_file,), {"mode": "two"})
    assert source.load_options.profiles == frozenset({"debug"})
    assert target == EngineTarget("unix:///tmp/x.sock", "docker")
    assert parallel == 4
    moved = source.with_files((), ())
    assert (moved.profiles, moved.vars_files, moved.var_overrides) == ((), (), {"mode": "two"})


def test_a_malformed_var_is_a_usage_error() -> None:
    @click.command()
    @stack_options
    def command(source: StackSource) -> None:
        raise AssertionError("not reached")

    result = CliRunner().invoke(command, ["--var", "no-equals-sign"])
    assert result.exit_code == 2
    assert "--var" in result.output
