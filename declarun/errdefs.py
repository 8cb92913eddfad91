"""Error kinds: what went wrong, not how a transport reports it.

containerd's ``errdefs`` is the model. Every layer below an edge raises an error that *is* one
of these kinds (directly, or as a domain error that also inherits the kind, such as an
image that is not in the store), and only an edge translates a kind into its own vocabulary:
declarund's ``daemon/api`` into an HTTP status and Docker's ``{"message": ...}`` body, the
engine adapter (``declarun/engine``) from docker-py's exceptions into these kinds, the CLI
into a message and an exit code. Code that must react to a kind catches the kind::

    try:
        await containers.remove(name)
    except NotFound:
        pass  # already gone: removal is idempotent

The kinds, with the status Docker's API gives each (:data:`HTTP_STATUS`, the one table both
edges read: declarund answers a kind with it, the engine API client reads a status back into
the kind)::

    DeclarunError
    ├── NotFound            404  no such object (image, container, network, volume, blob, ...)
    ├── Conflict            409  already exists, in use, or in the wrong state for the request
    ├── InvalidArgument     400  a parameter or body the caller got wrong
    ├── NotModified         304  nothing to do (already started, already stopped)
    ├── Unauthorized        401  credentials missing or refused (a registry's answer)
    ├── Forbidden           403  not allowed, whatever the credentials
    ├── Unavailable         503  a dependency is not there now (a registry, a runtime, swarm)
    ├── Unsupported         501  a feature declarun does not have
    └── SystemFailure       500  the system failed doing what was asked (disk, runtime, kernel)

A kind carries only its message. Kinds are not exclusive with the rest of the tree: a domain
error such as ``ImageNotFoundError(MetadataError, NotFound)`` is both a daemon error and a
not-found, so existing ``except`` clauses keep working while edges map by kind.
"""

from __future__ import annotations

from declarun.errors import DeclarunError

__all__ = [
    "HTTP_STATUS",
    "Conflict",
    "ErrorKind",
    "Forbidden",
    "InvalidArgument",
    "NotFound",
    "NotModified",
    "SystemFailure",
    "Unauthorized",
    "Unavailable",
    "Unsupported",
    "kind_of",
]


class ErrorKind(DeclarunError):
    """Base of the kinds; never raised itself."""


class NotFound(ErrorKind, LookupError):
    """The object named does not exist."""


class Conflict(ErrorKind):
    """The object already exists, is in use, or is in a state that forbids the request."""


class InvalidArgument(ErrorKind, ValueError):
    """The caller passed a parameter or body that cannot be right."""


class NotModified(ErrorKind):
    """The request asked for the state the object is already in; nothing was done."""


class Unauthorized(ErrorKind):
    """Credentials were missing or refused."""


class Forbidden(ErrorKind):
    """The operation is not allowed, whatever the credentials."""


class Unavailable(ErrorKind):
    """Something the request depends on is not reachable or not running now."""


class Unsupported(ErrorKind):
    """A feature declarun does not have (errdefs.NotImplemented; renamed so as not to shadow the
    builtin constant)."""


class SystemFailure(ErrorKind):
    """The system failed while doing what was asked (disk full, runtime crash, ...)."""


# Most specific first: an error may inherit more than one kind (a conflict that is also a
# not-modified is not a thing, but a domain error may mix a kind with LookupError/ValueError).
_KINDS: tuple[type[ErrorKind], ...] = (
    NotModified,
    NotFound,
    Conflict,
    InvalidArgument,
    Unauthorized,
    Forbidden,
    Unavailable,
    Unsupported,
    SystemFailure,
)


def kind_of(exc: BaseException) -> type[ErrorKind] | None:
    """The kind ``exc`` belongs to, or None when it is of no kind (an unexpected error)."""
    for kind in _KINDS:
        if isinstance(exc, kind):
            return kind
    return None


#: The HTTP status Docker's API answers for each kind (dockerd's errdefs classes).
HTTP_STATUS: dict[type[ErrorKind], int] = {
    NotModified: 304,
    InvalidArgument: 400,
    Unauthorized: 401,
    Forbidden: 403,
    NotFound: 404,
    Conflict: 409,
    SystemFailure: 500,
    Unsupported: 501,
    Unavailable: 503,
}
