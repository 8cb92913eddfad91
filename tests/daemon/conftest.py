"""Shared fixtures for daemon tests: real registries and a busybox image pushed into them.

All are session-scoped (a registry starts in well under a second, but every test module
reuses the same ones) and clean up after themselves:

``registry``
    An open CNCF distribution registry on ``127.0.0.1:<port>`` (``RunningRegistry``;
    ``registry.host`` is the domain for image references).
``auth_registry``
    The same with htpasswd Basic auth; ``auth_registry.username``/``.password`` are the
    valid credentials (``AUTH_USER``/``AUTH_PASSWORD``).
``busybox_image``
    An OCI layout of busybox (``OciImage``: layout dir, manifest, config, layers).
``busybox_image_pushed``
    ``busybox_image`` pushed by skopeo to ``registry`` as ``busybox:test``
    (``PushedImage``; ``.reference`` is ``127.0.0.1:<port>/busybox:test``).
``busybox_index_pushed``
    A linux/amd64 + linux/arm64/v8 index pushed with ``skopeo --all`` to ``registry`` as
    ``busybox-multi:test`` (``PushedIndex``).
``auth_busybox_pushed``
    ``busybox_image`` pushed to ``auth_registry`` as ``private/busybox:test``.

Tests that need these skip (with the reason) when docker-registry or skopeo is missing.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.images import (
    OciImage,
    OciIndex,
    build_busybox_layout,
    build_multiplatform_layout,
    skopeo_push,
)
from tests.support.registry import REGISTRY_BINARY, RunningRegistry, run_registry

AUTH_USER = "declarun"
AUTH_PASSWORD = "s3cret-test-pass"


@dataclass(frozen=True)
class PushedImage:
    """An image present in a test registry: where it is and what it holds."""

    registry: RunningRegistry
    repository: str
    tag: str
    image: OciImage

    @property
    def reference(self) -> str:
        """``127.0.0.1:<port>/<repository>:<tag>``."""
        return f"{self.registry.host}/{self.repository}:{self.tag}"


@dataclass(frozen=True)
class PushedIndex:
    """A multi-platform index present in a test registry."""

    registry: RunningRegistry
    repository: str
    tag: str
    index: OciIndex

    @property
    def reference(self) -> str:
        """``127.0.0.1:<port>/<repository>:<tag>``."""
        return f"{self.registry.host}/{self.repository}:{self.tag}"


def _need(program: str) -> None:
    if shutil.which(program) is None and not Path(program).exists():
        pytest.skip(f"{program} is not installed (see scripts/install-deps.sh)")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """An open distribution registry on a loopback port."""
    _need(REGISTRY_BINARY)
    with run_registry(tmp_path_factory.mktemp("registry")) as running:
        yield running


@pytest.fixture(scope="session")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningRegistry]:
    """A distribution registry requiring htpasswd Basic auth (AUTH_USER/AUTH_PASSWORD)."""
    _need(REGISTRY_BINARY)
    _need("htpasswd")
    with run_registry(
        tmp_path_factory.mktemp("auth-registry"), credentials=(AUTH_USER, AUTH_PASSWORD)
    ) as running:
        yield running


@pytest.fixture(scope="session")
def busybox_image(tmp_path_factory: pytest.TempPathFactory) -> OciImage:
    """A busybox OCI image layout (tag ``test``) with one extra small layer."""
    if not Path("/bin/busybox").exists():
        pytest.skip("/bin/busybox is missing (Debian package busybox-static)")
    return build_busybox_layout(
        tmp_path_factory.mktemp("busybox-layout"), tag="test", extra_layers=1
    )


@pytest.fixture(scope="session")
def busybox_image_pushed(registry: RunningRegistry, busybox_image: OciImage) -> PushedImage:
    """``busybox_image`` in ``registry`` as ``busybox:test`` (pushed by skopeo)."""
    _need("skopeo")
    skopeo_push(busybox_image.layout, registry, "busybox:test", tag=busybox_image.tag)
    return PushedImage(registry, "busybox", "test", busybox_image)


@pytest.fixture(scope="session")
def busybox_index_pushed(
    registry: RunningRegistry, tmp_path_factory: pytest.TempPathFactory
) -> PushedIndex:
    """A two-platform busybox index in ``registry`` as ``busybox-multi:test``."""
    _need("skopeo")
    index = build_multiplatform_layout(tmp_path_factory.mktemp("busybox-multi"), tag="test")
    skopeo_push(index.layout, registry, "busybox-multi:test", tag="test", all_platforms=True)
    return PushedIndex(registry, "busybox-multi", "test", index)


@pytest.fixture(scope="session")
def auth_busybox_pushed(auth_registry: RunningRegistry, busybox_image: OciImage) -> PushedImage:
    """``busybox_image`` in ``auth_registry`` as ``private/busybox:test``."""
    _need("skopeo")
    skopeo_push(busybox_image.layout, auth_registry, "private/busybox:test", tag="test")
    return PushedImage(auth_registry, "private/busybox", "test", busybox_image)
