"""Platforms (``linux/amd64``, ``linux/arm/v7``) parsed and normalised as containerd does.

``x86_64`` is ``amd64``, ``aarch64`` is ``arm64`` (variant ``v8`` dropped), ``armhf`` is
``arm/v7``, ``armel`` ``arm/v6``; a bare ``arm`` gets variant ``v7``. A single word is an OS
(with the host's architecture) when it names one, else an architecture on Linux.
"""

from __future__ import annotations

import platform as host
from dataclasses import dataclass

from declarun.errdefs import InvalidArgument

__all__ = ["Platform", "host_platform", "parse_platform"]

_OSES = frozenset(
    {"linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix"}
)
_ARCHES = frozenset(
    {
        "386", "amd64", "arm", "arm64", "ppc64", "ppc64le", "mips", "mipsle", "mips64",
        "mips64le", "riscv64", "s390x", "loong64", "wasm", "sparc64",
    }
)  # fmt: skip


@dataclass(frozen=True, order=True)
class Platform:
    """An OS, an architecture and an optional variant."""

    os: str
    architecture: str
    variant: str = ""

    def __str__(self) -> str:
        parts = [self.os, self.architecture] + ([self.variant] if self.variant else [])
        return "/".join(parts)


def _normalize_arch(arch: str, variant: str) -> tuple[str, str]:
    arch, variant = arch.lower(), variant.lower()
    if arch in ("i386", "386"):
        return "386", ""
    if arch in ("x86_64", "x86-64", "amd64"):
        return "amd64", "" if variant == "v1" else variant
    if arch in ("aarch64", "arm64"):
        return "arm64", "" if variant in ("8", "v8") else variant
    if arch == "armhf":
        return "arm", "v7"
    if arch == "armel":
        return "arm", "v6"
    if arch == "arm":
        if variant in ("", "7"):
            return "arm", "v7"
        if variant in ("5", "6", "8"):
            return "arm", "v" + variant
    return arch, variant


def host_platform() -> Platform:
    """The platform of this machine (``linux/amd64`` on the usual server)."""
    arch, variant = _normalize_arch(host.machine() or "amd64", "")
    return Platform(host.system().lower() or "linux", arch, variant)


def parse_platform(text: str) -> Platform:
    """Parse ``os[/arch[/variant]]``; raises InvalidArgument for what is not a platform."""
    parts = text.strip().split("/")
    if not text.strip() or len(parts) > 3 or any(not p for p in parts):
        raise InvalidArgument(f'"{text}": unknown operating system or architecture')
    if len(parts) == 1:
        word = parts[0].lower()
        if word in _OSES or word == "macos":
            default = host_platform()
            os_name = "darwin" if word == "macos" else word
            return Platform(os_name, default.architecture, default.variant)
        arch, variant = _normalize_arch(word, "")
        if arch not in _ARCHES:
            raise InvalidArgument(f'"{text}": unknown operating system or architecture')
        return Platform("linux", arch, variant)
    os_name = parts[0].lower()
    os_name = "darwin" if os_name == "macos" else os_name
    arch, variant = _normalize_arch(parts[1], parts[2] if len(parts) == 3 else "")
    if os_name not in _OSES or arch not in _ARCHES:
        raise InvalidArgument(f'"{text}": unknown operating system or architecture')
    return Platform(os_name, arch, variant)
