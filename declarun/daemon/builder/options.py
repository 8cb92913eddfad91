"""What one ``POST /build`` asks for, as a typed value the API area fills in.

:class:`BuildOptions` holds every parameter of the classic builder's API (Docker Engine API
v1.45) that declarund honours, already validated: names are parsed references, JSON maps
are mappings, the platform is parsed. :class:`RunResources` are the limits every ``RUN``
container gets. ``secrets`` come from declarund's extension header (see
``specs/daemon.md``); their content never reaches a layer, the history, a cache key or the
build output.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from declarun.daemon.images.auth import Credentials
from declarun.dockerfile import Platform
from declarun.frozen import FrozenDict
from declarun.reference import ImageReference

__all__ = ["DEFAULT_DOCKERFILE", "BuildOptions", "RunResources"]

DEFAULT_DOCKERFILE = "Dockerfile"


@dataclass(frozen=True)
class RunResources:
    """Limits of the ``RUN`` containers (Docker's ``memory``, ``cpushares``... parameters).

    Zero (or empty) means "not set", as in a container create request.
    """

    memory: int = 0
    memory_swap: int = 0
    cpu_shares: int = 0
    cpuset_cpus: str = ""
    cpu_period: int = 0
    cpu_quota: int = 0
    shm_size: int = 0


@dataclass(frozen=True)
class BuildOptions:
    """A build request (see the module docstring).

    ``dockerfile`` is a path inside the context; ``tags`` the names the target image gets;
    ``network_mode`` the network of ``RUN`` steps (``default``/``bridge``, ``host``,
    ``none``, or a network); ``remove``/``force_remove`` Docker's ``rm``/``forcerm``;
    ``registry_auth`` credentials by registry domain (``X-Registry-Config``);
    ``remote`` a URL to download the context from instead of the request body.
    """

    dockerfile: str = DEFAULT_DOCKERFILE
    tags: tuple[ImageReference, ...] = ()
    build_args: Mapping[str, str] = field(default_factory=FrozenDict)
    target: str | None = None
    labels: Mapping[str, str] = field(default_factory=FrozenDict)
    no_cache: bool = False
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    cache_from: tuple[str, ...] = ()
    network_mode: str = "default"
    extra_hosts: tuple[str, ...] = ()
    resources: RunResources = RunResources()
    platform: Platform | None = None
    quiet: bool = False
    registry_auth: Mapping[str, Credentials] = field(default_factory=FrozenDict)
    secrets: Mapping[str, bytes] = field(default_factory=FrozenDict)
    remote: str = ""
