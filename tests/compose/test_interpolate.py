"""Compose's interpolation, every form, and its Jinja translation for convert."""

from __future__ import annotations

from pathlib import Path

import pytest

from declarun.compose.interpolate import InterpolationError, substitute
from declarun.compose.jinja import escape_template, interpolation_to_jinja
from declarun.stack.template import Namespace, TemplateRenderer
from tests.compose.helpers import load, problems, warnings

ENVIRONMENTS = [{}, {"A": ""}, {"A": "a", "B": "b", "_U": "u"}]
FORMS = [
    "$A",
    "${A}",
    "${A:-default}",
    "${A-default}",
    "${A:+alt}",
    "${A+alt}",
    "x${A:-${B:-${A-z}}}y",
    "$$A and $${A} cost $5 at 100$",
    "${_U:-none}",
    "it's ${A}\\n{{ not jinja }}",
]


@pytest.mark.parametrize("environ", ENVIRONMENTS)
def test_every_form(environ: dict[str, str]) -> None:
    a = environ.get("A")
    expected = {
        "$A": a or "",
        "${A}": a or "",
        "${A:-default}": a or "default",
        "${A-default}": "default" if a is None else a,
        "${A:+alt}": "alt" if a else "",
        "${A+alt}": "" if a is None else "alt",
    }
    for text, value in expected.items():
        assert substitute(text, environ.get).text == value, text
    assert (
        substitute("$$A and $${A} cost $5 at 100$", environ.get).text
        == "$A and ${A} cost $5 at 100$"
    )


def test_required_variables_and_malformed_templates() -> None:
    with pytest.raises(InterpolationError, match="required variable A is missing a value: set A!"):
        substitute("${A:?set A!}", {"A": ""}.get)
    assert substitute("${A?must}", {"A": ""}.get).text == ""
    with pytest.raises(InterpolationError, match=r"required variable A is missing a value$"):
        substitute("${A?}", {}.get)
    for bad in ("${A", "${}", "${1A}", "${A:x}", "${A/b/c}"):
        with pytest.raises(InterpolationError):
            substitute(bad, {}.get)
    result = substitute("${A} $B ${C:-$D}", {}.get)
    assert (result.text, result.missing) == ("  ", ("A", "B", "D"))


@pytest.mark.parametrize("environ", ENVIRONMENTS)
@pytest.mark.parametrize("text", FORMS)
def test_the_jinja_translation_means_the_same(text: str, environ: dict[str, str]) -> None:
    template, _variables = interpolation_to_jinja(text)
    renderer = TemplateRenderer({"env": Namespace("env", environ)})
    assert renderer.render_value(template) == substitute(text, environ.get).text
    assert renderer.render_value(escape_template(text)) == text


def test_interpolation_in_files_is_located_and_keys_are_left_alone(tmp_path: Path) -> None:
    text = """
        services:
          web:
            image: busybox:${TAG:-1.36}
            environment:
              $KEY: value
              NEEDED: ${NEEDED:?set NEEDED first}
              MISSING: ${NOT_SET}
        """
    assert problems(tmp_path, text) == [
        "compose.yaml:6:15: services.web.environment.NEEDED: required variable NEEDED is "
        "missing a value: set NEEDED first"
    ]
    assert warnings(tmp_path, text, environ={"NEEDED": "x"}) == [
        "compose.yaml:7:16: services.web.environment.MISSING: variable NOT_SET is not set; "
        "using an empty string (as docker compose does)"
    ]
    web = load(tmp_path, text, environ={"NEEDED": "x", "TAG": "1.37"}).containers["web"]
    assert web.image == "busybox:1.37"
    assert {k: v.value for k, v in web.env.items()} == {
        "$KEY": "value",
        "NEEDED": "x",
        "MISSING": "",
    }


def test_dotenv_and_env_file_precedence(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("A=dotenv\nB=dotenv\nC=${B}-c\n")
    (tmp_path / "other.env").write_text("A=other\n")
    text = "services: {web: {image: busybox, environment: {A: $A, B: $B, C: $C, D: null}}}\n"
    env = {
        k: v.value
        for k, v in load(tmp_path, text, environ={"B": "shell"}).containers["web"].env.items()
    }
    assert env == {"A": "dotenv", "B": "shell", "C": "shell-c"}
    chosen = load(tmp_path, text, env_files=[tmp_path / "other.env"], environ={"D": "d"})
    assert {k: v.value for k, v in chosen.containers["web"].env.items()} == {
        "A": "other",
        "B": "",
        "C": "",
        "D": "d",
    }
    assert problems(tmp_path, text, env_files=[tmp_path / "nope.env"])[0].endswith(
        "cannot read env file 'nope.env': No such file or directory"
    )
