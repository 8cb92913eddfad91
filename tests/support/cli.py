"""Running ``declarun`` as a person does, against a test engine, in a stack's directory.

:class:`StackCli` writes a stack file (any text, ``{name}`` and ``{image}`` filled in), runs
``python -m declarun ...`` with ``--host`` pointing at the engine (and ``DECLARUN_HOST`` too, so
no mistake can ever autostart the machine's default daemon), and cleans up the stack's objects
afterwards (:meth:`StackCli.clean`).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import docker.errors

from tests.support.engine_fixtures import Engine
from tests.support.stacks import unique_stack

__all__ = ["StackCli"]

# Rounds of removing the stack's containers, then its networks and volumes (see clean).
_CLEAN_ROUNDS = 5


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
        """Remove whatever the stack left on the engine (containers, networks, volumes).

        A test that interrupts ``declarun`` (Ctrl-C of ``watch`` or ``apply``) may leave a
        request in flight: the engine can still create that container after the command
        ended and after the containers were listed here. A network or volume then refused
        as in use names it; so the containers are listed and removed again before the next
        try (a bounded number of rounds: a conflict that stays is the test's failure).
        """
        api = self.engine.client.api
        label = {"label": f"dev.declarun.stack={self.name}"}
        for last_round in range(_CLEAN_ROUNDS, 0, -1):
            for container in api.containers(all=True, filters=label):
                with contextlib.suppress(docker.errors.NotFound):  # an auto-remove was first
                    api.remove_container(container["Id"], force=True, v=True)
            try:
                for network in api.networks(filters=label):
                    api.remove_network(network["Id"])
                for volume in api.volumes(filters=label).get("Volumes") or ():
                    api.remove_volume(volume["Name"])
                return
            except docker.errors.APIError as exc:
                if exc.status_code != 409 or last_round == 1:
                    raise
