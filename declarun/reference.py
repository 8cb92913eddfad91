"""Image references, parsed and normalised the way Docker does.

A leaf shared by declarund (pull, push, tag, the metadata store) and the client (the lock
file pins references to digests): it imports nothing of declarun but the error tree.

The grammar is the one of the distribution ``reference`` package::

    reference   := name [ ":" tag ] [ "@" digest ]
    name        := [ domain "/" ] path-component [ "/" path-component ]*
    domain      := host [ ":" port ]           host: DNS-like name, IPv4, or [IPv6]
    path-comp.  := [a-z0-9]+ ( separator [a-z0-9]+ )*     separator: "." "_" "__" "-"+
    tag         := [\\w][\\w.-]{0,127}
    digest      := algorithm ":" hex           (sha256: 64 lowercase hex digits)

Normalisation ("familiar" name -> canonical name):

* the first ``/``-separated part is a domain only if it contains ``.`` or ``:``, is
  ``localhost``, or has an uppercase letter (namespaces cannot); otherwise the domain is
  ``docker.io``;
* ``index.docker.io`` is the legacy name of ``docker.io``;
* a single-component path on ``docker.io`` gets the ``library/`` prefix;
* a bare 64-hex string is refused: it would be ambiguous with an image ID;
* a reference with neither tag nor digest gets the default tag (``latest``); one with a
  digest only keeps no tag, as in Docker.

So ``busybox`` is ``docker.io/library/busybox:latest``, and its familiar form is
``busybox:latest``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from declarun.errors import ImageReferenceError

__all__ = [
    "DEFAULT_DOMAIN",
    "DEFAULT_TAG",
    "LEGACY_DEFAULT_DOMAIN",
    "ImageReference",
    "is_image_id",
    "parse_reference",
    "validate_digest",
]

DEFAULT_DOMAIN = "docker.io"
LEGACY_DEFAULT_DOMAIN = "index.docker.io"
DEFAULT_TAG = "latest"
_OFFICIAL_PREFIX = "library/"
# Docker limits the repository path (not the domain) to 255 characters.
_PATH_MAX = 255

_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_REMOTE_NAME = rf"{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_DOMAIN_NAME = rf"{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*"
_IPV6 = r"\[(?:[a-fA-F0-9:]+)\]"
_DOMAIN = rf"(?:{_DOMAIN_NAME}|{_IPV6})(?::[0-9]+)?"
_TAG = r"[\w][\w.-]{0,127}"
_DIGEST = r"[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}"

_REFERENCE_RE = re.compile(
    rf"^(?P<name>(?:{_DOMAIN}/)?{_REMOTE_NAME})(?::(?P<tag>{_TAG}))?(?:@(?P<digest>{_DIGEST}))?$",
    re.ASCII,
)
_NAME_RE = re.compile(rf"^(?:(?P<domain>{_DOMAIN})/)?(?P<path>{_REMOTE_NAME})$", re.ASCII)
_TAG_RE = re.compile(rf"^{_TAG}$", re.ASCII)
_IDENTIFIER_RE = re.compile(r"^[a-f0-9]{64}$")

# Digest algorithms Docker accepts, with the exact length of their lowercase hex encoding.
_DIGEST_HEX_LENGTH = {"sha256": 64, "sha384": 96, "sha512": 128}


def is_image_id(text: str) -> bool:
    """True when ``text`` is a full 64-hex image ID (and so cannot be a repository name)."""
    return _IDENTIFIER_RE.match(text) is not None


def validate_digest(digest: str) -> str:
    """Return ``digest`` if it is a well-formed, supported content digest; raise otherwise.

    Like go-digest, the hex part must be lowercase and of the algorithm's exact length.
    """
    algorithm, sep, encoded = digest.partition(":")
    if not sep or not algorithm or not encoded:
        raise ImageReferenceError(f"invalid digest format: {digest!r}")
    length = _DIGEST_HEX_LENGTH.get(algorithm)
    if length is None:
        raise ImageReferenceError(f"unsupported digest algorithm {algorithm!r} in {digest!r}")
    if len(encoded) != length:
        raise ImageReferenceError(
            f"invalid checksum digest length in {digest!r}: {algorithm} needs {length} hex digits"
        )
    if re.fullmatch(r"[a-f0-9]+", encoded) is None:
        raise ImageReferenceError(f"invalid checksum digest format: {digest!r}")
    return digest


@dataclass(frozen=True)
class ImageReference:
    """A normalised image reference: ``domain/path[:tag][@digest]``.

    ``domain`` is the registry name as the user knows it (``docker.io``, ``localhost:5000``),
    not the host to connect to; see ``daemon.images.registry`` for that mapping.
    """

    domain: str
    path: str
    tag: str | None = None
    digest: str | None = None

    @property
    def repository(self) -> str:
        """The canonical repository name, ``domain/path`` (no tag, no digest)."""
        return f"{self.domain}/{self.path}"

    def __str__(self) -> str:
        text = self.repository
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def familiar_name(self) -> str:
        """The short repository name Docker shows: ``busybox``, ``user/app``, ``host:5000/x``."""
        if self.domain != DEFAULT_DOMAIN:
            return self.repository
        path = self.path
        if path.startswith(_OFFICIAL_PREFIX) and "/" not in path[len(_OFFICIAL_PREFIX) :]:
            path = path[len(_OFFICIAL_PREFIX) :]
        return path

    def familiar(self) -> str:
        """The short form Docker shows, with tag and digest: ``busybox:latest``."""
        text = self.familiar_name()
        if self.tag is not None:
            text += f":{self.tag}"
        if self.digest is not None:
            text += f"@{self.digest}"
        return text

    def with_tag(self, tag: str) -> ImageReference:
        """This reference with ``tag`` (validated) in place of its tag; the digest is kept."""
        if _TAG_RE.match(tag) is None:
            raise ImageReferenceError(f"invalid tag format: {tag!r}")
        return ImageReference(self.domain, self.path, tag, self.digest)

    def with_digest(self, digest: str | None) -> ImageReference:
        """This reference pinned to ``digest`` (or unpinned when None); the tag is kept."""
        if digest is not None:
            validate_digest(digest)
        return ImageReference(self.domain, self.path, self.tag, digest)

    @property
    def object(self) -> str:
        """What to ask the registry for: the digest if pinned, else the tag (``latest``)."""
        return self.digest or self.tag or DEFAULT_TAG


def _split_domain(name: str) -> tuple[str, str]:
    """Split ``name`` (which may still carry ``:tag@digest``) into domain and remainder."""
    first, slash, rest = name.partition("/")
    if not slash:
        return DEFAULT_DOMAIN, _OFFICIAL_PREFIX + name
    if first == "localhost" or ("." in first or ":" in first) or first.lower() != first:
        domain, remainder = first, rest
    else:
        domain, remainder = DEFAULT_DOMAIN, name
    if domain == LEGACY_DEFAULT_DOMAIN:
        domain = DEFAULT_DOMAIN
    if domain == DEFAULT_DOMAIN and "/" not in remainder:
        remainder = _OFFICIAL_PREFIX + remainder
    return domain, remainder


def parse_reference(text: str, default_tag: str | None = DEFAULT_TAG) -> ImageReference:
    """Parse a reference as the docker CLI would, into its canonical form.

    ``default_tag`` is added when the reference has neither tag nor digest (pass None to
    keep a bare name, e.g. for ``docker pull --all-tags``). Raises ``ImageReferenceError``
    with Docker's wording when the text is not a valid reference.
    """
    if not text:
        raise ImageReferenceError(
            "invalid reference format: repository name must have at least one component"
        )
    if is_image_id(text):
        raise ImageReferenceError(
            f"invalid repository name ({text}), cannot specify 64-byte hexadecimal strings"
        )
    domain, remainder = _split_domain(text)
    # Only the path before any tag separator must be lowercase; the domain may not be.
    remote = remainder.split(":", 1)[0].split("@", 1)[0]
    if remote.lower() != remote:
        raise ImageReferenceError(
            f"invalid reference format: repository name ({remote}) must be lowercase"
        )
    full = f"{domain}/{remainder}"
    match = _REFERENCE_RE.match(full)
    if match is None:
        raise ImageReferenceError(f"invalid reference format: {text!r}")
    name_match = _NAME_RE.match(match["name"])
    if name_match is None or name_match["domain"] is None:  # pragma: no cover - regex implies it
        raise ImageReferenceError(f"invalid reference format: {text!r}")
    path = name_match["path"]
    if len(path) > _PATH_MAX:
        raise ImageReferenceError(
            f"invalid reference format: repository name must not be more than {_PATH_MAX} characters"
        )
    digest = match["digest"]
    if digest is not None:
        validate_digest(digest)
    tag = match["tag"]
    if tag is None and digest is None and default_tag is not None:
        tag = default_tag
    return ImageReference(name_match["domain"], path, tag, digest)
