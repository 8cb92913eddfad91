"""A small client of the Docker Engine API over a Unix socket or plain TCP (stdlib only).

What a plan reads (version, lists and inspects) and what the engine-side lock writes (a
volume created and removed) go through this client, so that a ``declarun plan`` or ``apply``
with nothing to do never imports docker-py and requests (about a third of the command's
start-up, issue 16). docker-py stays the transport of everything else (pulls with registry
credentials, builds, logs, exec, attach, events, changes), imported when first needed.

Requests go to the engine's own API version (``/v1.45/...``), read once from ``GET /version``
as docker-py's ``version="auto"`` does. Answers become error kinds as docker-py's do through
``dockerpy.error_kind``: the HTTP status picks the kind and the engine's JSON ``message`` is the
text; a connection that fails or is cut is ``Unavailable``. Connections are kept alive and
pooled, one per thread at a time, so the reconciler's worker threads can share the client.
"""

from __future__ import annotations

import http.client
import json
import select
import socket
import threading
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, urlencode

from declarun.errdefs import (
    HTTP_STATUS,
    ErrorKind,
    InvalidArgument,
    SystemFailure,
    Unavailable,
    Unsupported,
)

__all__ = ["MINIMUM_API_VERSION", "EngineAPIClient", "kind_of_status", "path_of", "supports"]

#: The oldest API docker-py (and so declarun) talks to.
MINIMUM_API_VERSION = (1, 24)
#: Each status Docker answers an error with, read back into its kind.
_BY_STATUS: dict[int, type[ErrorKind]] = {status: kind for kind, status in HTTP_STATUS.items()}
# What a failing, refused or cut connection raises (http.client's RemoteDisconnected is both).
_TRANSPORT = (OSError, http.client.HTTPException)


def supports(host: str) -> bool:
    """True when this client can reach ``host``: ``unix://PATH``, ``tcp://`` or ``http://``
    (no TLS: docker-py is given no TLS settings either, so it speaks plain HTTP there too)."""
    scheme, _, rest = host.partition("://")
    return bool(rest) and scheme in ("unix", "tcp", "http")


def kind_of_status(status: int, message: str) -> ErrorKind:
    """The error kind an HTTP error ``status`` stands for, as docker-py's errors map to one."""
    fallback = InvalidArgument if 400 <= status < 500 else SystemFailure
    return _BY_STATUS.get(status, fallback)(message)


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self._path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(self.timeout)
            sock.connect(self._path)
        except OSError:
            sock.close()
            raise
        self.sock = sock


def _dropped(connection: http.client.HTTPConnection) -> bool:
    """True when an idle kept-alive connection was closed by the engine (readable at EOF)."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        readable, _w, _x = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)


def _version_tuple(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split("."))
    except ValueError:
        return ()


class EngineAPIClient:
    """JSON requests to one engine; thread-safe; :meth:`close` drops the pooled connections."""

    def __init__(self, host: str, *, timeout: float) -> None:
        if not supports(host):
            raise InvalidArgument(f"engine address {host!r}: not unix://, tcp:// or http://")
        scheme, _, rest = host.partition("://")
        self.host = host
        self._timeout = timeout
        self._unix_path = rest if scheme == "unix" else None
        self._netloc = rest.split("/", 1)[0]
        self._idle: list[http.client.HTTPConnection] = []
        self._lock = threading.Lock()
        self._prefix: str | None = None

    def _new_connection(self) -> http.client.HTTPConnection:
        if self._unix_path is not None:
            return _UnixConnection(self._unix_path, self._timeout)
        return http.client.HTTPConnection(self._netloc, timeout=self._timeout)

    def _checkout(self) -> tuple[http.client.HTTPConnection, bool]:
        """A pooled connection still open (True: reused), else a new one (False)."""
        with self._lock:
            while self._idle:
                connection = self._idle.pop()
                if not _dropped(connection):
                    return connection, True
                connection.close()
        return self._new_connection(), False

    def _checkin(self, connection: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.append(connection)

    def _exchange(
        self, method: str, path: str, body: bytes | None
    ) -> tuple[int, bytes, http.client.HTTPConnection]:
        headers = {"Host": "localhost" if self._unix_path is not None else self._netloc}
        if body is not None:
            headers["Content-Type"] = "application/json"
        connection, reused = self._checkout()
        try:
            connection.request(method, path, body=body, headers=headers)
            response = connection.getresponse()
            data = response.read()
        except _TRANSPORT:
            connection.close()
            if not reused:
                raise
            # A kept-alive connection the engine closed meanwhile: once more on a new one.
            connection = self._new_connection()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                data = response.read()
            except _TRANSPORT:
                connection.close()
                raise
        if response.will_close:
            connection.close()
        else:
            self._checkin(connection)
        return response.status, data, connection

    def _versioned(self, path: str) -> str:
        if self._prefix is None:
            raw = self.request("GET", "/version", versioned=False)
            self.remember_version(str(raw.get("ApiVersion") or ""))
        assert self._prefix is not None
        return self._prefix + path

    def remember_version(self, api_version: str) -> None:
        """Use ``api_version`` (the engine's own, from ``GET /version``) for every request;
        an engine older than docker-py supports is refused as ``Unsupported``."""
        found = _version_tuple(api_version)
        if not found:
            raise SystemFailure(f"the engine gave no API version ({api_version!r})")
        if found < MINIMUM_API_VERSION:
            minimum = ".".join(map(str, MINIMUM_API_VERSION))
            raise Unsupported(f"the engine's API version {api_version} is older than {minimum}")
        self._prefix = f"/v{api_version}"

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        body: Any = None,
        versioned: bool = True,
        expect_json: bool = True,
    ) -> Any:
        """``method path`` (names in it quoted with :func:`path_of`) with the
        query ``params`` and the JSON ``body``; the decoded JSON answer (None when empty or
        ``expect_json`` is False). Raises the error kind of a failed request."""
        target = self._versioned(path) if versioned else path
        if params:
            target += "?" + urlencode(params)
        payload = None if body is None else json.dumps(body).encode()
        try:
            status, data, _connection = self._exchange(method, target, payload)
        except _TRANSPORT as exc:
            raise Unavailable(f"{self.host}: {exc or type(exc).__name__}") from exc
        if status >= 300 or status < 200:
            raise kind_of_status(status, _message(data, status))
        if not expect_json or not data.strip():
            return None
        try:
            return json.loads(data)
        except ValueError as exc:
            raise SystemFailure(f"{method} {path}: the engine's answer is not JSON") from exc

    def close(self) -> None:
        """Close every pooled connection (the client may still be used: it reconnects)."""
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def _message(data: bytes, status: int) -> str:
    """The engine's error text: its JSON ``message``, else the body, else the status."""
    try:
        document = json.loads(data)
    except ValueError:
        document = None
    if isinstance(document, dict) and document.get("message"):
        return str(document["message"])
    text = data.decode(errors="replace").strip()
    return text or f"{status} {http.client.responses.get(status, '')}".strip()


def path_of(template: str, *names: str) -> str:
    """``template`` with each ``{}`` replaced by a name, quoted for a URL path as docker-py
    quotes it (``/`` and ``:`` kept: an image reference's path is matched whole)."""
    return template.format(*(quote(name, safe="/:") for name in names))
