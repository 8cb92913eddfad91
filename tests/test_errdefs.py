"""The error kinds: classification is by kind, most specific first."""

from __future__ import annotations

import pytest

from declarun import errdefs
from declarun.errors import DaemonError, DeclarunError


class _ImageMissing(DaemonError, errdefs.NotFound):
    """A domain error that is also of a kind, as the stores define theirs."""


@pytest.mark.parametrize(
    "kind",
    [
        errdefs.NotFound,
        errdefs.Conflict,
        errdefs.InvalidArgument,
        errdefs.NotModified,
        errdefs.Unauthorized,
        errdefs.Forbidden,
        errdefs.Unavailable,
        errdefs.Unsupported,
        errdefs.SystemFailure,
    ],
)
def test_each_kind_is_its_own_kind_and_a_declarun_error(kind: type[errdefs.ErrorKind]) -> None:
    exc = kind("boom")
    assert errdefs.kind_of(exc) is kind
    assert isinstance(exc, DeclarunError)
    assert str(exc) == "boom"


def test_a_domain_error_is_classified_by_the_kind_it_inherits() -> None:
    exc = _ImageMissing("no such image: x")
    assert errdefs.kind_of(exc) is errdefs.NotFound
    assert isinstance(exc, DaemonError)
    assert isinstance(exc, LookupError)  # old ``except LookupError`` clauses keep working


def test_errors_of_no_kind_are_left_unclassified() -> None:
    assert errdefs.kind_of(RuntimeError("bug")) is None
    assert errdefs.kind_of(DaemonError("cannot start")) is None


def test_both_edges_read_one_status_table() -> None:
    """declarund answers a kind with a status; the engine API client reads it back as the
    same kind (an unknown 4xx/5xx falls back to InvalidArgument/SystemFailure)."""
    from declarun.daemon.api.errors import status_for
    from declarun.engine.apiclient import kind_of_status

    for kind, status in errdefs.HTTP_STATUS.items():
        assert status_for(kind("x")) == status
        assert type(kind_of_status(status, "x")) is kind
    assert type(kind_of_status(418, "teapot")) is errdefs.InvalidArgument
    assert type(kind_of_status(502, "gateway")) is errdefs.SystemFailure
