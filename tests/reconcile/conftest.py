"""Fixtures of the reconciler tests: a real dockerd with a busybox image in a local registry."""

from __future__ import annotations

from tests.support.engine_fixtures import docker_engine

__all__ = ["docker_engine"]
