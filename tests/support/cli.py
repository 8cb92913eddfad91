"""Running ``declarun`` as a person does, against a test engine, in a stack's directory.

:class:`StackCli` writes a stack file (any text, ``{name}`` and ``{image}`` filled in), runs
``python -m declarun ...`` with ``--host`` pointing at the engine (and ``DECLARUN_HOST`` too, so
no mistake can ever autostart the machine's default daemon), and cleans up the stack's objects
afterwards (:meth:`StackCli.clean`).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker.errors

from tests.support.engine_fixtures import Engine
from tests.support.stacks import unique_stack

__all__ = ["StackCli"]


class StackCli:
    """One test's stack file and the ``declarun`` command run on it."""

    def __init__(self, engine: Engine, tmp: Path, text: str, *, file: str = "stack.yaml") -> None:
        self.engine = engine
        self.tmp = tmp
        self.name = unique_stack("h")
        self.file = file
        self.path = tmp / file
        self.write(text)

    def write(self, text: str, **values: Any) -> None:
        """(Re)write the stack file from ``text`` with ``{name}``, ``{image}`` and ``values``."""
        self.path.write_text(text.format(name=self.name, image=self.engine.image, **values))

    def command(self, subcommand: str, *args: str) -> list[str]:
        """The argv of ``declarun SUBCOMMAND --host ... ARGS`` (``--host`` before any ``--``)."""
        return [sys.executable, "-m", "declarun", subcommand, "--host", self.engine.host, *args]

    def env(self, **extra: str) -> dict[str, str]:
        """The environment the command runs in: no colour, wide tables, the test engine."""
        return {
            **os.environ,
            "NO_COLOR": "1",
            "COLUMNS": "200",
            "DECLARUN_HOST": self.engine.host,
            **extra,
        }

    def run(
        self, subcommand: str, *args: str, input: str | None = None, timeout: float = 300
    ) -> subprocess.CompletedProcess[str]:
        """Run it to the end; never a traceback."""
        done = subprocess.run(
            self.command(subcommand, *args),
            capture_output=True,
            text=True,
            check=False,
            cwd=self.tmp,
            env=self.env(),
            input=input,
            timeout=timeout,
        )
        assert "Traceback" not in done.stderr, done.stderr
        return done

    def popen(self, subcommand: str, *args: str) -> subprocess.Popen[str]:
        """Start it in the background, output piped."""
        return subprocess.Popen(
            self.command(subcommand, *args),
            cwd=self.tmp,
            env=self.env(),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def inspect(self, container: str) -> dict[str, Any] | None:
        """``docker inspect`` of the stack's container, or None when there is none."""
        try:
            found: dict[str, Any] = self.engine.client.api.inspect_container(
                f"{self.name}-{container}"
            )
        except docker.errors.NotFound:
            return None
        return found

    def clean(self) -> None:
        """Remove whatever the stack left on the engine (containers, networks, volumes)."""
        api = self.engine.client.api
        label = {"label": f"dev.declarun.stack={self.name}"}
        for container in api.containers(all=True, filters=label):
            api.remove_container(container["Id"], force=True, v=True)
        for network in api.networks(filters=label):
            api.remove_network(network["Id"])
        for volume in api.volumes(filters=label).get("Volumes") or ():
            api.remove_volume(volume["Name"])
