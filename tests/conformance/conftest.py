"""The two engines side by side, each with a docker-py low-level client at API 1.41.

``pair`` (module scope over the session's engines) pulls the test busybox into both and
hands both clients; every test names its objects with :func:`unique` and removes them
itself, so the session daemons stay clean for the other test packages.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import docker
import pytest

from tests.support.conformance import API_VERSION
from tests.support.engine_fixtures import Engine

__all__ = ["Pair", "Side", "pair", "unique"]


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class Side:
    """One engine: its kind, its :class:`Engine` and a low-level docker-py client."""

    kind: str
    engine: Engine
    api: Any
    cleanups: list[Callable[[], Any]]

    @property
    def image(self) -> str:
        """The busybox reference both engines pulled."""
        return self.engine.image

    def later(self, cleanup: Callable[[], Any]) -> None:
        """Run ``cleanup`` when the test ends (last registered first)."""
        self.cleanups.append(cleanup)

    def clean_up(self) -> None:
        """Run the cleanups registered so far now (last registered first)."""
        while self.cleanups:
            with contextlib.suppress(docker.errors.APIError):
                self.cleanups.pop()()

    def container(self, command: list[str], **kwargs: Any) -> str:
        """A created container of the busybox image, removed (with its volumes) afterwards."""
        cid: str = self.api.create_container(self.image, command, **kwargs)["Id"]
        self.later(lambda: self.api.remove_container(cid, force=True, v=True))
        return cid

    def network(self, name: str, **kwargs: Any) -> str:
        """A user network removed afterwards (after the containers on it)."""
        nid: str = self.api.create_network(name, **kwargs)["Id"]
        self.cleanups.insert(0, lambda: self.api.remove_network(nid))
        return nid


@dataclass
class Pair:
    """declarund and dockerd; ``both`` in that order."""

    declarund: Side
    dockerd: Side

    @property
    def both(self) -> tuple[Side, Side]:
        """The two sides, declarund first."""
        return self.declarund, self.dockerd


def _side(kind: str, engine: Engine) -> Side:
    api = docker.APIClient(base_url=engine.host, version=API_VERSION, timeout=120)
    api.pull(engine.image)
    return Side(kind, engine, api, [])


@pytest.fixture
def pair(declarund_engine: Engine, dockerd_engine: Engine) -> Iterator[Pair]:
    """Both engines, each test's objects removed afterwards."""
    sides = Pair(_side("declarund", declarund_engine), _side("dockerd", dockerd_engine))
    try:
        yield sides
    finally:
        for side in sides.both:
            side.clean_up()
            side.api.close()
