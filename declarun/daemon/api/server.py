"""declarund's HTTP application: the frame every API area's routes plug into.

**API areas.** Each area is a module ``declarun/daemon/api/<area>.py`` with a
``routes(...)`` function taking the typed services it uses and returning its route
definitions (``[web.get("/_ping", handler), ...]``). The composition root
(:func:`declarun.daemon.wiring.api_routes`) calls every area's ``routes`` explicitly and
hands the result to :func:`make_app`; this module knows no area and no service. Handlers
raise error kinds (:mod:`declarun.errdefs`) for errors.

**Versions.** Every route answers both unversioned (``/images/json``) and versioned
(``/v1.45/images/json``) paths; a version outside 1.24 .. 1.45 is refused with dockerd's
400 message. The version the client asked for (or 1.45) is ``request[API_VERSION_KEY]``.

**Errors** are Docker's ``{"message": ...}``: 404 ``page not found`` for unknown routes
(and, as in dockerd, for a known path with the wrong method), the status of an error's
kind (:mod:`declarun.daemon.api.errors`), and 500 for anything unexpected — with the traceback in the daemon log, never sent.

**Streams and hijack.** A handler may stream (:func:`~declarun.daemon.api.http.start_json_stream`)
or take the raw connection (:func:`~declarun.daemon.api.hijack.hijack`). Handlers are cancelled
when their client disconnects (aiohttp's ``handler_cancellation``, set by the runner in
:mod:`declarun.daemon.main`), as dockerd cancels a request's context.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence

from aiohttp import web

from declarun.daemon.api.apiversion import (
    API_VERSION,
    API_VERSION_KEY,
    check_client_version,
    standard_headers,
)
from declarun.daemon.api.errors import NOT_MODIFIED, status_for
from declarun.daemon.api.hijack import HIJACKED_KEY, hijacked_response
from declarun.daemon.api.http import json_response
from declarun.errors import DeclarunError

__all__ = [
    "API_VERSION_KEY",
    "CLIENT_MAX_SIZE",
    "VERSION_PREFIX",
    "add_versioned_route",
    "make_app",
]

log = logging.getLogger("declarun.daemon.api.server")

# The versioned twin of each route; dockerd's router uses the same pattern.
VERSION_PREFIX = r"/v{api_version:[0-9.]+}"
# Large uploads (image load/import) are read as streams; this bounds JSON bodies.
CLIENT_MAX_SIZE = 32 * 1024 * 1024
_STARTED_KEY: web.RequestKey[web.StreamResponse] = web.RequestKey(
    "declarun_response_started", web.StreamResponse
)


def add_versioned_route(router: web.UrlDispatcher, route: web.AbstractRouteDef) -> None:
    """Register ``route`` at its own path and under the ``/v<version>`` prefix."""
    if not isinstance(route, web.RouteDef):
        raise TypeError(f"only plain routes can be versioned, not {route!r}")
    if not route.path.startswith("/"):
        raise ValueError(f"route path must start with '/': {route.path!r}")
    route.register(router)
    kwargs = {k: v for k, v in route.kwargs.items() if k != "name"}  # names must be unique
    web.RouteDef(route.method, VERSION_PREFIX + route.path, route.handler, kwargs).register(router)


def make_app(
    routes: Iterable[web.AbstractRouteDef], *, on_shutdown: Sequence[Callable[[], None]] = ()
) -> web.Application:
    """The aiohttp application serving ``routes``, each also under the ``/v<version>`` prefix.

    ``on_shutdown`` runs when the application starts shutting down, before it waits for
    open requests: the daemon ends every ``/events`` stream there, so shutdown does not wait
    for clients to hang up.
    """
    app = web.Application(
        middlewares=[_error_middleware, _version_middleware],
        client_max_size=CLIENT_MAX_SIZE,
    )
    app.on_response_prepare.append(_add_standard_headers)
    for route in routes:
        add_versioned_route(app.router, route)
    for callback in on_shutdown:
        app.on_shutdown.append(_shutdown_hook(callback))
    return app


def _shutdown_hook(callback: Callable[[], None]) -> Callable[[web.Application], Awaitable[None]]:
    async def run(_app: web.Application) -> None:
        callback()

    return run


async def _add_standard_headers(request: web.Request, response: web.StreamResponse) -> None:
    request[_STARTED_KEY] = response
    for name, value in standard_headers().items():
        response.headers[name] = value


def _error_response(status: int, message: str) -> web.StreamResponse:
    if status == NOT_MODIFIED:
        return web.Response(status=status)  # a 304 carries no body
    return json_response({"message": message}, status=status)


@web.middleware
async def _error_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        if HIJACKED_KEY in request:
            return hijacked_response(request)
        if exc.status < 400:
            raise
        if request.match_info.http_exception is not None:
            # No route matched: dockerd answers 404 for unknown paths and wrong methods alike.
            return _error_response(404, "page not found")
        return _error_response(exc.status, exc.text or exc.reason)
    except DeclarunError as exc:
        status = status_for(exc)
        message = str(exc)
        if status >= 500:
            log.error("%s %s: %s", request.method, request.path, message)
        return _after_failure(request, status, message)
    except Exception as exc:
        log.exception("unexpected error in %s %s", request.method, request.path)
        return _after_failure(request, 500, str(exc) or type(exc).__name__)
    if HIJACKED_KEY in request:
        return hijacked_response(request)
    return response


def _after_failure(request: web.Request, status: int, message: str) -> web.StreamResponse:
    """The error response, unless the handler had already started its own response."""
    if HIJACKED_KEY in request:
        return hijacked_response(request)
    started: web.StreamResponse | None = request.get(_STARTED_KEY)
    if started is not None:
        # Headers are gone; the best left is to end the stream cleanly.
        log.warning(
            "%s %s failed after its response started: %s", request.method, request.path, message
        )
        return started
    return _error_response(status, message)


@web.middleware
async def _version_middleware(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    requested = request.match_info.get("api_version")
    if requested is not None:
        check_client_version(requested)
    request[API_VERSION_KEY] = requested or API_VERSION
    return await handler(request)
