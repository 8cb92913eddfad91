"""The observed state: the engine's actual state (and the host's inputs) as an immutable value.

The observer (``declarun.observe``) fills it: the containers, networks and volumes that
belong to the stack (by the ``dev.declarun.stack`` label) or whose name the stack wants
(foreign objects in the way), the images the stack refers to, the engine's platform, the
digests of the host inputs (``plan.inputs``), the base images of the stack's builds, and
for each built image what it would be built from now and what it was built from
(:class:`ObservedBuild`).
Everything is kept in frozen dataclasses, so the diff that follows can be a pure function, and
the observed state has a :meth:`ObservedState.fingerprint` that a saved plan records: an apply
of a saved plan refuses to run when the world's fingerprint is no longer the same.

:meth:`ObservedState.from_data` builds one from plain data, for unit tests and saved fixtures.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, TypeVar

from declarun.frozen import FrozenDict, freeze, thaw
from declarun.plan.buildinputs import BuildInputs, FileChanges
from declarun.plan.identity import LABEL_STACK, canonical_json, sha256_text

__all__ = [
    "ObservedBuild",
    "ObservedContainer",
    "ObservedImage",
    "ObservedNetwork",
    "ObservedState",
    "ObservedVolume",
]

_EMPTY: FrozenDict[str, str] = FrozenDict()
_NONE: FrozenDict[str, Any] = FrozenDict()
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedContainer:
    """A container as the engine reports it. ``state`` is Docker's: created, running, paused,
    restarting, removing, exited or dead; ``health`` None when it has no healthcheck."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    image: str = ""  # the reference it was created with
    image_id: str = ""
    state: str = "running"
    exit_code: int | None = None
    health: str | None = None  # starting, healthy, unhealthy
    networks: tuple[str, ...] = ()  # engine names of the networks it is attached to
    volumes: tuple[str, ...] = ()  # engine names of the named volumes it mounts
    ports: tuple[str, ...] = ()  # published ports, "0.0.0.0:8080->80/tcp"
    # Restarts by the engine's restart policy; read (by inspect) only for a container that
    # exited, is restarting, or started less than plan.crashes.CRASH_WINDOW ago.
    restart_count: int = 0
    ran_for: float | None = None  # seconds its last run lasted, when it has exited


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedNetwork:
    """A network as the engine reports it."""

    id: str
    name: str
    labels: FrozenDict[str, str] = _EMPTY
    driver: str = "bridge"
    internal: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedVolume:
    """A volume as the engine reports it."""

    name: str
    labels: FrozenDict[str, str] = _EMPTY
    driver: str = "local"


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedImage:
    """A local image, found by the reference the stack uses for it."""

    ref: str
    id: str
    repo_digests: tuple[str, ...] = ()
    repo_tags: tuple[str, ...] = ()
    labels: FrozenDict[str, str] = _EMPTY
    has_healthcheck: bool = False  # the image's config runs a health check


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedBuild:
    """A built image's inputs as read now, and the record of its last build.

    ``inputs`` is None when the context or the Dockerfile cannot be read now (``problem``
    says why); ``recorded`` None when the image is absent or no record of its build is kept
    here; ``changes`` lists the context files changed since the recorded build, None when
    nothing changed or the recorded build's file list is not known.
    """

    inputs: BuildInputs | None = None
    problem: str | None = None
    recorded: BuildInputs | None = None
    changes: FileChanges | None = None

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-able data (what :meth:`from_data` reads)."""
        return {
            "inputs": None if self.inputs is None else self.inputs.to_data(),
            "problem": self.problem,
            "recorded": None if self.recorded is None else self.recorded.to_data(),
            "changes": None if self.changes is None else self.changes.to_data(),
        }

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ObservedBuild:
        """Read :meth:`to_data`'s form back."""
        inputs, recorded, changes = data.get("inputs"), data.get("recorded"), data.get("changes")
        return cls(
            inputs=None if inputs is None else BuildInputs.from_data(inputs),
            problem=data.get("problem"),
            recorded=None if recorded is None else BuildInputs.from_data(recorded),
            changes=None if changes is None else FileChanges.from_data(changes),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class ObservedState:
    """What the engine holds for one stack, at one moment. Maps are keyed by engine name
    (images by the reference they were looked up with); an image absent locally is absent."""

    stack: str
    platform: str = "linux/amd64"
    containers: FrozenDict[str, ObservedContainer] = _NONE
    networks: FrozenDict[str, ObservedNetwork] = _NONE
    volumes: FrozenDict[str, ObservedVolume] = _NONE
    images: FrozenDict[str, ObservedImage] = _NONE
    inputs: FrozenDict[str, str] = _EMPTY  # bind:/path, context:/path -> digest
    # built image name -> the references its Dockerfile starts FROM
    base_images: FrozenDict[str, tuple[str, ...]] = _NONE
    builds: FrozenDict[str, ObservedBuild] = _NONE  # built image name -> its inputs

    def owns(self, labels: FrozenDict[str, str]) -> bool:
        """True when an object with these labels belongs to this snapshot's stack."""
        return labels.get(LABEL_STACK) == self.stack

    def to_data(self) -> dict[str, Any]:
        """Plain JSON-able data in a canonical order (what :meth:`from_data` reads)."""

        def listed(mapping: FrozenDict[str, Any]) -> list[dict[str, Any]]:
            return [
                {f.name: thaw(getattr(item, f.name)) for f in fields(item)}
                for _key, item in sorted(mapping.items())
            ]

        data: dict[str, Any] = {
            "stack": self.stack,
            "platform": self.platform,
            "containers": listed(self.containers),
            "networks": listed(self.networks),
            "volumes": listed(self.volumes),
            "images": listed(self.images),
            "inputs": dict(sorted(self.inputs.items())),
        }
        # Only stacks that build have base images: the fingerprints of the others stay as
        # they were before the observed state carried them.
        if self.base_images:
            data["base_images"] = {k: list(v) for k, v in sorted(self.base_images.items())}
        if self.builds:
            data["builds"] = {k: v.to_data() for k, v in sorted(self.builds.items())}
        return data

    def fingerprint(self) -> str:
        """``sha256:<hex>`` of the canonical form: equal states give equal fingerprints."""
        return sha256_text(canonical_json(self.to_data()))

    @classmethod
    def from_data(cls, data: dict[str, Any]) -> ObservedState:
        """Build a snapshot from plain data (lists of objects with the dataclass field names)."""

        def build(kind: type[_T], items: list[dict[str, Any]], key: str) -> FrozenDict[str, _T]:
            made = {item[key]: kind(**{k: freeze(v) for k, v in item.items()}) for item in items}
            return FrozenDict(sorted(made.items()))

        return cls(
            stack=data["stack"],
            platform=data.get("platform", "linux/amd64"),
            containers=build(ObservedContainer, data.get("containers", []), "name"),
            networks=build(ObservedNetwork, data.get("networks", []), "name"),
            volumes=build(ObservedVolume, data.get("volumes", []), "name"),
            images=build(ObservedImage, data.get("images", []), "ref"),
            inputs=FrozenDict(sorted(data.get("inputs", {}).items())),
            base_images=FrozenDict(
                sorted((k, tuple(v)) for k, v in data.get("base_images", {}).items())
            ),
            builds=FrozenDict(
                sorted((k, ObservedBuild.from_data(v)) for k, v in data.get("builds", {}).items())
            ),
        )
