"""The docker-py adapter of the engine port: any Docker-Engine-API engine (declarund, dockerd).

What a plan reads (version, containers, networks, volumes, images) and the engine-side lock's
volumes go through declarun's own small client (:mod:`declarun.engine.apiclient`) when the
engine is reached over a Unix socket or plain TCP; everything else goes through docker-py,
imported and connected the first time it is needed, so a plan with nothing to do never loads
docker-py and requests (issue 16: start-up). Both transports read answers with
:mod:`declarun.engine.wire` and raise the same error kinds.

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
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

from declarun.engine.apiclient import EngineAPIClient, kind_of_status, path_of, supports
from declarun.engine.context_tar import write_context_tar
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
from declarun.engine.wire import (
    container_details,
    container_summary,
    engine_event,
    engine_version,
    image_details,
    network_summary,
    pull_event,
    read_build_message,
    volume_summary,
)
from declarun.errdefs import ErrorKind, InvalidArgument, SystemFailure, Unavailable

__all__ = ["DockerEngine", "error_kind", "read_build_message"]

_T = TypeVar("_T")


def _transport_errors() -> tuple[type[BaseException], ...]:
    """What a failing or cut connection raises, at connect time or in the middle of a stream."""
    import requests.exceptions
    import urllib3.exceptions

    return (requests.exceptions.RequestException, urllib3.exceptions.HTTPError, OSError)


def error_kind(exc: Exception) -> ErrorKind | None:
    """The error kind ``exc`` from docker-py, requests or the socket stands for, or None when
    it is none of theirs (a bug, which must not be disguised as an engine error)."""
    import docker.errors

    transport = _transport_errors()
    if isinstance(exc, docker.errors.APIError):
        status = exc.status_code
        if status is None:
            return Unavailable(str(exc))
        return kind_of_status(status, str(exc.explanation or exc))
    if isinstance(exc, docker.errors.InvalidArgument):
        return InvalidArgument(str(exc))
    if isinstance(exc, transport):
        return Unavailable(str(exc))
    if isinstance(exc, docker.errors.DockerException):
        # docker-py's own failures without a response. It wraps a connection that fails while
        # it asks for the API version ("Error while fetching server API version: ...").
        if isinstance(exc.__cause__, transport):
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


class _Events:
    """docker-py's cancellable event stream, read as typed events."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[EngineEvent]:
        with _translated():
            for raw in self._stream:
                yield engine_event(raw)

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
    """An :class:`~declarun.engine.port.Engine` over declarun's own client for reads (see the
    module docstring) and a ``docker.DockerClient`` for the rest.

    Made with a docker-py ``client``, everything goes through it; made by :meth:`open`, the
    docker-py client is connected the first time :attr:`client` is used.
    """

    def __init__(
        self,
        client: Any = None,
        *,
        host: str | None = None,
        timeout: float = 60,
        api: EngineAPIClient | None = None,
    ) -> None:
        if client is None and host is None:
            raise ValueError("DockerEngine needs a docker-py client or a host")
        self._client = client
        self._host = host
        self._timeout = timeout
        self._api = api
        self._client_lock = threading.Lock()

    @classmethod
    def open(cls, host: str, *, timeout: float) -> DockerEngine:
        """An engine adapter for ``host``. Over a Unix socket or plain TCP nothing is asked
        yet (:meth:`ping` checks that it answers); any other address is connected through
        docker-py at once (it asks the API version: ``Unavailable`` when nothing answers)."""
        if supports(host):
            return cls(host=host, timeout=timeout, api=EngineAPIClient(host, timeout=timeout))
        engine = cls(host=host, timeout=timeout)
        _ = engine.client
        return engine

    @property
    def client(self) -> Any:
        """The ``docker.DockerClient``, connected on first use (imports docker-py)."""
        if self._client is None:
            with self._client_lock:
                if self._client is None:
                    import docker

                    self._client = _call(
                        docker.DockerClient, base_url=self._host, timeout=self._timeout
                    )
        return self._client

    # -- system --------------------------------------------------------------------------------

    def ping(self) -> None:
        """``GET /_ping``; raises a kind when the engine does not answer OK."""
        if self._api is not None:
            self._api.request("GET", "/_ping", versioned=False, expect_json=False)
            return
        _call(self.client.ping)

    def version(self) -> EngineVersion:
        if self._api is not None:
            raw = self._api.request("GET", "/version", versioned=False)
            self._api.remember_version(str(raw.get("ApiVersion") or ""))
            return engine_version(raw)
        return engine_version(_call(self.client.version))

    def close(self) -> None:
        if self._api is not None:
            self._api.close()
        if self._client is not None:
            self._client.close()

    # -- containers ----------------------------------------------------------------------------

    def list_containers(self) -> list[ContainerSummary]:
        if self._api is not None:
            listed = self._api.request("GET", "/containers/json", params={"all": 1})
        else:
            listed = _call(self.client.api.containers, all=True)
        return [container_summary(raw) for raw in listed]

    def inspect_container(self, name: str) -> ContainerDetails:
        if self._api is not None:
            return container_details(self._api.request("GET", path_of("/containers/{}/json", name)))
        return container_details(_call(self.client.api.inspect_container, name))

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
        if self._api is not None:
            return image_details(self._api.request("GET", path_of("/images/{}/json", ref)))
        return image_details(_call(self.client.api.inspect_image, ref))

    def pull_image(self, ref: str, *, platform: str | None = None) -> Iterator[PullEvent]:
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(ref)
        events = _call(
            self.client.api.pull,
            repository,
            tag=tag or "latest",
            stream=True,
            decode=True,
            platform=platform,
        )
        return (pull_event(raw) for raw in _stream(events))

    def push_image(self, ref: str) -> Iterator[PullEvent]:
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(ref)
        events = _call(
            self.client.api.push, repository, tag=tag or "latest", stream=True, decode=True
        )
        return (pull_event(raw) for raw in _stream(events))

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
        from docker.utils import parse_repository_tag

        repository, tag = parse_repository_tag(target)
        _call(self.client.api.tag, source, repository, tag=tag or "latest")

    def registry_digest(self, ref: str) -> str:
        raw = _call(self.client.api.inspect_distribution, ref)
        return str(raw["Descriptor"]["digest"])

    # -- networks and volumes ------------------------------------------------------------------

    def list_networks(self) -> list[NetworkSummary]:
        if self._api is not None:
            listed = self._api.request("GET", "/networks")
        else:
            listed = _call(self.client.api.networks)
        return [network_summary(raw) for raw in listed]

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
        if self._api is not None:
            answer = self._api.request("GET", "/volumes")
        else:
            answer = _call(self.client.api.volumes)
        return [volume_summary(raw) for raw in (answer or {}).get("Volumes") or ()]

    def create_volume(self, body: Mapping[str, Any]) -> VolumeSummary:
        if self._api is not None:
            # The body docker-py's create_volume sends for these arguments.
            request: dict[str, Any] = {
                "Name": body["Name"],
                "Driver": body.get("Driver") or "local",
            }
            if body.get("DriverOpts"):
                request["DriverOpts"] = dict(body["DriverOpts"])
            if body.get("Labels"):
                request["Labels"] = dict(body["Labels"])
            raw = self._api.request("POST", "/volumes/create", body=request)
        else:
            raw = _call(
                self.client.api.create_volume,
                name=body["Name"],
                driver=body.get("Driver") or "local",
                driver_opts=body.get("DriverOpts") or None,
                labels=body.get("Labels") or None,
            )
        return volume_summary(raw or {}, name=body["Name"])

    def remove_volume(self, name: str) -> None:
        if self._api is not None:
            self._api.request("DELETE", path_of("/volumes/{}", name), expect_json=False)
            return
        _call(self.client.api.remove_volume, name)

    # -- events --------------------------------------------------------------------------------

    def events(self, *, labels: Sequence[str] = ()) -> _Events:
        filters = {"label": list(labels)} if labels else None
        return _Events(_call(self.client.events, decode=True, filters=filters))
