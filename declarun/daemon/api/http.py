"""Small HTTP helpers every API area uses: query parameters, JSON bodies, JSON streams.

They follow dockerd's conventions, so handlers read like the API reference:

* booleans in the query string are false for ``""``, ``0``, ``no``, ``false`` and ``none``
  (any case), true otherwise (dockerd's ``httputils.BoolValue``);
* a malformed number or JSON body is a 400 with a message naming the parameter;
* streamed responses (``/events``, pull progress) send their headers at once and each JSON
  document as one line, flushed as it is written.
"""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web

from declarun.errdefs import InvalidArgument

__all__ = [
    "compact_json",
    "json_response",
    "parse_json_text",
    "query_bool",
    "query_int",
    "read_json",
    "start_json_stream",
    "write_json_line",
]

_FALSE_WORDS = frozenset({"", "0", "no", "false", "none"})


def compact_json(document: Any) -> str:
    """JSON as dockerd's encoder writes it: no spaces, one trailing newline."""
    return json.dumps(document, separators=(",", ":")) + "\n"


def json_response(document: Any, status: int = 200) -> web.Response:
    """A complete ``application/json`` response.

    The body is given as bytes so that no ``charset`` is appended: the docker CLI only
    decodes an error body whose Content-Type is exactly ``application/json``.
    """
    return web.Response(
        body=compact_json(document).encode(), status=status, content_type="application/json"
    )


def query_bool(request: web.Request, name: str, default: bool = False) -> bool:
    """A boolean query parameter the way dockerd reads it; ``default`` when absent."""
    if name not in request.query:
        return default
    return request.query[name].strip().lower() not in _FALSE_WORDS


def query_int(request: web.Request, name: str, default: int) -> int:
    """An integer query parameter; 400 if it is present but not a number."""
    raw = request.query.get(name, "")
    if raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidArgument(f"invalid value for {name}: {raw!r} is not an integer") from None


async def read_json(request: web.Request, *, default: Any = None) -> Any:
    """The request body as JSON; ``default`` for an empty body, 400 if it does not parse.

    A body declared larger than the server's limit is refused (413) before any of it is
    read, so a client cannot hold a handler waiting for a body it will never send.
    """
    declared = request.content_length
    if declared is not None and declared > request.client_max_size:
        raise web.HTTPRequestEntityTooLarge(max_size=request.client_max_size, actual_size=declared)
    body = await request.read()
    if not body.strip():
        return default
    return parse_json_text(body)


# A "\ud800"-style escape: only then can a parsed string hold a lone surrogate.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F]")


def parse_json_text(body: bytes) -> Any:
    """``body`` as JSON, or InvalidArgument (400) saying why not.

    Stricter than ``json.loads`` on bytes, which lets invalid UTF-8 surrogates through and
    recurses once per nesting level: the body must be UTF-8, may not nest deeper than the
    interpreter can follow, and may not spell a lone UTF-16 surrogate (no UTF-8 form can
    carry one onwards: into a label, a file name, a log line).
    """
    try:
        text = body.decode("utf-8")
        value = json.loads(text)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidArgument(f"invalid JSON body: {exc}") from None
    except RecursionError:
        raise InvalidArgument("invalid JSON body: nested too deeply") from None
    if _SURROGATE_ESCAPE.search(body):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            raise InvalidArgument(
                "invalid JSON body: a \\u escape names a lone UTF-16 surrogate"
            ) from None
        except RecursionError:
            raise InvalidArgument("invalid JSON body: nested too deeply") from None
    return value


async def start_json_stream(request: web.Request, status: int = 200) -> web.StreamResponse:
    """Start a streamed ``application/json`` response; its headers reach the client at once."""
    response = web.StreamResponse(status=status)
    response.content_type = "application/json"
    await response.prepare(request)
    return response


async def write_json_line(response: web.StreamResponse, document: Any) -> None:
    """Write one JSON document and a newline to a stream started by start_json_stream()."""
    await response.write(compact_json(document).encode())
