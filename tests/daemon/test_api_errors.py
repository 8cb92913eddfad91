"""Error kinds become Docker's statuses in one place (pure logic; the frame is in test_server)."""

from __future__ import annotations

import pytest

from declarun import errdefs
from declarun.daemon.api.errors import NOT_MODIFIED, status_for
from declarun.daemon.containers.config.errors import InvalidCreateRequest
from declarun.daemon.containers.lifecycle.launch import StartBroken, StartRefused
from declarun.daemon.images.content import BlobNotFoundError
from declarun.daemon.metadata import AmbiguousImageError, ImageInUseError, ImageNotFoundError
from declarun.daemon.networks.errors import NetworkError, PoolExhaustedError
from declarun.daemon.snapshots import SnapshotInUse
from declarun.errors import DaemonError, ImageReferenceError


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (errdefs.NotModified("container already started"), 304),
        (errdefs.InvalidArgument("bad"), 400),
        (errdefs.Unauthorized("who"), 401),
        (errdefs.Forbidden("no"), 403),
        (errdefs.NotFound("No such container: x"), 404),
        (errdefs.Conflict("in use"), 409),
        (errdefs.SystemFailure("disk"), 500),
        (errdefs.Unsupported("no"), 501),
        (errdefs.Unavailable("later"), 503),
    ],
)
def test_each_kind_has_dockers_status(error: errdefs.ErrorKind, status: int) -> None:
    assert status_for(error) == status


def test_domain_errors_answer_with_their_kinds_status() -> None:
    assert status_for(ImageNotFoundError("No such image: x")) == 404
    assert status_for(AmbiguousImageError("ambiguous")) == 400
    assert status_for(ImageInUseError("used")) == 409
    assert status_for(BlobNotFoundError("gone")) == 404
    assert status_for(SnapshotInUse("parent")) == 409
    assert status_for(InvalidCreateRequest("No command specified")) == 400
    assert status_for(PoolExhaustedError("no subnet")) == 403
    assert status_for(StartRefused("exec: not found", 127)) == 400
    assert status_for(StartBroken("runc failed", 128)) == 500


def test_errors_of_no_kind_are_the_daemons_failure() -> None:
    assert status_for(ImageReferenceError("invalid reference format")) == 400
    assert status_for(NetworkError("CNI failed")) == 500
    assert status_for(DaemonError("broken")) == 500
    assert status_for(RuntimeError("bug")) == 500


def test_every_kind_is_mapped() -> None:
    kinds = {
        k
        for k in vars(errdefs).values()
        if isinstance(k, type) and issubclass(k, errdefs.ErrorKind)
    }
    assert kinds - {errdefs.ErrorKind} == set(errdefs.HTTP_STATUS)
    assert NOT_MODIFIED == 304
