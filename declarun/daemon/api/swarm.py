"""Swarm mode and plugins, absent: the answers of a dockerd that is in no swarm and has no
plugin installed.

declarund has no swarm mode. Clients and test suites probe for it (``GET /swarm``,
``docker node ls``, docker-py's ``client.swarm.attrs``) and read dockerd's ``503 This node
is not a swarm manager...`` as "not in a swarm"; a 404 breaks them. So every swarm path
answers as a dockerd outside a swarm does:

* ``/swarm``, ``/swarm/unlockkey``, ``/swarm/unlock``, ``/nodes...``, ``/services...``,
  ``/tasks...``, ``/secrets...``, ``/configs...``: 503 with :data:`NOT_A_MANAGER`;
* ``POST /swarm/leave``: 503 ``This node is not part of a swarm``;
* the ``.../update`` paths check their ``version`` parameter first, as dockerd does (400);
* ``POST /swarm/init`` and ``/swarm/join``: 503 saying declarund cannot take part in a
  swarm (where dockerd would start one).

Plugins: ``GET /plugins`` lists none, ``GET/DELETE /plugins/{name}...`` find none (404
``plugin "x" not found``); installing one (pull, create, upgrade, push, enable, set) is
501: declarund runs no plugins.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable

from aiohttp import web

from declarun.daemon.api.http import json_response
from declarun.errdefs import InvalidArgument, NotFound, Unavailable, Unsupported

__all__ = ["NOT_A_MANAGER", "NOT_IN_A_SWARM", "routes"]

NOT_A_MANAGER = (
    'This node is not a swarm manager. Use "docker swarm init" or "docker swarm join" to '
    "connect this node to swarm and try again."
)
NOT_IN_A_SWARM = "This node is not part of a swarm"
_NO_SWARM_MODE = "declarund does not support swarm mode: this node cannot start or join a swarm"
_NO_PLUGINS = "declarund does not support plugins"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

# Every swarm path of the v1.45 API, with the methods dockerd serves on it.
_MANAGER_ONLY: tuple[tuple[str, str], ...] = (
    ("GET", "/swarm"),
    ("GET", "/swarm/unlockkey"),
    ("POST", "/swarm/unlock"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{id}"),
    ("DELETE", "/nodes/{id}"),
    ("GET", "/services"),
    ("POST", "/services/create"),
    ("GET", "/services/{id}"),
    ("DELETE", "/services/{id}"),
    ("GET", "/services/{id}/logs"),
    ("GET", "/tasks"),
    ("GET", "/tasks/{id}"),
    ("GET", "/tasks/{id}/logs"),
    ("GET", "/secrets"),
    ("POST", "/secrets/create"),
    ("GET", "/secrets/{id}"),
    ("DELETE", "/secrets/{id}"),
    ("GET", "/configs"),
    ("POST", "/configs/create"),
    ("GET", "/configs/{id}"),
    ("DELETE", "/configs/{id}"),
)
# Updates name the version of the object they change; dockerd reads it before anything.
_VERSIONED_UPDATES: tuple[tuple[str, str], ...] = (
    (
        "/swarm/update",
        "invalid swarm version '{v}': strconv.ParseUint: parsing \"{v}\": invalid syntax",
    ),
    (
        "/nodes/{id}/update",
        "invalid node version '{v}': strconv.ParseUint: parsing \"{v}\": invalid syntax",
    ),
    (
        "/services/{id}/update",
        "invalid service version '{v}': strconv.ParseUint: parsing \"{v}\": invalid syntax",
    ),
    ("/secrets/{id}/update", "invalid secret version"),
    ("/configs/{id}/update", "invalid config version"),
)


def _raising(error: Exception) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        raise error

    return handler


def _versioned_update(message: str) -> Handler:
    async def handler(request: web.Request) -> web.StreamResponse:
        version = request.query.get("version", "")
        if not version.isdigit():
            raise InvalidArgument(message.format(v=version))
        raise Unavailable(NOT_A_MANAGER)

    return handler


async def _list_plugins(_request: web.Request) -> web.Response:
    return json_response([])


async def _no_such_plugin(request: web.Request) -> web.Response:
    raise NotFound(f'plugin "{request.match_info["name"]}" not found')


def routes() -> Iterable[web.RouteDef]:
    """The swarm and plugin routes (fixed paths before the ``{id}``/``{name}`` ones)."""
    defs = [web.route(method, path, _raising(Unavailable(NOT_A_MANAGER)))
            for method, path in _MANAGER_ONLY]  # fmt: skip
    defs += [web.post(path, _versioned_update(message)) for path, message in _VERSIONED_UPDATES]
    defs += [
        web.post("/swarm/init", _raising(Unavailable(_NO_SWARM_MODE))),
        web.post("/swarm/join", _raising(Unavailable(_NO_SWARM_MODE))),
        web.post("/swarm/leave", _raising(Unavailable(NOT_IN_A_SWARM))),
        web.get("/plugins", _list_plugins),
        web.get("/plugins/privileges", _raising(Unsupported(_NO_PLUGINS))),
        web.post("/plugins/pull", _raising(Unsupported(_NO_PLUGINS))),
        web.post("/plugins/create", _raising(Unsupported(_NO_PLUGINS))),
        web.get("/plugins/{name:.+}/json", _no_such_plugin),
        web.delete("/plugins/{name:.+}", _no_such_plugin),
        web.post("/plugins/{name:.+}/enable", _no_such_plugin),
        web.post("/plugins/{name:.+}/disable", _no_such_plugin),
        web.post("/plugins/{name:.+}/push", _no_such_plugin),
        web.post("/plugins/{name:.+}/set", _no_such_plugin),
        web.post("/plugins/{name:.+}/upgrade", _no_such_plugin),
    ]
    return defs
