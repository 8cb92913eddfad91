"""Templating of single scalars: types kept for lone expressions, named undefined variables."""

from __future__ import annotations

from typing import Any

import pytest

from declarun.errors import Problem, SourceLocation
from declarun.stack.template import Namespace, TemplateRenderer, has_template

CONTEXT = {
    "vars": Namespace("vars", {"n": 3, "tag": "1.10", "cmd": ["sh", "-c", "true"], "on": True}),
    "env": Namespace("env", {"HOME": "/home/me"}),
}


def render(value: Any) -> tuple[Any, list[str]]:
    problems: list[Problem] = []
    out = TemplateRenderer(CONTEXT).render_tree(
        value, lambda path: SourceLocation("s.yaml", 7, len(path)), problems
    )
    return out, [str(p) for p in problems]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ vars.n }}", 3),
        (" {{ vars.n * 2 }} ", 6),
        ("{{ vars.tag }}", "1.10"),
        ("busybox:{{ vars.tag }}", "busybox:1.10"),
        ("{{ vars.cmd }}", ["sh", "-c", "true"]),
        ("{{ vars.on }}", True),
        ("{{ env.HOME }}/data", "/home/me/data"),
        ("{{ vars.tag | upper }}-{{ vars.n }}", "1.10-3"),
        ("{{ vars.missing | default('x') }}", "x"),
        ("{% if vars.on %}yes{% endif %}", "yes"),
        ("no templates here", "no templates here"),
    ],
)
def test_rendering(text: str, expected: Any) -> None:
    out, problems = render({"a": text})
    assert problems == []
    assert out == {"a": expected}


def test_undefined_variable_is_named_and_located() -> None:
    out, problems = render({"containers": {"web": {"image": "app:{{ vars.version }}"}}})
    assert problems == ["s.yaml:7:3: containers.web.image: undefined variable 'vars.version'"]
    assert out["containers"]["web"]["image"] == "app:{{ vars.version }}"


def test_every_bad_template_is_reported() -> None:
    _, problems = render(["{{ vars.a }}", "{{ nope }}", "{{ vars.n +  }}", "{{ env.X }}"])
    assert problems == [
        "s.yaml:7:1: [0]: undefined variable 'vars.a'",
        "s.yaml:7:1: [1]: undefined variable 'nope'",
        "s.yaml:7:1: [2]: template syntax error: unexpected 'end of template'",
        "s.yaml:7:1: [3]: undefined variable 'env.X'",
    ]


def test_sandbox_blocks_python_internals() -> None:
    out, problems = render({"a": "{{ ().__class__.__base__.__subclasses__() }}"})
    assert out == {"a": "{{ ().__class__.__base__.__subclasses__() }}"}
    assert problems == [
        "s.yaml:7:1: a: template not allowed: tuple value has no attribute or key '__class__'"
    ]


def test_has_template() -> None:
    assert has_template("a {{ b }}") and has_template("{% x %}") and has_template("{# c #}")
    assert not has_template("plain { braces }")
