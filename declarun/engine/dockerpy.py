"""The docker-py adapter of the engine port: any Docker-Engine-API engine (declarund, dockerd).

This is the one place where docker-py's and requests' exceptions become declarun's error
kinds (:func:`error_kind`): an API error by its HTTP status (404 NotFound, 409 Conflict, ...),
a connection that fails or is cut by ``Unavailable``. Streams (pull, logs, exec, events) are
translated as they are read, so a failure halfway through is a kind too.

Registry credentials come from ``~/.docker/config.json`` through docker-py's own auth
handling: ``pull_image`` passes no ``auth_config``, so docker-py builds ``X-Registry-Auth``.
"""

from __future__ import annotations

import contextlib
import socket
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import docker
import docker.errors
import requests.exceptions
import urllib3.exceptions
from docker.utils import parse_repository_tag

from declarun.engine.context_tar import write_context_tar
from declarun.engine.types import (
    BuildEvent,
    BuildFailed,
    BuildRequest,
    ContainerDetails,
    ContainerState,
    ContainerSummary,
    EngineEvent,
    EngineVersion,
    Healthcheck,
    HealthResult,
    ImageDetails,
    NetworkSummary,
    PortBinding,
    PublishedPort,
    PullEvent,
    VolumeSummary,
)
from declarun.errdefs import (
    Conflict,
    ErrorKind,
    Forbidden,
    InvalidArgument,
    NotFound,
    NotModified,
    SystemFailure,
    Unauthorized,
    Unavailable,
    Unsupported,
)
from declarun.frozen import FrozenDict

__all__ = ["DockerEngine", "error_kind", "read_build_message"]

_T = TypeVar("_T")
_BY_STATUS: dict[int, type[ErrorKind]] = {
    304: NotModified,
    400: InvalidArgument,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    501: Unsupported,
    503: Unavailable,
}
# What a failing or cut connection raises, at connect time or in the middle of a stream.
_TRANSPORT = (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)


def error_kind(exc: Exception) -> ErrorKind | None:
    """The error kind ``exc`` from docker-py, requests or the socket stands for, or None when
    it is none of theirs (a bug, which must not be disguised as an engine error)."""
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        if status is None:
            return Unavailable(str(exc))
        fallback = InvalidArgument if 400 <= status < 500 else SystemFailure
        return _BY_STATUS.get(status, fallback)(str(exc.explanation or exc))
    if isinstance(exc, docker.errors.InvalidArgument):
        return InvalidArgument(str(exc))
    if isinstance(exc, _TRANSPORT):
        return Unavailable(str(exc))
    if isinstance(exc, docker.errors.DockerException):
        # docker-py's own failures without a response. It wraps a connection that fails while
        # it asks for the API version ("Error while fetching server API version: ...").
        if isinstance(exc.__cause__, _TRANSPORT):
            return Unavailable(str(exc))
        return SystemFailure(str(exc))
    return None


@contextlib.contextmanager
def _translated() -> Iterator[None]:
    try:
        yield
    except ErrorKind:
        raise
    except Exception as exc:
        kind = error_kind(exc)
        if kind is None:
            raise
        raise kind from exc


