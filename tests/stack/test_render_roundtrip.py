"""``render`` writes a stack file: for the examples and for fuzzed stacks, what it writes
validates cleanly, loads back to the same stack, and plans exactly the same."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings

from declarun.errors import StackError
from declarun.plan.diff import diff
from declarun.plan.observed import ObservedState
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack
from declarun.stack.render import stack_to_file
from tests.stack.test_normalize_fuzz import DOC, VALIDATOR

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*/stack.yaml"))
OPTIONS = LoadOptions(environ={"USER": "someone", "HOME": "/root"})


def _write(path: Path, data: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
    return path


def _plan_data(stack: Stack) -> dict[str, Any]:
    data: dict[str, Any] = diff(stack, ObservedState(stack=stack.name), created_at="t").to_data()
    return data


def _round_trip(stack: Stack, directory: Path) -> None:
    rendered = _write(directory / "rendered.yaml", stack_to_file(stack, reveal_secrets=True))
    again = load_stack(rendered, OPTIONS)  # raises StackError if it is not a valid stack file
    assert replace(again, source_file=stack.source_file) == stack
    assert _plan_data(again) == _plan_data(stack)
    # And rendering is a fixed point: the second rendering is the first.
    assert stack_to_file(again, reveal_secrets=True) == stack_to_file(stack, reveal_secrets=True)


@pytest.mark.parametrize("example", EXAMPLES, ids=[p.parent.name for p in EXAMPLES])
def test_examples_render_to_stack_files_that_plan_the_same(example: Path, tmp_path: Path) -> None:
    _round_trip(load_stack(example, OPTIONS), tmp_path)


def test_secrets_are_masked_unless_revealed_and_the_output_still_validates(
    tmp_path: Path,
) -> None:
    source = tmp_path / "stack.yaml"
    source.write_text(
        "stack: s\ncontainers:\n  web:\n    image: busybox\n"
        "    env: {TOKEN: {value: hunter2, secret: true}, TEXT: '{% raw %}{{ x }}{% endraw %}'}\n"
    )
    stack = load_stack(source, OPTIONS)
    masked = stack_to_file(stack)
    assert masked["containers"]["web"]["env"]["TOKEN"] == {"value": "***", "secret": True}
    assert "hunter2" not in yaml.safe_dump(masked)
    load_stack(_write(tmp_path / "masked.yaml", masked), OPTIONS)
    _round_trip(stack, tmp_path)  # "{{ x }}" survives as text


@settings(
    max_examples=300,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
@given(DOC)
def test_fuzzed_stacks_render_to_stack_files_that_plan_the_same(doc: dict[str, Any]) -> None:
    assume(VALIDATOR.is_valid(doc))
    with tempfile.TemporaryDirectory() as directory:
        source = _write(Path(directory) / "stack.yaml", doc)
        try:
            stack = load_stack(source, OPTIONS)
        except StackError:
            assume(False)
            return
        _round_trip(stack, Path(directory))
