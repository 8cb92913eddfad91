"""Errors a handler raises to answer the client with Docker's status code and JSON body.

A handler never builds an error response itself: it raises one of these, and the server's
error middleware turns it into ``{"message": "..."}`` with the status below, exactly as
dockerd does (its ``errdefs`` classes map to the same codes)::

    ApiError(status, message)       any status
    ├── BadRequest          400     invalid parameter or body (errdefs.InvalidParameter)
    ├── Unauthorized        401     registry credentials refused (errdefs.Unauthorized)
    ├── Forbidden           403     not allowed (errdefs.Forbidden)
    ├── NotFound            404     no such image, container, ... (errdefs.NotFound)
    ├── Conflict            409     name in use, image in use (errdefs.Conflict)
    ├── NotModified         304     already started / stopped (errdefs.NotModified)
    ├── InternalError       500     the daemon failed (errdefs.System)
    └── Unsupported         501     part of the API declarund does not serve (errdefs.NotImplemented)

Errors of the project hierarchy (:mod:`declarun.errors`) raised by lower layers are mapped
by :func:`status_for`: a bad image reference is the client's fault (400), other daemon
errors are 500 with their message (and no traceback in the log, since they were raised on
purpose).
"""

from __future__ import annotations

from declarun.errors import DaemonError, DeclarunError, ImageReferenceError

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "InternalError",
    "NotFound",
    "NotModified",
    "Unauthorized",
    "Unsupported",
    "status_for",
]


class ApiError(DaemonError):
    """An error answered to the API client as ``{"message": message}`` with ``status``."""

    status: int = 500

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        if status is not None:
            self.status = status


class BadRequest(ApiError):
    """400: the request has an invalid parameter or body."""

    status = 400


class Unauthorized(ApiError):
    """401: the registry refused the credentials."""

    status = 401


class Forbidden(ApiError):
    """403: the operation is not allowed."""

    status = 403


class NotFound(ApiError):
    """404: the object named in the request does not exist."""

    status = 404


class Conflict(ApiError):
    """409: the request conflicts with the current state (name in use, image in use)."""

    status = 409


class NotModified(ApiError):
    """304: nothing to do (container already started or stopped); sent with an empty body."""

    status = 304


class InternalError(ApiError):
    """500: the daemon failed to do what was asked."""

    status = 500


class Unsupported(ApiError):
    """501: a part of the Docker API that declarund does not serve."""

    status = 501


def status_for(exc: DeclarunError) -> int:
    """The HTTP status Docker would answer for a declarun error raised by a lower layer."""
    if isinstance(exc, ApiError):
        return exc.status
    if isinstance(exc, ImageReferenceError):
        return 400
    return 500
