"""The Docker Engine API versions declarund speaks, and the headers every response carries.

declarund implements API 1.45 (moby's Swagger file, vendored in ``tests/reference/``) and
accepts requests for 1.24 .. 1.45, as dockerd does: clients negotiate by reading
``Api-Version`` from ``/_ping`` and then prefix every path with ``/v<version>``.
"""

from __future__ import annotations

from aiohttp import web

from declarun import __version__
from declarun.errdefs import InvalidArgument

__all__ = [
    "API_VERSION",
    "API_VERSION_KEY",
    "MIN_API_VERSION",
    "SERVER_NAME",
    "check_client_version",
    "parse_api_version",
    "standard_headers",
]

API_VERSION = "1.45"
MIN_API_VERSION = "1.24"
SERVER_NAME = f"Declarun/{__version__} (linux)"
# request[API_VERSION_KEY]: the API version the client asked for ("1.45" if unversioned).
API_VERSION_KEY: web.RequestKey[str] = web.RequestKey("api_version", str)


def parse_api_version(text: str) -> tuple[int, ...]:
    """``"1.45"`` -> ``(1, 45)``; raises ValueError for anything but dot-separated numbers."""
    parts = text.split(".")
    if not text or any(not p.isdigit() for p in parts):
        raise ValueError(f"invalid API version {text!r}")
    return tuple(int(p) for p in parts)


def check_client_version(requested: str) -> None:
    """Refuse a version outside MIN_API_VERSION .. API_VERSION with dockerd's message (400)."""
    try:
        wanted = parse_api_version(requested)
    except ValueError:
        raise InvalidArgument(f"invalid API version {requested!r}") from None
    if wanted < parse_api_version(MIN_API_VERSION):
        raise InvalidArgument(
            f"client version {requested} is too old. Minimum supported API version is "
            f"{MIN_API_VERSION}, please upgrade your client to a newer version"
        )
    if wanted > parse_api_version(API_VERSION):
        raise InvalidArgument(
            f"client version {requested} is too new. Maximum supported API version is {API_VERSION}"
        )


def standard_headers() -> dict[str, str]:
    """Headers dockerd puts on every response; the docker CLI reads ``Api-Version`` and ``Ostype``."""
    return {
        "Api-Version": API_VERSION,
        "Server": SERVER_NAME,
        "Docker-Experimental": "false",
        "Ostype": "linux",
    }
