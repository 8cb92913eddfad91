"""``POST /declarun/check?repair=``: ``declarun daemon check`` against the running daemon.

Not part of the Docker Engine API (hence the ``/declarun/`` prefix, which no Docker path
uses): the daemon checks its own data root (see :mod:`declarun.daemon.check`) and answers
``{"Problems": [...], "Repaired": [...], "Notes": [...]}``, each entry with the ``Line``
the CLI prints. One check at a time: a second request waits for the first.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable

from aiohttp import web

from declarun.daemon.api.http import json_response, query_bool
from declarun.daemon.check import CheckContext, run_check

__all__ = ["CHECK_PATH", "routes"]

#: The path of the check endpoint (also under the ``/v<version>`` prefix).
CHECK_PATH = "/declarun/check"


def routes(context: CheckContext) -> Iterable[web.RouteDef]:
    """The check area's one route."""
    lock = asyncio.Lock()

    async def check(request: web.Request) -> web.Response:
        repair = query_bool(request, "repair")
        async with lock:
            # A client going away must not cut a repair in the middle.
            report = await asyncio.shield(run_check(context, repair=repair))
        return json_response(report.to_json())

    return [web.post(CHECK_PATH, check)]
