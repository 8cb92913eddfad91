"""``RUN --mount`` and heredoc files as the mounts of the step's container.

Each mount becomes an entry of the container's ``HostConfig.Mounts``:

* ``cache`` -- the persistent cache directory (:mod:`.cachemounts`), read-write unless
  ``ro``;
* ``bind`` -- a path of the build context, or of a stage's or an image's filesystem,
  resolved inside that root (symlinks never lead out), read-only unless ``rw``, in which
  case the ``RUN`` gets a private copy whose changes are thrown away, as BuildKit does;
* ``tmpfs`` -- a tmpfs of the given size;
* ``secret`` -- the secret's content (from the build request) in a file of the build's
  private scratch space, mounted read-only with the mount's mode and owner; with ``env``
  the command is wrapped so the variable is read from that file at run time. The content
  is in no layer (mount points are left out of the diff), no history entry (only the id
  is), no cache key and no container record (no environment variable holds it);
* ``ssh`` -- refused when ``required`` (declarund forwards no SSH agent), else skipped;
* a heredoc with a ``#!`` line -- its file, mode 0755, read-only at ``/dev/pipes/<name>``.

:class:`RunMounts` collects them; :meth:`RunMounts.close` releases what was held (cache
locks, scratch files).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from declarun.daemon.builder.cachemounts import CacheMounts
from declarun.daemon.builder.workspace import BuildDirs
from declarun.dockerfile import RunSpec
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.mounts import BindMount, CacheMount, SecretMount, SshMount, TmpfsMount
from declarun.dockerfile.scope import resolve_in_root
from declarun.errdefs import InvalidArgument

__all__ = ["SECRET_ENV_DIR", "MountSources", "RunMounts", "SourceRoot", "prepare_mounts"]

#: Where a secret that is only an environment variable is mounted for the wrapper to read.
SECRET_ENV_DIR = "/run/declarun-secrets"

#: Resolves a ``from=`` value (a stage or an image) to that filesystem's root on the host.
SourceRoot = Callable[[str], Awaitable[Path]]


@dataclass(frozen=True)
class MountSources:
    """What mounts are made from: the context, other roots, secrets, cache directories."""

    context: Path
    source_root: SourceRoot
    secrets: dict[str, bytes]
    cache: CacheMounts
    dirs: BuildDirs


@dataclass
class RunMounts:
    """The container's mounts for one ``RUN``, and how to wrap its command for secrets."""

    mounts: list[dict[str, Any]] = field(default_factory=list)
    secret_env: list[tuple[str, str]] = field(default_factory=list)
    _stack: contextlib.AsyncExitStack = field(default_factory=contextlib.AsyncExitStack)

    def argv(self, argv: tuple[str, ...]) -> list[str]:
        """``argv``, wrapped so secret environment variables are set from their files."""
        if not self.secret_env:
            return list(argv)
        script = "".join(
            f'{name}="$(cat {path})"; export {name}; ' for name, path in self.secret_env
        )
        return ["/bin/sh", "-c", script + 'exec "$@"', "sh", *argv]

    def bind(self, source: Path, target: str, *, read_only: bool) -> None:
        """Add a bind mount."""
        self.mounts.append(
            {"Type": "bind", "Source": str(source), "Target": target, "ReadOnly": read_only}
        )

    async def close(self) -> None:
        """Release cache directories and locks held for the step."""
        await self._stack.aclose()


def _resolve(root: Path, source: str, what: str) -> Path:
    try:
        resolved = resolve_in_root(root, source)
    except CopySourceError as exc:
        raise InvalidArgument(f"RUN --mount {what}: {exc}") from None
    path = root / resolved if resolved else root
    if not os.path.lexists(path):
        raise InvalidArgument(f'RUN --mount {what}: "/{resolved}" not found')
    return path


def _private_copy(source: Path, dest: Path) -> Path:
    copy = dest / "copy"
    if source.is_dir():
        shutil.copytree(source, copy, symlinks=True)
    else:
        shutil.copy2(source, copy, follow_symlinks=False)
    return copy


def _write_secret(directory: Path, data: bytes, mode: int, uid: int, gid: int) -> Path:
    path = directory / "secret"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chown(path, uid, gid)
    os.chmod(path, mode)
    return path


def _write_inline(directory: Path, data: str, mode: int) -> Path:
    path = directory / "file"
    path.write_text(data)
    os.chmod(path, mode)
    return path


async def _bind(mounts: RunMounts, mount: BindMount, sources: MountSources) -> None:
    root = sources.context if mount.from_ is None else await sources.source_root(mount.from_)
    path = await asyncio.to_thread(_resolve, root, mount.source, "type=bind")
    if mount.readwrite:
        scratch = await asyncio.to_thread(sources.dirs.scratch, "bind")
        path = await asyncio.to_thread(_private_copy, path, scratch)
    mounts.bind(path, mount.target, read_only=not mount.readwrite)


async def _cache(mounts: RunMounts, mount: CacheMount, sources: MountSources) -> None:
    if mount.from_ is not None or mount.source:
        raise InvalidArgument(
            "RUN --mount=type=cache with from= or source= is not supported by declarund"
        )
    path = await mounts._stack.enter_async_context(
        sources.cache.acquire(mount, lambda: sources.dirs.scratch("cache"))
    )
    mounts.bind(path, mount.target, read_only=mount.readonly)


async def _secret(
    mounts: RunMounts, mount: SecretMount, sources: MountSources, number: int
) -> None:
    data = sources.secrets.get(mount.id)
    if data is None:
        if mount.required:
            raise InvalidArgument(f"secret {mount.id}: not found")
        return
    scratch = await asyncio.to_thread(sources.dirs.scratch, "secret")
    path = await asyncio.to_thread(_write_secret, scratch, data, mount.mode, mount.uid, mount.gid)
    target = mount.target
    if target is None and mount.env is not None:
        target = f"{SECRET_ENV_DIR}/{number}"
    if target is not None:
        mounts.bind(path, target, read_only=True)
    if mount.env is not None:
        assert target is not None
        mounts.secret_env.append((mount.env, target))


async def prepare_mounts(spec: RunSpec, sources: MountSources) -> RunMounts:
    """The mounts of ``spec`` (see the module docstring); close the result when done."""
    mounts = RunMounts()
    try:
        for number, mount in enumerate(spec.mounts):
            if isinstance(mount, BindMount):
                await _bind(mounts, mount, sources)
            elif isinstance(mount, CacheMount):
                await _cache(mounts, mount, sources)
            elif isinstance(mount, TmpfsMount):
                options = {"SizeBytes": mount.size} if mount.size else {}
                mounts.mounts.append(
                    {"Type": "tmpfs", "Target": mount.target, "TmpfsOptions": options}
                )
            elif isinstance(mount, SecretMount):
                await _secret(mounts, mount, sources, number)
            elif isinstance(mount, SshMount) and mount.required:
                raise InvalidArgument(
                    "RUN --mount=type=ssh: declarund forwards no SSH agent "
                    f'(no SSH key "{mount.id}" forwarded from the client)'
                )
        for inline in spec.inline_files:
            scratch = await asyncio.to_thread(sources.dirs.scratch, "heredoc")
            path = await asyncio.to_thread(_write_inline, scratch, inline.data, inline.mode)
            mounts.bind(path, inline.path, read_only=True)
    except BaseException:
        await mounts.close()
        raise
    return mounts
