"""Errors of the container configuration layer (create requests, users, bundles).

Both are user-caused, so both are invalid arguments (:mod:`declarun.errdefs`): the API
answers them with a 400 (create, exec) or records them as a start failure, never a
traceback::

    DaemonError + InvalidArgument
    ├── InvalidCreateRequest   a create request (or its merge with the image) is invalid
    └── UnknownUserError       ``User`` names a user or group the image does not have
"""

from __future__ import annotations

from declarun.errdefs import InvalidArgument
from declarun.errors import DaemonError

__all__ = ["InvalidCreateRequest", "UnknownUserError"]


class InvalidCreateRequest(DaemonError, InvalidArgument):
    """A ``POST /containers/create`` body is invalid; the message is Docker's wording."""


class UnknownUserError(DaemonError, InvalidArgument):
    """``User`` cannot be resolved inside the container's root filesystem."""
