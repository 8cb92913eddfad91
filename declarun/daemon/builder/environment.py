"""What a build runs with: the daemon's services (:class:`BuildEnv`, shared by every build)
and one build's own state (:class:`BuildRequestState`: its options, output, directories,
lease, ``SOURCE_DATE_EPOCH``, base images and HTTP session)."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import aiohttp

from declarun.daemon.builder.bases import BaseImages
from declarun.daemon.builder.cachemounts import CacheMounts
from declarun.daemon.builder.options import BuildOptions
from declarun.daemon.builder.output import BuildOutput
from declarun.daemon.builder.roots import FactMemo
from declarun.daemon.builder.uppercopy import LinkedInodes
from declarun.daemon.builder.workspace import BuildDirs
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.images.platform import Platform as ImagePlatform
from declarun.daemon.images.service import ImageService
from declarun.dockerfile import Platform

__all__ = ["BuildEnv", "BuildRequestState", "image_platform"]


def image_platform(platform: Platform) -> ImagePlatform:
    """The frontend's platform as the image store spells it."""
    return ImagePlatform(platform.os, platform.architecture, platform.variant or None)


@dataclass(frozen=True)
class BuildEnv:
    """The daemon's parts every build uses."""

    images: ImageService
    containers: ContainerService
    cache_mounts: CacheMounts
    #: Answers about image filesystems, remembered between builds.
    facts: FactMemo
    #: The most an ``ADD <url>`` may download.
    max_download_bytes: int


@dataclass(frozen=True)
class BuildRequestState:
    """One build's own state (see the module docstring)."""

    options: BuildOptions
    output: BuildOutput
    dirs: BuildDirs
    lease_id: str
    epoch: int | None
    bases: BaseImages
    http: aiohttp.ClientSession
    #: The SHA-256 of a file of the context, when the received tar's index has it.
    known_digest: Callable[[Path], str | None]
    #: A digest of everything the context holds (paths, types, modes, owners, contents).
    context_fingerprint: Callable[[], str]
    #: Source files this build has hard-linked into a layer (each is linked once).
    linked: LinkedInodes = dataclasses.field(default_factory=LinkedInodes)

    @property
    def context(self) -> Path:
        """The extracted build context."""
        return self.dirs.context

    def image_platform(self, platform: Platform) -> ImagePlatform:
        """A stage's platform as the image store spells it."""
        return image_platform(platform)
