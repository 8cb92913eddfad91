"""A build's Dockerfile, read with the Dockerfile frontend: its stages and its base images.

The stack's checks (``declarun.stack.check_builds``) and the observer (``declarun.observe``)
both need what a build's Dockerfile says; they read it through these functions, so the
base images the graph orders builds by are the ones the builder will pull (stages the
target does not need are left out, ``ARG``s before ``FROM`` filled from the build args).

Reading a Dockerfile is reading a host file, as loading env files is; nothing here talks to
an engine.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING

from declarun.stack.model import Build

if TYPE_CHECKING:
    from declarun.dockerfile import BuildPlan, Dockerfile

# The frontend's parser and stage graph are imported by the functions that use them: every
# ``declarun plan`` imports this module, and a stack without builds needs none of it.

__all__ = [
    "MAX_DOCKERFILE_BYTES",
    "base_references",
    "dockerfile_in_context",
    "plan_dockerfile",
    "read_dockerfile",
    "shown_path",
]

#: A Dockerfile larger than this is refused (BuildKit's parser reads it whole).
MAX_DOCKERFILE_BYTES = 4 * 1024 * 1024


def shown_path(path: Path, stack_dir: Path | None) -> str:
    """``path`` as messages show it: relative to the stack file's directory when inside it
    (``stack_dir`` as the user named it, so ``shop/app/Dockerfile``), else absolute."""
    if stack_dir is None:
        return str(path)
    try:
        relative = path.relative_to(stack_dir.resolve())
    except ValueError:
        return str(path)
    return os.path.normpath(stack_dir / relative)


def dockerfile_in_context(build: Build) -> str | None:
    """The Dockerfile's ``/``-separated path inside the context, None when it lies outside."""
    try:
        relative = build.dockerfile_path.relative_to(build.context)
    except ValueError:
        return None
    return relative.as_posix()


def read_dockerfile(build: Build, *, shown: str | None = None) -> tuple[bytes, Dockerfile]:
    """The Dockerfile's bytes and its parse; ``shown`` is the name errors use.

    Raises :class:`~declarun.dockerfile.FrontendError` (an ``InvalidArgument``) when the file
    is missing, not a regular file, too large, unreadable, or does not parse (the message
    then starts with ``shown:LINE:``).
    """
    from declarun.dockerfile import FrontendError, parse_dockerfile

    path = build.dockerfile_path
    name = shown or str(path)
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise FrontendError(f"{name} is not a file")
        if info.st_size > MAX_DOCKERFILE_BYTES:
            raise FrontendError(
                f"{name} is larger than {MAX_DOCKERFILE_BYTES // (1024 * 1024)} MiB"
            )
        data = path.read_bytes()
    except FileNotFoundError:
        raise FrontendError(f"there is no Dockerfile at {name}") from None
    except OSError as exc:
        raise FrontendError(f"cannot read {name}: {exc.strerror or exc}") from None
    return data, parse_dockerfile(data, file=name)


def plan_dockerfile(build: Build, dockerfile: Dockerfile, platform: str | None = None) -> BuildPlan:
    """The frontend's build plan for ``build`` (its args and target) on ``platform``
    (``os/arch[/variant]``; None: this machine's). Raises ``FrontendError`` as
    :func:`~declarun.dockerfile.plan_build` does (unknown target, unresolvable ``FROM``)."""
    from declarun.dockerfile import FrontendError, parse_platform, plan_build

    target_platform = None
    if platform is not None:
        try:
            target_platform = parse_platform(platform)
        except ValueError as exc:
            raise FrontendError(f"platform {platform!r}: {exc}") from None
    return plan_build(
        dockerfile,
        build_args=dict(build.args),
        target=build.target,
        target_platform=target_platform,
    )


def base_references(build: Build, platform: str | None = None) -> tuple[str, ...]:
    """The images building ``build`` pulls: the ``FROM`` and ``--from`` images of the stages
    its target needs (first use first). Raises ``FrontendError`` as :func:`read_dockerfile`
    and :func:`plan_dockerfile` do."""
    _, dockerfile = read_dockerfile(build)
    return plan_dockerfile(build, dockerfile, platform).external_images
