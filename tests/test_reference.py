"""Image references are parsed and normalised exactly as the docker CLI does."""

from __future__ import annotations

import pytest

from declarun.errors import ImageReferenceError
from declarun.reference import (
    ImageReference,
    is_image_id,
    parse_reference,
    validate_digest,
)

D = "sha256:" + "a" * 64
HEX64 = "0123456789abcdef" * 4

# (input, canonical string, familiar string)
VALID = [
    ("busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("busybox:1.36", "docker.io/library/busybox:1.36", "busybox:1.36"),
    ("docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("index.docker.io/user/app:v1", "docker.io/user/app:v1", "user/app:v1"),
    ("docker.io/library/busybox", "docker.io/library/busybox:latest", "busybox:latest"),
    ("user/app", "docker.io/user/app:latest", "user/app:latest"),
    ("library/a/b", "docker.io/library/a/b:latest", "library/a/b:latest"),
    ("localhost/x", "localhost/x:latest", "localhost/x:latest"),
    ("localhost:5000/x", "localhost:5000/x:latest", "localhost:5000/x:latest"),
    ("127.0.0.1:5000/busybox:test", "127.0.0.1:5000/busybox:test", "127.0.0.1:5000/busybox:test"),
    ("[::1]:5000/foo", "[::1]:5000/foo:latest", "[::1]:5000/foo:latest"),
    ("host.example/a/b:tag@" + D, f"host.example/a/b:tag@{D}", f"host.example/a/b:tag@{D}"),
    ("busybox@" + D, f"docker.io/library/busybox@{D}", f"busybox@{D}"),
    ("Example.COM/app", "Example.COM/app:latest", "Example.COM/app:latest"),
    # An uppercase first component can only be a domain: namespaces are lowercase.
    ("Registry/app", "Registry/app:latest", "Registry/app:latest"),
    ("myhost:5000/a__b/c-d.e_f---g", "myhost:5000/a__b/c-d.e_f---g:latest", None),
    ("busybox:Tag_With.Upper-Case", "docker.io/library/busybox:Tag_With.Upper-Case", None),
    ("busybox:" + "t" * 128, "docker.io/library/busybox:" + "t" * 128, None),
    # A bare "host:port" is a name with a tag, as in Docker.
    ("localhost:5000", "docker.io/library/localhost:5000", "localhost:5000"),
    ("a" * 63, "docker.io/library/" + "a" * 63 + ":latest", None),
]

INVALID = [
    ("", "at least one component"),
    (HEX64, "64-byte hexadecimal"),
    ("Busybox", "must be lowercase"),
    ("docker.io/Library/busybox", "must be lowercase"),
    ("host.example/App", "must be lowercase"),
    ("busybox:" + "t" * 129, "invalid reference format"),
    ("busybox:.tag", "invalid reference format"),
    ("busybox:-tag", "invalid reference format"),
    ("bu$ybox", "invalid reference format"),
    ("busybox/", "invalid reference format"),
    ("/busybox", "invalid reference format"),
    ("a//b", "invalid reference format"),
    ("-busybox", "invalid reference format"),
    ("busybox-", "invalid reference format"),
    ("bus..ybox", "invalid reference format"),
    ("bus___ybox", "invalid reference format"),
    ("busybox@sha256:abc", "invalid reference format"),
    ("busybox@sha256:" + "A" * 64, "invalid checksum digest format"),
    ("busybox@sha256:" + "a" * 63 + "0a", "digest length"),
    ("busybox@md5:" + "a" * 32, "unsupported digest algorithm"),
    ("host:port/x", "invalid reference format"),
    ("busybox:tag:other", "invalid reference format"),
    ("x/" + "a" * 256, "255"),
]


@pytest.mark.parametrize(("text", "canonical", "familiar"), VALID)
def test_valid_references_normalise_like_docker(
    text: str, canonical: str, familiar: str | None
) -> None:
    ref = parse_reference(text)
    assert str(ref) == canonical
    if familiar is not None:
        assert ref.familiar() == familiar
    # Normalising twice changes nothing.
    assert parse_reference(str(ref)) == ref


@pytest.mark.parametrize(("text", "message"), INVALID)
def test_invalid_references_are_refused_with_a_clear_message(text: str, message: str) -> None:
    with pytest.raises(ImageReferenceError, match=message):
        parse_reference(text)


def test_parts_and_repository() -> None:
    ref = parse_reference("host.example:443/a/b:tag@" + D)
    assert ref == ImageReference("host.example:443", "a/b", "tag", D)
    assert ref.repository == "host.example:443/a/b"
    assert ref.object == D
    assert parse_reference("busybox").object == "latest"
    assert parse_reference("busybox", default_tag=None).tag is None
    assert parse_reference("busybox", default_tag=None).familiar() == "busybox"


def test_with_tag_and_digest() -> None:
    ref = parse_reference("busybox")
    assert str(ref.with_tag("v2")) == "docker.io/library/busybox:v2"
    assert str(ref.with_digest(D)) == f"docker.io/library/busybox:latest@{D}"
    with pytest.raises(ImageReferenceError):
        ref.with_tag("bad tag")
    with pytest.raises(ImageReferenceError):
        ref.with_digest("sha256:1234")


def test_image_id_and_digest_helpers() -> None:
    assert is_image_id(HEX64)
    assert not is_image_id(HEX64[:-1])
    assert validate_digest(D) == D
    assert validate_digest("sha512:" + "b" * 128).startswith("sha512:")
    with pytest.raises(ImageReferenceError):
        validate_digest("sha256")


def test_reference_error_is_a_value_error() -> None:
    # Callers that only know ValueError (e.g. click parameter types) still catch it.
    with pytest.raises(ValueError):
        parse_reference("UPPER")
