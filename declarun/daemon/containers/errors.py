"""Errors of the container configuration layer (create requests, users, bundles).

Both are user-caused: the API layer answers them with a 400 (create) or a start failure,
never a traceback::

    DaemonError
    ├── InvalidCreateRequest   a create request (or its merge with the image) is invalid
    └── UnknownUserError       ``User`` names a user or group the image does not have
"""

from __future__ import annotations

from declarun.errors import DaemonError

__all__ = ["InvalidCreateRequest", "UnknownUserError"]


class InvalidCreateRequest(DaemonError, ValueError):
    """A ``POST /containers/create`` body is invalid; the message is Docker's wording."""


class UnknownUserError(DaemonError):
    """``User`` cannot be resolved inside the container's root filesystem."""
