"""Declared, typed variables: values given on the command line arrive converted, undeclared
keys are refused unless the stack allows them (the refusals' wording is in golden/)."""

from __future__ import annotations

from pathlib import Path

import pytest

from declarun.errors import StackError
from declarun.stack.pipeline import LoadOptions, load_stack
from declarun.stack.variables import convert

STACK = """\
stack: vars
vars:
  port: 8080
  debug: false
  tags: [a]
  replicas: {type: int, default: 1, description: how many}
  name: {type: string}
containers:
  web:
    image: busybox
    command: ["echo", "{{ vars.port + 1 }}", "{{ 'on' if vars.debug else 'off' }}",
              "{{ vars.tags | join('+') }}", "{{ vars.name }}"]
    replicas: "{{ vars.replicas }}"
"""


def _load(tmp_path: Path, text: str = STACK, **overrides: str) -> list[str]:
    path = tmp_path / "stack.yaml"
    path.write_text(text)
    stack = load_stack(path, LoadOptions(environ={}, var_overrides=overrides))
    web = stack.containers["web"]
    return [*(web.command or ()), str(web.replicas)]


def test_given_values_take_the_declared_type(tmp_path: Path) -> None:
    assert _load(tmp_path, name="x") == ["echo", "8081", "off", "a", "x", "1"]
    given = _load(tmp_path, port="9000", debug="yes", tags="b,c", replicas="3", name="y")
    assert given == ["echo", "9001", "on", "b+c", "y", "3"]
    assert _load(tmp_path, tags="[d, e]", name="z")[3] == "d+e"


def test_undeclared_keys_are_refused_unless_the_stack_allows_them(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="does not declare"):
        _load(tmp_path, name="x", extra="1")
    allowing = STACK.replace("vars:\n", "allow_undeclared_vars: true\nvars:\n", 1)
    assert _load(tmp_path, allowing, name="x", extra="1")[1] == "8081"


@pytest.mark.parametrize(
    ("value", "wanted", "expected"),
    [
        ("42", "int", 42),
        (" -3 ", "int", -3),
        (7, "string", "7"),
        (True, "string", "true"),
        ("Off", "bool", False),
        ("1", "bool", True),
        ("", "list", []),
        ("a, b", "list", ["a", "b"]),
        ({"k": 1}, "any", {"k": 1}),
    ],
)
def test_conversions(value: object, wanted: str, expected: object) -> None:
    assert convert(value, wanted) == expected  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("value", "wanted"), [("4.5", "int"), (True, "int"), ("maybe", "bool"), ({}, "list")]
)
def test_values_that_do_not_fit_are_refused(value: object, wanted: str) -> None:
    with pytest.raises(ValueError, match="expected"):
        convert(value, wanted)  # type: ignore[arg-type]
