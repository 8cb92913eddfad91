"""declarun convert: the stack file it writes plans exactly as the Compose project does."""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from declarun.compose.convert import convert_project
from declarun.compose.pipeline import load_compose
from declarun.compose.project import ComposeOptions
from declarun.plan.diff import diff
from declarun.plan.identity import is_secret_key
from declarun.plan.observed import ObservedState
from declarun.stack.pipeline import LoadOptions, load_stack
from tests.compose.helpers import CORPUS, project

ENVIRON = {
    "REGISTRY": "127.0.0.1:5000",
    "TAG": "test",
    "GREETING": "hello",
    "BOTH": "from the environment",
    "DB_PASSWORD": "s3cret",
    "HOME": "/root",
}
ALL_PROFILES = frozenset({"debug", "tools"})
PROJECTS = sorted(p.name for p in CORPUS.iterdir() if (p / "compose.yaml").is_file())


def _round_trip(directory: Path, environ: dict[str, str]) -> None:
    options = ComposeOptions(project_name="corpus", environ=environ, profiles=ALL_PROFILES)
    original = load_compose(directory / "compose.yaml", options)
    converted = convert_project(original, directory, is_secret_key)
    target = directory / "stack.yaml"
    target.write_text(converted.text, encoding="utf-8")
    # The variables the stack file reads stay references; give the values Compose used.
    needed = {name: original.environment.lookup(name) or "" for name in converted.variables}
    stack = load_stack(target, LoadOptions(environ={**environ, **needed}, profiles=ALL_PROFILES))
    assert replace(stack, source_file=original.stack.source_file) == original.stack
    observed = ObservedState(stack="corpus")
    assert (
        diff(stack, observed, created_at="t").to_data()
        == diff(original.stack, observed, created_at="t").to_data()
    )


@pytest.mark.parametrize("name", PROJECTS)
def test_converted_corpus_plans_as_the_compose_project(name: str, tmp_path: Path) -> None:
    shutil.copytree(CORPUS / name, tmp_path / name)
    _round_trip(tmp_path / name, ENVIRON)


def test_secrets_stay_references_and_the_rest_reads_well(tmp_path: Path) -> None:
    shutil.copytree(CORPUS / "webapp", tmp_path / "webapp")
    loaded = load_compose(tmp_path / "webapp" / "compose.yaml", ComposeOptions(environ=ENVIRON))
    text = convert_project(loaded, tmp_path / "webapp", is_secret_key).text
    assert "s3cret" not in text
    data = yaml.safe_load(text)
    assert data["stack"] == "webapp"
    env = data["containers"]["db"]["env"]
    assert env["POSTGRES_PASSWORD"] == "{{ env.DB_PASSWORD | default('devpassword', true) }}"
    assert data["containers"]["web"]["env"]["DATABASE_URL"].startswith(
        "{{ 'postgres://app:' ~ (env.DB_PASSWORD"
    )
    assert data["containers"]["web"]["volumes"] == ["./site:/www:ro", "uploads:/srv/uploads"]
    assert "# was ${REGISTRY:-docker.io/library}/busybox:${TAG:-1.36}" in text
    assert "# Set these in the environment before using this file: DB_PASSWORD" in text


def test_unsupported_fields_and_changed_meanings_become_comments(tmp_path: Path) -> None:
    loaded = project(
        tmp_path,
        """
        services:
          web:
            image: busybox
            privileged: true
            container_name: www
            command: echo '{{ not a template }}'
            environment: [TOKEN]
        """,
        environ={"TOKEN": "abc"},
    )
    text = convert_project(loaded, tmp_path, is_secret_key).text
    assert "  # services.web.privileged: not supported, ignored:" in text
    assert "container_name 'www' is a network alias here" in text
    assert yaml.safe_load(text)["containers"]["web"]["command"].startswith("{{ 'echo")
    assert "TOKEN: '{{ env.TOKEN }}'" in text
    _round_trip_text(tmp_path, text, {"TOKEN": "abc"}, loaded.stack)


def _round_trip_text(directory: Path, text: str, environ: dict[str, str], expected: object) -> None:
    target = directory / "stack.yaml"
    target.write_text(text)
    stack = load_stack(target, LoadOptions(environ=environ))
    assert replace(stack, source_file=Path("compose.yaml")) == replace(
        expected,  # type: ignore[type-var]
        source_file=Path("compose.yaml"),
    )


def test_flow_lists_quote_what_the_flow_context_needs(tmp_path: Path) -> None:
    loaded = project(
        tmp_path,
        """
        services:
          web:
            image: busybox
            command: ["sh", "-c", "echo a, b: [c] # d", "it's", "80", "yes", ""]
            cap_add: [NET_ADMIN]
        """,
    )
    text = convert_project(loaded, tmp_path, is_secret_key).text
    assert "    cap_add: [NET_ADMIN]\n" in text
    _round_trip_text(tmp_path, text, {}, loaded.stack)
