"""``ARG`` scoping: global args, stage args, predefined args and the ones never consumed.

Docker's rules, as dockerd's classic builder applies them (BuildKit's agree):

* ``ARG``s before the first ``FROM`` are *global*: usable in ``FROM`` lines (and
  ``--platform``) only. Their defaults may use earlier global args.
* Inside a stage an arg is visible from its ``ARG`` instruction on. ``ARG NAME`` without a
  default re-declares a global arg and brings its value in.
* A build arg given by the caller (``--build-arg``) overrides a default, for global and
  stage args alike; one that is never declared is not visible — and is reported as
  *not consumed*.
* ``ENV`` beats ``ARG``: in substitution and in a ``RUN``'s environment, a variable set by
  ``ENV`` (or by the base image) hides an arg of the same name.
* Predefined: the proxy args (``HTTP_PROXY``, ``https_proxy``, ``NO_PROXY``, ...) are usable
  without an ``ARG`` when given, are passed to ``RUN`` and are left out of the history and
  the cache unless declared. The platform args (``TARGETPLATFORM``, ``TARGETOS``,
  ``TARGETARCH``, ``TARGETVARIANT``, ``BUILDPLATFORM``, ``BUILDOS``, ``BUILDARCH``,
  ``BUILDVARIANT``) are global: usable in ``FROM``, and in a stage after ``ARG NAME``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from declarun.dockerfile.errors import DockerfileError, SubstitutionError
from declarun.dockerfile.instructions import Arg
from declarun.dockerfile.lexer import Lexer
from declarun.dockerfile.platform import Platform

__all__ = [
    "PLATFORM_ARGS",
    "PROXY_ARGS",
    "GlobalArgs",
    "platform_args",
    "resolve_global_args",
    "unconsumed_build_args",
    "unconsumed_warning",
]

PROXY_ARGS = (
    "HTTP_PROXY",
    "http_proxy",
    "HTTPS_PROXY",
    "https_proxy",
    "FTP_PROXY",
    "ftp_proxy",
    "NO_PROXY",
    "no_proxy",
    "ALL_PROXY",
    "all_proxy",
)
PLATFORM_ARGS = (
    "TARGETPLATFORM",
    "TARGETOS",
    "TARGETARCH",
    "TARGETVARIANT",
    "BUILDPLATFORM",
    "BUILDOS",
    "BUILDARCH",
    "BUILDVARIANT",
)
# Read by the builder itself (timestamps), so never "not consumed".
_BUILDER_ARGS = ("SOURCE_DATE_EPOCH",)


def platform_args(target: Platform, build: Platform) -> dict[str, str]:
    """The predefined platform args for a build on ``build`` producing ``target``."""
    return {
        "TARGETPLATFORM": str(target),
        "TARGETOS": target.os,
        "TARGETARCH": target.architecture,
        "TARGETVARIANT": target.variant,
        "BUILDPLATFORM": str(build),
        "BUILDOS": build.os,
        "BUILDARCH": build.architecture,
        "BUILDVARIANT": build.variant,
    }


@dataclass(frozen=True)
class GlobalArgs:
    """The global scope: values usable in ``FROM`` and re-declarable in stages.

    ``values`` holds the platform args, the proxy args the caller gave, and every global
    ``ARG`` that has a value (its default, or the build arg that overrides it); ``declared`` the names the Dockerfile
    declared before its first ``FROM``.
    """

    values: Mapping[str, str]
    declared: frozenset[str]


def resolve_global_args(
    meta_args: Sequence[Arg],
    build_args: Mapping[str, str],
    predefined: Mapping[str, str],
    *,
    escape: str = "\\",
) -> GlobalArgs:
    """Evaluate the ``ARG``s before the first ``FROM``, in order.

    ``predefined`` are the platform args (a build arg of the same name overrides one).
    Raises :class:`DockerfileError` when a default does not substitute.
    """
    lexer = Lexer(escape=escape)
    values = {k: build_args.get(k, v) for k, v in predefined.items()}
    # Proxy args the caller gave are visible without an ARG (dockerd's "builtin" args).
    values.update({k: build_args[k] for k in PROXY_ARGS if k in build_args})
    declared: set[str] = set()
    for instruction in meta_args:
        for definition in instruction.args:
            declared.add(definition.key)
            if definition.key in build_args:
                values[definition.key] = build_args[definition.key]
            elif definition.default is not None:
                try:
                    values[definition.key] = lexer.process_word(definition.default, values)
                except SubstitutionError as exc:
                    raise DockerfileError(
                        str(exc),
                        file=instruction.location.file,
                        line=instruction.location.start_line,
                        instruction="ARG",
                    ) from None
    return GlobalArgs(values, frozenset(declared))


def unconsumed_build_args(build_args: Iterable[str], declared: Iterable[str]) -> list[str]:
    """The build args given but declared nowhere in the stages built (sorted).

    Predefined proxy and platform args and ``SOURCE_DATE_EPOCH`` are never reported.
    """
    known = set(declared) | set(PROXY_ARGS) | set(PLATFORM_ARGS) | set(_BUILDER_ARGS)
    return sorted(name for name in build_args if name not in known)


def unconsumed_warning(names: Sequence[str]) -> str:
    """dockerd's warning line for ``names`` (empty when there are none)."""
    if not names:
        return ""
    return f"[Warning] One or more build-args [{' '.join(names)}] were not consumed"