def _call(function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
    with _translated():
        return function(*args, **kwargs)


def _stream(items: Iterable[_T]) -> Iterator[_T]:
    """``items`` read with every failure translated, the read that fails included."""
    with _translated():
        yield from items


def _closing(stream: Any) -> Iterator[Any]:
    """A docker-py ``CancellableStream`` read translated, and closed once read or abandoned.

    docker-py leaves that to its caller: ``close()`` shuts the socket down, and the response
    it came with must be closed too, or the socket object (hijacked, for exec) is left for
    the garbage collector to complain about.
    """
    try:
        yield from _stream(stream)
    finally:
        with contextlib.suppress(OSError):  # the engine closed it first
            stream.close()
        stream._response.close()


def _labels(raw: Any) -> FrozenDict[str, str]:
    return FrozenDict(sorted((raw or {}).items()))


def _summary(raw: dict[str, Any]) -> ContainerSummary:
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    volumes = [m.get("Name") for m in raw.get("Mounts") or () if m.get("Type") == "volume"]
    return ContainerSummary(
        id=raw["Id"],
        name=(raw.get("Names") or ["/"])[0].lstrip("/"),
        labels=_labels(raw.get("Labels")),
        image=str(raw.get("Image") or ""),
        image_id=str(raw.get("ImageID") or ""),
        state=str(raw.get("State") or ""),
        status=str(raw.get("Status") or ""),
        networks=tuple(sorted(networks)),
        volumes=tuple(sorted(v for v in volumes if v)),
        ports=tuple(
            PublishedPort(
                ip=str(p.get("IP") or ""),
                private_port=int(p["PrivatePort"]),
                public_port=int(p["PublicPort"]) if p.get("PublicPort") else None,
                protocol=str(p.get("Type") or "tcp"),
            )
            for p in raw.get("Ports") or ()
        ),
    )


def _state(raw: dict[str, Any]) -> ContainerState:
    health = raw.get("Health")
    return ContainerState(
        status=str(raw.get("Status") or ""),
        running=bool(raw.get("Running")),
        restarting=bool(raw.get("Restarting")),
        exit_code=int(raw.get("ExitCode") or 0),
        error=str(raw.get("Error") or ""),
        oom_killed=bool(raw.get("OOMKilled")),
        health=None if health is None else str(health.get("Status") or ""),
        health_log=tuple(
            HealthResult(exit_code=entry.get("ExitCode"), output=str(entry.get("Output") or ""))
            for entry in (health or {}).get("Log") or ()
        ),
        started_at=str(raw.get("StartedAt") or ""),
        finished_at=str(raw.get("FinishedAt") or ""),
    )


def _healthcheck(raw: dict[str, Any] | None) -> Healthcheck | None:
    if not raw:
        return None
    return Healthcheck(
        test=tuple(raw.get("Test") or ()),
        interval=int(raw.get("Interval") or 0),
        timeout=int(raw.get("Timeout") or 0),
        retries=int(raw.get("Retries") or 0),
        start_period=int(raw.get("StartPeriod") or 0),
    )


def _details(raw: dict[str, Any]) -> ContainerDetails:
    config = raw.get("Config") or {}
    host_config = raw.get("HostConfig") or {}
    bindings = host_config.get("PortBindings") or {}
    networks = (raw.get("NetworkSettings") or {}).get("Networks") or {}
    addresses = {
        name: str(address)
        for name, endpoint in networks.items()
        if (address := ((endpoint or {}).get("IPAMConfig") or {}).get("IPv4Address"))
    }
    return ContainerDetails(
        id=raw["Id"],
        name=str(raw.get("Name") or "").lstrip("/"),
        labels=_labels(config.get("Labels")),
        image_id=str(raw.get("Image") or ""),
        state=_state(raw.get("State") or {}),
        healthcheck=_healthcheck(config.get("Healthcheck")),
        port_bindings=tuple(
            PortBinding(
                container_port=port,
                host_ip=str(binding.get("HostIp") or ""),
                host_port=str(binding.get("HostPort") or ""),
            )
            for port, found in sorted(bindings.items())
            for binding in found or ()
        ),
        ipv4_addresses=FrozenDict(sorted(addresses.items())),
        restart_count=int(raw.get("RestartCount") or 0),
        restart_policy=str((host_config.get("RestartPolicy") or {}).get("Name") or ""),
    )


def _pull_event(raw: dict[str, Any]) -> PullEvent:
    if raw.get("error"):
        # An error in the stream carries no status: the pull failed on the engine's side.
        raise SystemFailure(str(raw["error"]))
    detail = raw.get("progressDetail") or {}
    return PullEvent(
        layer=str(raw["id"]) if raw.get("id") else None,
        status=str(raw.get("status") or ""),
        current=int(detail["current"]) if detail.get("current") is not None else None,
        total=int(detail["total"]) if detail.get("total") else None,
    )


def read_build_message(raw: dict[str, Any]) -> BuildEvent:
    """One decoded message of ``POST /build``'s stream as a :class:`BuildEvent`; an error
    message (``errorDetail``: a ``RUN`` that failed, with its exit code as ``code``) raises
    :class:`BuildFailed` with the engine's message."""
    if raw.get("errorDetail") or raw.get("error"):
        detail = raw.get("errorDetail") or {}
        message = str(detail.get("message") or raw.get("error") or "the build failed")
        code = detail.get("code")
        raise BuildFailed(message.strip(), int(code) if isinstance(code, int) else None)
    aux = raw.get("aux")
    if isinstance(aux, dict) and aux.get("ID"):
        return BuildEvent(image_id=str(aux["ID"]))
    if raw.get("status"):
        parts = [str(raw["id"]) + ":" if raw.get("id") else "", str(raw["status"])]
        if raw.get("progress"):
            parts.append(str(raw["progress"]))
        return BuildEvent(status=" ".join(p for p in parts if p))
    return BuildEvent(output=str(raw.get("stream") or ""))


def _event(raw: dict[str, Any]) -> EngineEvent:
    actor = raw.get("Actor") or {}
    return EngineEvent(
        type=str(raw.get("Type") or ""),
        action=str(raw.get("Action") or raw.get("status") or ""),
        actor_id=str(actor.get("ID") or raw.get("id") or ""),
        attributes=_labels(actor.get("Attributes")),
    )


class _Events:
    """docker-py's cancellable event stream, read as typed events."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[EngineEvent]:
        with _translated():
            for raw in self._stream:
                yield _event(raw)

    def close(self) -> None:
        with _translated():
            self._stream.close()


class _Hijacked:
    """An :class:`~declarun.engine.port.Attached` over the connection docker-py hijacked.

    Output is read through the response's own buffered reader, not the bare socket below it
    (as docker-py's ``socket=True`` would): bytes that arrived with the response head sit in
    that buffer, and reading the socket would lose them (a shell's first prompt, say).
    """

    def __init__(self, response: Any, tty: bool) -> None:
        self._response = response
        self._reader = response.raw._fp.fp
        self._socket = self._reader.raw._sock
        self._socket.settimeout(None)  # a session may stay quiet for as long as it likes
        self._tty = tty

    @classmethod
    def of(cls, api: Any, response: Any, tty: bool) -> _Hijacked:
        _call(api._raise_for_status, response)
        return cls(response, tty)

    def write(self, data: bytes) -> None:
        with _translated():
            self._socket.sendall(data)

    def close_input(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.shutdown(socket.SHUT_WR)

    def _exactly(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self._reader.read(size - len(data))
            if not chunk:
                return data
            data += chunk
        return data

    def output(self) -> Iterator[tuple[int, bytes]]:
        with _translated():
            if self._tty:
                while chunk := self._reader.read1(65536):
                    yield 1, chunk
                return
            # Without a TTY the streams are multiplexed: an 8-byte header (stream, 0, 0, 0,
            # big-endian size), then that many bytes.
            while len(header := self._exactly(8)) == 8:
                data = self._exactly(int.from_bytes(header[4:8], "big"))
                yield (2 if header[0] == 2 else 1), data

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self._socket.close()
        self._response.close()


class DockerEngine:
    """An :class:`~declarun.engine.port.Engine` over a ``docker.DockerClient``."""

    def __init__(self, client: Any) -> None:
        self.client = client

    @classmethod
    def open(cls, host: str, *, timeout: float) -> DockerEngine:
        """A client of the engine at ``host`` (asks its API version: ``Unavailable`` when it
        does not answer)."""
        return cls(_call(docker.DockerClient, base_url=host, timeout=timeout))

    # -- system --------------------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /_ping``; raises a kind when the engine does not answer OK."""
        _call(self.client.ping)

    def version(self) -> EngineVersion:
        raw = _call(self.client.version)
        return EngineVersion(
            version=str(raw.get("Version") or "?"),
            api_version=str(raw.get("ApiVersion") or ""),
            os=str(raw.get("Os") or "linux"),
            arch=str(raw.get("Arch") or "amd64"),
        )

    def close(self) -> None:
        self.client.close()

    # -- containers ----------------------------------------------------------------------------

    def list_containers(self) -> list[ContainerSummary]:
        return [_summary(raw) for raw in _call(self.client.api.containers, all=True)]

    def inspect_container(self, name: str) -> ContainerDetails:
        return _details(_call(self.client.api.inspect_container, name))

    def create_container(self, name: str, body: Mapping[str, Any]) -> str:
        created = _call(self.client.api.create_container_from_config, dict(body), name=name)
        return str(created["Id"])

    def connect_network(
        self,
        container: str,
        network: str,
        *,
        aliases: Sequence[str] = (),
        ipv4_address: str | None = None,
    ) -> None:
        _call(
            self.client.api.connect_container_to_network,
            container,
            network,
            aliases=list(aliases) or None,
            ipv4_address=ipv4_address,
        )

    def start_container(self, name: str) -> None:
        _call(self.client.api.start, name)

    def stop_container(self, name: str, *, timeout: int) -> None:
        _call(self.client.api.stop, name, timeout=timeout)

    def remove_container(self, name: str, *, force: bool = False, volumes: bool = False) -> None:
        _call(self.client.api.remove_container, name, v=volumes, force=force)

    def rename_container(self, name: str, new_name: str) -> None:
        _call(self.client.api.rename, name, new_name)

    def container_logs(
        self, name: str, *, tail: int | None = None, timestamps: bool = False
    ) -> bytes:
        raw = _call(
            self.client.api.logs,
            name,
            stdout=True,
            stderr=True,
            timestamps=timestamps,
            tail="all" if tail is None else tail,
        )
        return raw if isinstance(raw, bytes) else str(raw).encode()

    def follow_logs(
        self,
        name: str,
        *,
        tail: int | None = None,
        timestamps: bool = False,
        since: float | None = None,
    ) -> Iterator[bytes]:
        chunks = _call(
            self.client.api.logs,
            name,
            stdout=True,
            stderr=True,
            timestamps=timestamps,
            tail="all" if tail is None else tail,
            stream=True,
            follow=True,
            since=since,
        )
        return _closing(chunks)

    def attach_container(self, name: str, *, tty: bool) -> _Hijacked:
        api = self.client.api
        params = {"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1, "logs": 0}
        response = _call(
            api.post,
            api._url("/containers/{0}/attach", name),
            None,
            params=params,
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            stream=True,
        )
        return _Hijacked.of(api, response, tty)

    def wait_container(self, name: str) -> int:
        # No read timeout: a container may run for as long as it likes.
        return int(_call(self.client.api.wait, name, timeout=None).get("StatusCode", 1))

    def resize_container(self, name: str, *, height: int, width: int) -> None:
        _call(self.client.api.resize, name, height=height, width=width)

    # -- exec ----------------------------------------------------------------------------------

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
        created = _call(
            self.client.api.exec_create,
            container,
            list(command),
            stdout=True,
            stderr=True,
            stdin=stdin,
            tty=tty,
            user=user,
            workdir=workdir,
            environment=list(env) or None,
        )
        return str(created["Id"])

    def exec_attach(self, exec_id: str, *, tty: bool) -> _Hijacked:
        api = self.client.api
        response = _call(
            api._post_json,
            api._url("/exec/{0}/start", exec_id),
            headers={"Connection": "Upgrade", "Upgrade": "tcp"},
            data={"Tty": tty, "Detach": False},
            stream=True,
        )
        return _Hijacked.of(api, response, tty)

    def exec_resize(self, exec_id: str, *, height: int, width: int) -> None:
        _call(self.client.api.exec_resize, exec_id, height=height, width=width)

    def exec_start(self, exec_id: str) -> Iterator[tuple[bytes | None, bytes | None]]:
        return _closing(_call(self.client.api.exec_start, exec_id, stream=True, demux=True))

    def exec_exit_code(self, exec_id: str) -> int | None:
        code = _call(self.client.api.exec_inspect, exec_id).get("ExitCode")
        return None if code is None else int(code)

    # -- images --------------------------------------------------------------------------------

    def inspect_image(self, ref: str) -> ImageDetails:
        raw = _call(self.client.api.inspect_image, ref)
        config = raw.get("Config") or {}
        test = (config.get("Healthcheck") or {}).get("Test") or []
        return ImageDetails(
            id=raw["Id"],
            repo_digests=tuple(sorted(raw.get("RepoDigests") or ())),
            repo_tags=tuple(sorted(raw.get("RepoTags") or ())),
            labels=_labels(config.get("Labels")),
            has_healthcheck=bool(test) and test[0] != "NONE",
        )

    def pull_image(self, ref: str, *, platform: str | None = None) -> Iterator[PullEvent]:
        repository, tag = parse_repository_tag(ref)
        events = _call(
            self.client.api.pull,
            repository,
            tag=tag or "latest",
            stream=True,
            decode=True,
            platform=platform,
        )
        return (_pull_event(raw) for raw in _stream(events))

    def push_image(self, ref: str) -> Iterator[PullEvent]:
        repository, tag = parse_repository_tag(ref)
        events = _call(
            self.client.api.push, repository, tag=tag or "latest", stream=True, decode=True
        )
        return (_pull_event(raw) for raw in _stream(events))

    def build_image(self, request: BuildRequest) -> Iterator[BuildEvent]:
        # The context goes to a temporary file first: its size is sent up front, and a file
        # that cannot be read fails here, before the engine starts anything.
        with tempfile.TemporaryFile(prefix="declarun-context-") as body:
            dockerfile = write_context_tar(request.context, request.dockerfile, body)
            body.seek(0)
            stream = _call(
                self.client.api.build,
                fileobj=body,
                custom_context=True,
                dockerfile=dockerfile,
                tag=request.tags[0] if request.tags else None,
                buildargs=dict(request.args) or None,
                target=request.target,
                labels=dict(request.labels) or None,
                pull=request.pull,
                nocache=request.nocache,
                rm=True,  # the CLI's default: intermediate containers go
                platform=request.platform,
                decode=True,
                timeout=None,  # a RUN may print nothing for long
            )
            built: str | None = None
            for raw in _stream(stream):
                event = read_build_message(raw)
                built = event.image_id or built
                yield event
        # Further tags (the API takes several; docker-py's build only one).
        for tag in request.tags[1:]:
            if built is None:
                raise SystemFailure(f"the engine did not say which image it built for {tag}")
            self.tag_image(built, tag)

    def tag_image(self, source: str, target: str) -> None:
        repository, tag = parse_repository_tag(target)
        _call(self.client.api.tag, source, repository, tag=tag or "latest")

    def registry_digest(self, ref: str) -> str:
        raw = _call(self.client.api.inspect_distribution, ref)
        return str(raw["Descriptor"]["digest"])

    # -- networks and volumes ------------------------------------------------------------------

    def list_networks(self) -> list[NetworkSummary]:
        return [
            NetworkSummary(
                id=raw["Id"],
                name=raw["Name"],
                labels=_labels(raw.get("Labels")),
                driver=str(raw.get("Driver") or ""),
                internal=bool(raw.get("Internal")),
            )
            for raw in _call(self.client.api.networks)
        ]

    def create_network(self, body: Mapping[str, Any]) -> None:
        _call(
            self.client.api.create_network,
            body["Name"],
            driver=body.get("Driver"),
            options=body.get("Options") or None,
            ipam=body.get("IPAM"),
            check_duplicate=True,
            internal=bool(body.get("Internal", False)),
            labels=body.get("Labels") or None,
            attachable=body.get("Attachable"),
        )

    def remove_network(self, name: str) -> None:
        _call(self.client.api.remove_network, name)

    def list_volumes(self) -> list[VolumeSummary]:
        listed = _call(self.client.api.volumes).get("Volumes") or ()
        return [
            VolumeSummary(
                name=raw["Name"],
                labels=_labels(raw.get("Labels")),
                driver=str(raw.get("Driver") or ""),
            )
            for raw in listed
        ]

    def create_volume(self, body: Mapping[str, Any]) -> VolumeSummary:
        raw = _call(
            self.client.api.create_volume,
            name=body["Name"],
            driver=body.get("Driver") or "local",
            driver_opts=body.get("DriverOpts") or None,
            labels=body.get("Labels") or None,
        )
        return VolumeSummary(
            name=str(raw.get("Name") or body["Name"]),
            labels=_labels(raw.get("Labels")),
            driver=str(raw.get("Driver") or ""),
        )

    def remove_volume(self, name: str) -> None:
        _call(self.client.api.remove_volume, name)

    # -- events --------------------------------------------------------------------------------

    def events(self, *, labels: Sequence[str] = ()) -> _Events:
        filters = {"label": list(labels)} if labels else None
        return _Events(_call(self.client.events, decode=True, filters=filters))
