"""The engine port: what declarun asks of a container engine, as small role-named protocols.

The observer and the reconciler speak to an engine only through :class:`Engine`; the one
adapter today (:mod:`declarun.engine.dockerpy`) drives any Docker-Engine-API engine
(declarund, dockerd): reads through declarun's own small client, the rest through docker-py.
Every method raises only the error kinds of
:mod:`declarun.errdefs` (``NotFound`` for a missing object, ``Conflict`` for a name taken,
``Unavailable`` when the engine does not answer, ...), so callers catch a kind, never a
transport's exception. Values come back typed (:mod:`declarun.engine.types`); request bodies
go in as the Docker Engine API's own JSON (the plan builds them, see ``plan.desired``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, Protocol

from declarun.engine.types import (
    BuildEvent,
    BuildRequest,
    ContainerDetails,
    ContainerSummary,
    EngineEvent,
    EngineVersion,
    ImageDetails,
    NetworkSummary,
    PullEvent,
    VolumeSummary,
)

__all__ = [
    "Attached",
    "Containers",
    "Engine",
    "EventStream",
    "Events",
    "Execs",
    "Images",
    "Networks",
    "System",
    "Volumes",
]


class System(Protocol):
    """The engine itself."""

    def version(self) -> EngineVersion:
        """The engine's release, API version and platform."""
        ...

    def close(self) -> None:
        """Release the connection; the engine object is not used afterwards."""
        ...


class Attached(Protocol):
    """A process's standard streams over a hijacked connection (an exec, or an attached
    container): input goes in, output comes out until the process ends."""

    def write(self, data: bytes) -> None:
        """Send ``data`` to the process's stdin."""
        ...

    def close_input(self) -> None:
        """End the process's stdin (it reads EOF); output keeps coming."""
        ...

    def output(self) -> Iterator[tuple[int, bytes]]:
        """(1 for stdout or 2 for stderr, bytes) as they come, until the process ends; with a
        TTY everything arrives as stdout."""
        ...

    def close(self) -> None:
        """Drop the connection."""
        ...


