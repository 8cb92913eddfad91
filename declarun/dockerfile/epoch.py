"""``SOURCE_DATE_EPOCH``: timestamps clamped so that the same inputs give the same image.

When the caller gives ``SOURCE_DATE_EPOCH`` (as a build arg, or else in the builder's
environment) every timestamp the build writes — the image's ``created``, each new history
entry's ``created``, and the modification times in the layer tars — is clamped to it:
``min(actual, epoch)``. Base image history keeps its own times (they are inputs).
Timestamps are written as Go's ``time.RFC3339Nano`` (``2024-01-02T03:04:05.123456789Z``,
trailing zeros of the fraction dropped), as dockerd writes them.
"""

from __future__ import annotations

import time
from collections.abc import Mapping

from declarun.errdefs import InvalidArgument

__all__ = ["clamp_ns", "created_timestamp", "rfc3339_nano", "source_date_epoch"]

_NAME = "SOURCE_DATE_EPOCH"


def source_date_epoch(
    build_args: Mapping[str, str], environ: Mapping[str, str] | None = None
) -> int | None:
    """The epoch in seconds, from the build arg or else ``environ``; None when unset/empty.

    Raises InvalidArgument for a value that is not a non-negative integer.
    """
    value = build_args.get(_NAME)
    if value is None and environ is not None:
        value = environ.get(_NAME)
    if value is None or value == "":
        return None
    if not value.isdigit():
        raise InvalidArgument(f"invalid SOURCE_DATE_EPOCH: {value!r} is not a number of seconds")
    return int(value)


def clamp_ns(timestamp_ns: int, epoch: int | None) -> int:
    """``timestamp_ns`` clamped to ``epoch`` (seconds); unchanged when there is no epoch."""
    if epoch is None:
        return timestamp_ns
    return min(timestamp_ns, epoch * 1_000_000_000)


def rfc3339_nano(timestamp_ns: int) -> str:
    """Go's RFC3339Nano in UTC for a time in nanoseconds since the epoch."""
    seconds, nanos = divmod(timestamp_ns, 1_000_000_000)
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    fraction = f"{nanos:09d}".rstrip("0")
    return f"{text}.{fraction}Z" if fraction else f"{text}Z"


def created_timestamp(now_ns: int | None = None, epoch: int | None = None) -> str:
    """The ``created`` text for something made now (or at ``now_ns``), clamped to ``epoch``."""
    moment = time.time_ns() if now_ns is None else now_ns
    return rfc3339_nano(clamp_ns(moment, epoch))
