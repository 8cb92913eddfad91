"""A fault-injecting HTTP proxy in front of a real registry (the CNCF distribution registry
the tests run on loopback), for the registry fault tests.

:class:`FaultProxy` forwards every request to the upstream registry unchanged, except those
a scripted :class:`Fault` matches (by method and a regular expression on the path, for its
first ``times`` matching requests). Kinds of fault:

``status``
    Answer ``status`` (500, 502, 503, 429...) with ``headers`` (``Retry-After``) and a
    registry error body instead of forwarding.
``reset``
    Forward, but abort the connection (TCP RST) after ``after`` bytes of the body.
``truncate``
    Forward with the full ``Content-Length`` but close the connection cleanly after
    ``after`` bytes.
``short-length``
    Forward the whole body but announce ``after`` bytes fewer in ``Content-Length``.
``corrupt``
    Forward with one byte of the body flipped (same length: a digest mismatch).
``stall``
    Send the headers and ``after`` bytes, then wait ``seconds`` before carrying on.
``lie-size``
    For a manifest: add ``after`` to every layer's size (and drop the upstream's digest
    header, so the manifest is taken as served).
``redirect-fail``
    Answer ``307`` to a URL of the proxy that then fails with ``status``.

With ``token=True`` the proxy also plays a token server: ``/v2/`` requests without its
bearer token get ``401`` and a ``WWW-Authenticate: Bearer realm=<proxy>/token`` challenge;
``/token`` hands out the token -- unless a fault matches ``GET /token`` (``status``: the
token endpoint fails) or ``bad_token`` is set (it hands out a token the proxy then refuses:
a loop on 401). ``log`` keeps ``METHOD path Range`` of every request seen.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import aiohttp
from aiohttp import web

from tests.support.loopback import serve_app

__all__ = ["Fault", "FaultProxy", "running_proxy"]

_HOP_HEADERS = frozenset(
    {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "content-encoding"}
)
_TOKEN = "proxy-token"


@dataclass
class Fault:
    """One scripted fault: for the first ``times`` requests ``method`` ``path_re`` matches."""

    kind: str
    path_re: str
    method: str = "GET"
    times: int = 1
    status: int = 503
    headers: dict[str, str] = field(default_factory=dict)
    after: int = 0
    seconds: float = 0.0
    hits: int = 0


@dataclass
class FaultProxy:
    """The proxy's state: the upstream, the script, what it saw (see the module docstring)."""

    upstream: str
    faults: list[Fault] = field(default_factory=list)
    token: bool = False
    bad_token: bool = False
    log: list[str] = field(default_factory=list)
    base: str = ""
    _session: aiohttp.ClientSession | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``, for image references."""
        return self.base.removeprefix("http://")

    def script(self, *faults: Fault, token: bool = False, bad_token: bool = False) -> None:
        """Replace the script (and forget what was seen)."""
        self.faults = list(faults)
        self.token, self.bad_token = token, bad_token
        self.log.clear()

    def unused(self) -> list[Fault]:
        """Faults of the script that never fired."""
        return [f for f in self.faults if f.hits == 0]

    def _fault(self, method: str, path: str) -> Fault | None:
        for fault in self.faults:
            if (
                fault.hits < fault.times
                and fault.method == method
                and re.search(fault.path_re, path)
            ):
                fault.hits += 1
                return fault
        return None

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path_qs
        self.log.append(f"{request.method} {path} {request.headers.get('Range', '')}".strip())
        fault = self._fault(request.method, request.path)
        if request.path.startswith("/_redirected/"):
            return _error(int(request.path.rsplit("/", 1)[1]), "the redirect target fails")
        if request.path == "/token":
            if fault is not None and fault.kind == "status":
                return _error(fault.status, "token service fails", fault.headers)
            token = "refused" if self.bad_token else _TOKEN
            return web.json_response({"token": token, "access_token": token})
        authorized = request.headers.get("Authorization") == f"Bearer {_TOKEN}"
        if self.token and request.path.startswith("/v2/") and not authorized:
            challenge = f'Bearer realm="{self.base}/token",service="faultproxy"'
            return _error(401, "authentication required", {"WWW-Authenticate": challenge})
        if fault is not None and fault.kind == "status":
            return _error(fault.status, f"injected {fault.status}", fault.headers)
        if fault is not None and fault.kind == "redirect-fail":
            raise web.HTTPTemporaryRedirect(f"{self.base}/_redirected/{fault.status}")
        if fault is not None and fault.kind == "reset" and request.method != "GET":
            await request.read()  # an upload lost on the way: nothing reaches the registry
            if request.transport is not None:
                request.transport.abort()
            raise ConnectionResetError("injected reset")
        return await self._forward(request, fault)

    async def _forward(self, request: web.Request, fault: Fault | None) -> web.StreamResponse:
        assert self._session is not None
        headers = {
            k: v
            for k, v in request.headers.items()
            if k.lower() not in _HOP_HEADERS and k.lower() != "authorization"
        }
        body = await request.read()
        async with self._session.request(
            request.method,
            self.upstream + request.path_qs,
            headers=headers,
            data=body if body else None,
            allow_redirects=False,
        ) as upstream:
            try:
                data = await upstream.read()
            except aiohttp.ClientPayloadError:
                # The registry announces a length it does not send with some errors (a 416
                # for a range past the end): pass the status on without a body.
                if upstream.status < 400:
                    raise
                data = b""
            out_headers = {
                k: v for k, v in upstream.headers.items() if k.lower() not in _HOP_HEADERS
            }
            if "Location" in out_headers:
                out_headers["Location"] = out_headers["Location"].replace(self.upstream, self.base)
            status = upstream.status
        kind = fault.kind if fault is not None else ""
        if kind == "lie-size" and data:
            manifest = json.loads(data)
            for layer in manifest.get("layers", []):
                layer["size"] += fault.after if fault is not None else 0
            data = json.dumps(manifest).encode()
            out_headers.pop("Docker-Content-Digest", None)
        if kind == "corrupt" and data:
            middle = len(data) // 2
            data = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1 :]
        length = len(data)
        if kind == "short-length" and fault is not None:
            length = max(len(data) - fault.after, 0)
        response = web.StreamResponse(status=status, headers=out_headers)
        response.content_length = length
        await response.prepare(request)
        if request.method == "HEAD" or not data:
            await response.write_eof()
            return response
        transport = request.transport
        if kind in ("reset", "truncate", "stall") and fault is not None:
            await response.write(data[: fault.after])
            if kind == "stall":
                await asyncio.sleep(fault.seconds)
                await response.write(data[fault.after :])
                await response.write_eof()
                return response
            await response.drain()
            if transport is not None:
                if kind == "reset":
                    transport.abort()
                else:
                    transport.close()
            raise ConnectionResetError("injected")  # the connection is gone
        await response.write(data[:length])
        await response.write_eof()
        if kind == "short-length" and transport is not None:
            transport.close()  # the rest of the body was never announced: drop it
        return response


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> web.Response:
    code = {401: "UNAUTHORIZED", 429: "TOOMANYREQUESTS"}.get(status, "UNKNOWN")
    body = {"errors": [{"code": code, "message": message}]}
    return web.json_response(body, status=status, headers=headers)


@contextlib.asynccontextmanager
async def running_proxy(upstream: str) -> AsyncIterator[FaultProxy]:
    """Serve a :class:`FaultProxy` in front of ``upstream`` (``http://127.0.0.1:N``)."""
    proxy = FaultProxy(upstream)
    app = web.Application(client_max_size=1 << 30)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        proxy._session = session
        async with serve_app(app) as base:
            proxy.base = base
            yield proxy
