"""Platforms (os/architecture/variant) and choosing one image out of an index.

The host platform follows the Go/OCI names Docker uses: ``uname -m`` ``x86_64`` is
``amd64``, ``aarch64`` is ``arm64`` variant ``v8``. Matching follows containerd's rules
in spirit: os and architecture must be equal; a wanted variant must be equal, except that
``arm64`` without a variant means ``v8``; an index entry without a variant satisfies any.
"""

from __future__ import annotations

import json
import platform as _host
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from declarun.daemon.images import mediatypes
from declarun.errdefs import InvalidArgument
from declarun.errors import ContentError, DaemonError

__all__ = ["Platform", "PlatformError", "host_platform", "parse_platform", "select_manifest"]

_ARCH_ALIASES = {
    "x86_64": ("amd64", None),
    "x86-64": ("amd64", None),
    "amd64": ("amd64", None),
    "aarch64": ("arm64", "v8"),
    "arm64": ("arm64", "v8"),
    "armhf": ("arm", "v7"),
    "armel": ("arm", "v6"),
    "armv7l": ("arm", "v7"),
    "armv6l": ("arm", "v6"),
    "i386": ("386", None),
    "i686": ("386", None),
    "ppc64le": ("ppc64le", None),
    "s390x": ("s390x", None),
    "riscv64": ("riscv64", None),
}


class PlatformError(DaemonError, InvalidArgument):
    """A platform string does not parse, or an index has no image for the platform."""


@dataclass(frozen=True)
class Platform:
    """An OCI platform: ``os/architecture[/variant]``."""

    os: str
    architecture: str
    variant: str | None = None

    def __str__(self) -> str:
        text = f"{self.os}/{self.architecture}"
        return f"{text}/{self.variant}" if self.variant else text

    def normalized(self) -> Platform:
        """Names as OCI spells them (``aarch64`` -> ``arm64``/``v8``, ``x86_64`` -> ``amd64``)."""
        arch, default_variant = _ARCH_ALIASES.get(self.architecture, (self.architecture, None))
        variant = self.variant or default_variant
        if arch == "amd64" and variant == "v1":
            variant = None  # amd64/v1 is plain amd64
        return Platform(self.os.lower(), arch, variant)

    def matches(self, offered: Platform) -> bool:
        """True when an index entry for ``offered`` can run where ``self`` is wanted."""
        want, have = self.normalized(), offered.normalized()
        if (want.os, want.architecture) != (have.os, have.architecture):
            return False
        return have.variant is None or want.variant is None or want.variant == have.variant

    def to_json(self) -> dict[str, str]:
        """The ``platform`` object of an OCI descriptor."""
        out = {"os": self.os, "architecture": self.architecture}
        if self.variant:
            out["variant"] = self.variant
        return out


def host_platform() -> Platform:
    """The platform of this machine, as Docker names it (``linux/amd64``, ``linux/arm64/v8``)."""
    return Platform("linux", _host.machine() or "amd64").normalized()


def parse_platform(text: str) -> Platform:
    """Parse ``os[/arch[/variant]]`` (Docker's ``--platform``); a bare arch means linux."""
    parts = [p for p in text.strip().lower().split("/")]
    if not parts or any(not p for p in parts) or len(parts) > 3:
        raise PlatformError(f"invalid platform {text!r}: expected os/arch[/variant]")
    if len(parts) == 1:
        if parts[0] in _ARCH_ALIASES:
            return Platform("linux", parts[0]).normalized()
        return Platform(parts[0], host_platform().architecture).normalized()
    variant = parts[2] if len(parts) == 3 else None
    return Platform(parts[0], parts[1], variant).normalized()


def _entry_platform(entry: Mapping[str, Any]) -> Platform | None:
    raw = entry.get("platform")
    if not isinstance(raw, Mapping):
        return None
    os_name, arch = raw.get("os"), raw.get("architecture")
    if not isinstance(os_name, str) or not isinstance(arch, str):
        return None
    variant = raw.get("variant")
    return Platform(os_name, arch, variant if isinstance(variant, str) and variant else None)


def select_manifest(
    index: bytes | Mapping[str, Any], wanted: Platform | None = None
) -> dict[str, Any]:
    """The descriptor (a dict) of the image in ``index`` that best fits ``wanted``.

    ``wanted`` defaults to the host platform. Among matching entries an exact variant
    match wins over an entry without variant; attestation manifests (``unknown/unknown``)
    never match. Raises ``PlatformError`` when none fits, listing what the index offers.
    """
    doc: Any = json.loads(index) if isinstance(index, bytes | bytearray) else index
    entries = doc.get("manifests") if isinstance(doc, Mapping) else None
    if not isinstance(entries, list):
        raise ContentError("manifest index has no 'manifests' list")
    want = (wanted or host_platform()).normalized()
    best: tuple[int, dict[str, Any]] | None = None
    offered: list[str] = []
    for entry in entries:
        if not isinstance(entry, dict):
            continue
        media_type = entry.get("mediaType")
        if (
            media_type is not None
            and media_type not in mediatypes.MANIFEST_TYPES | mediatypes.INDEX_TYPES
        ):
            continue
        plat = _entry_platform(entry)
        if plat is None:
            continue
        offered.append(str(plat))
        if not want.matches(plat):
            continue
        score = 2 if plat.normalized().variant == want.variant else 1
        if best is None or score > best[0]:
            best = (score, entry)
    if best is None:
        choices = ", ".join(sorted(set(offered))) or "none"
        raise PlatformError(
            f"no matching manifest for {want} in the manifest list entries (offered: {choices})"
        )
    return best[1]
