"""Error kinds as Docker's HTTP answers: the one place a kind becomes a status code.

Every layer below the API raises an error of a kind (:mod:`declarun.errdefs`): the kind
itself (``NotFound("No such container: web")``) or a domain error that inherits one
(``ImageNotFoundError(MetadataError, NotFound)``). Handlers raise kinds too, for what is
wrong with the request itself. The server's error middleware asks :func:`status_for`
and answers ``{"message": str(exc)}`` with that status, exactly as dockerd does (its
``errdefs`` classes map to the same codes)::

    kind                 status   dockerd's errdefs class
    NotModified          304      errdefs.NotModified (sent with an empty body)
    InvalidArgument      400      errdefs.InvalidParameter
    Unauthorized         401      errdefs.Unauthorized
    Forbidden            403      errdefs.Forbidden
    NotFound             404      errdefs.NotFound
    Conflict             409      errdefs.Conflict
    SystemFailure        500      errdefs.System
    Unsupported          501      errdefs.NotImplemented
    Unavailable          503      errdefs.Unavailable

An error of the project's tree that has no kind is the daemon failing (500, its message,
logged without a traceback since it was raised on purpose) -- except a bad image reference,
whose domain error (:class:`~declarun.errors.ImageReferenceError`, shared with the client)
is the caller's fault: 400, as dockerd answers ``invalid reference format``.
"""

from __future__ import annotations

from declarun.errdefs import HTTP_STATUS, NotModified, kind_of
from declarun.errors import ImageReferenceError

__all__ = ["NOT_MODIFIED", "status_for"]

#: The one status whose answer carries no body.
NOT_MODIFIED = HTTP_STATUS[NotModified]


def status_for(exc: BaseException) -> int:
    """The HTTP status Docker would answer for ``exc`` (500 for an error of no kind)."""
    kind = kind_of(exc)
    if kind is not None:
        return HTTP_STATUS[kind]
    if isinstance(exc, ImageReferenceError):
        return 400
    return 500
