"""Errors that say what to do, on each engine: a host port held by another process (named,
once, with nothing left half made), a tag the repository does not have, a registry that
does not answer."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.cli import StackCli
from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port

ONE = """\
stack: {name}
containers:
  web:
    image: {ref}
    command: ["sleep", "3600"]
{ports}"""


@pytest.fixture
def make(engine: Engine, tmp_path: Path) -> Iterator[list[StackCli]]:
    made: list[StackCli] = []
    yield made
    for cli in made:
        cli.clean()


def _stack(
    engine: Engine, tmp_path: Path, made: list[StackCli], ref: str, ports: str = ""
) -> StackCli:
    cli = StackCli(engine, tmp_path, ONE.replace("{ref}", ref).replace("{ports}", ports))
    made.append(cli)
    return cli


def test_a_host_port_in_use_names_the_port_and_its_holder_once(
    engine: Engine, tmp_path: Path, make: list[StackCli]
) -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        cli = _stack(engine, tmp_path, make, engine.image, f"    ports: ['127.0.0.1:{port}:80']\n")
        applied = cli.run("apply", "stack.yaml")
    assert applied.returncode == 1
    said = f"host port 127.0.0.1:{port}/tcp is already in use (held by pid {os.getpid()}: "
    assert applied.stdout.count(said) == 1, applied.stdout
    assert "stop what holds it, or publish another host port" in applied.stdout
    assert cli.inspect("web") is None  # the container that could not start is not left behind


def test_a_missing_tag_says_so(engine: Engine, tmp_path: Path, make: list[StackCli]) -> None:
    repository = engine.image.rsplit(":", 1)[0]
    cli = _stack(engine, tmp_path, make, f"{repository}:tset")
    applied = cli.run("apply", "stack.yaml")
    assert applied.returncode == 1
    assert f"the tag 'tset' is not in repository {repository}" in applied.stdout
    if engine.kind == "declarund":  # it asks the registry for the repository's tags
        assert "(close tags: test)" in applied.stdout


def test_an_unreachable_registry_names_the_url_and_the_cause(
    engine: Engine, tmp_path: Path, make: list[StackCli]
) -> None:
    port = free_port()
    cli = _stack(engine, tmp_path, make, f"127.0.0.1:{port}/team/app:1")
    applied = cli.run("apply", "stack.yaml")
    assert applied.returncode == 1
    assert f"127.0.0.1:{port}/v2/" in applied.stdout
    assert "connection refused" in applied.stdout
    assert "ssl:" not in applied.stdout