class Containers(Protocol):
    """Containers: listed, inspected, made, run, stopped and removed, and their logs."""

    def list_containers(self) -> list[ContainerSummary]:
        """Every container, stopped ones included."""
        ...

    def inspect_container(self, name: str) -> ContainerDetails:
        """One container, by name or id."""
        ...

    def create_container(self, name: str, body: Mapping[str, Any]) -> str:
        """Create ``name`` from a ``POST /containers/create`` body; returns its id."""
        ...

    def connect_network(
        self,
        container: str,
        network: str,
        *,
        aliases: Sequence[str] = (),
        ipv4_address: str | None = None,
    ) -> None:
        """Attach ``container`` to ``network`` with these aliases and address."""
        ...

    def start_container(self, name: str) -> None:
        """Start ``name`` (already running is fine)."""
        ...

    def stop_container(self, name: str, *, timeout: int) -> None:
        """Send the stop signal; kill after ``timeout`` seconds."""
        ...

    def remove_container(self, name: str, *, force: bool = False, volumes: bool = False) -> None:
        """Remove ``name`` (``force``: even running; ``volumes``: its anonymous volumes too)."""
        ...

    def rename_container(self, name: str, new_name: str) -> None:
        """Rename ``name`` to ``new_name``."""
        ...

    def container_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False
    ) -> bytes:
        """The log so far (stdout and stderr; the last ``tail`` lines when given)."""
        ...

    def follow_logs(
        self,
        name: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> Iterator[bytes]:
        """The log so far (from ``since``, seconds since the epoch, when given), then new
        output as it is written, until the container stops."""
        ...

    def attach_container(self, name: str, *, tty: bool) -> Attached:
        """Attach to ``name``'s stdin, stdout and stderr (before it starts, to miss nothing)."""
        ...

    def wait_container(self, name: str) -> int:
        """Block until ``name`` stops; its exit code."""
        ...

    def resize_container(self, name: str, *, height: int, width: int) -> None:
        """Set the size of ``name``'s TTY."""
        ...


class Execs(Protocol):
    """Commands run inside a running container."""

    def exec_create(
        self,
        container: str,
        command: Sequence[str],
        *,
        user: str = "",
        workdir: str | None = None,
        env: Sequence[str] = (),
        stdin: bool = False,
        tty: bool = False,
    ) -> str:
        """Prepare ``command`` in ``container`` (with its stdin open, on a TTY, when asked);
        returns the exec's id."""
        ...

    def exec_attach(self, exec_id: str, *, tty: bool) -> Attached:
        """Start the exec and connect to its streams."""
        ...

    def exec_resize(self, exec_id: str, *, height: int, width: int) -> None:
        """Set the size of the exec's TTY."""
        ...

    def exec_start(self, exec_id: str) -> Iterator[tuple[bytes | None, bytes | None]]:
        """Run the exec; yields (stdout, stderr) chunks, one of them None, until it ends."""
        ...

    def exec_exit_code(self, exec_id: str) -> int | None:
        """The exit code of a finished exec (None while it runs)."""
        ...


class Images(Protocol):
    """Images: inspected, pulled, built, and resolved against their registry."""

    def inspect_image(self, ref: str) -> ImageDetails:
        """A local image by reference or id; ``NotFound`` when absent."""
        ...

    def pull_image(self, ref: str, *, platform: str | None = None) -> Iterator[PullEvent]:
        """Pull ``ref`` (tag or digest); yields progress, raises a kind when the pull fails."""
        ...

    def push_image(self, ref: str) -> Iterator[PullEvent]:
        """Push the local image ``ref`` (a tag) to its registry; yields per-layer progress as
        a pull does, raises a kind when the push fails."""
        ...

    def build_image(self, request: BuildRequest) -> Iterator[BuildEvent]:
        """Run the build ``request``, yielding its progress as it comes.

        The context is sent as the docker CLI sends it (``.dockerignore`` applied). A build
        that fails raises :class:`~declarun.engine.types.BuildFailed` (a ``SystemFailure``)
        with the engine's message while iterating; a request the engine refuses raises its
        kind (``InvalidArgument``, ``Unsupported``, ...).
        """
        ...

    def tag_image(self, source: str, target: str) -> None:
        """Give the local image ``source`` (reference or id) the reference ``target``."""
        ...

    def registry_digest(self, ref: str) -> str:
        """The digest the registry serves for ``ref`` now (an index pins every platform)."""
        ...


class Networks(Protocol):
    """Networks."""

    def list_networks(self) -> list[NetworkSummary]:
        """Every network."""
        ...

    def create_network(self, body: Mapping[str, Any]) -> None:
        """Create a network from a ``POST /networks/create`` body."""
        ...

    def remove_network(self, name: str) -> None:
        """Remove network ``name``."""
        ...


class Volumes(Protocol):
    """Volumes."""

    def list_volumes(self) -> list[VolumeSummary]:
        """Every volume."""
        ...

    def create_volume(self, body: Mapping[str, Any]) -> VolumeSummary:
        """Create a volume from a ``POST /volumes/create`` body; returns the volume the engine
        holds under that name: a volume that already existed is returned as it is, with its
        own labels (Docker's answer), so the labels tell who created it."""
        ...

    def remove_volume(self, name: str) -> None:
        """Remove volume ``name``."""
        ...


class EventStream(Protocol):
    """Engine events as they happen; :meth:`close` ends the iteration from another thread."""

    def __iter__(self) -> Iterator[EngineEvent]: ...

    def close(self) -> None:
        """Stop the stream."""
        ...


class Events(Protocol):
    """The engine's event stream."""

    def events(self, *, labels: Sequence[str] = ()) -> EventStream:
        """Events from now on, of objects carrying every ``key=value`` label given."""
        ...


class Engine(System, Containers, Execs, Images, Networks, Volumes, Events, Protocol):
    """Everything declarun asks of an engine: the observer and the reconciler take this."""
