"""The builder service: ``POST /build`` from the context to the tagged image.

:meth:`BuilderService.build` does, in order (what fails before the first message is sent
fails as a plain HTTP error, as with dockerd):

1. the context -- the request body, or a tarball (or a lone Dockerfile) downloaded from
   ``remote`` -- is spooled and unpacked into the build's private directory
   (:mod:`.context`, bounded and contained);
2. the Dockerfile (``dockerfile``, default ``Dockerfile``, else ``dockerfile``) is read
   inside the context, parsed by the frontend, given the build's labels, and planned for
   the target; ``.dockerignore`` and the Dockerfile are deleted from the context when the
   ``.dockerignore`` excludes them, as dockerd does;
3. the :class:`~declarun.daemon.builder.executor.Executor` runs the plan under one lease
   (every image and blob the build makes or uses is protected until it is registered);
4. the target's image is tagged with every ``t``; ``Successfully built``/``tagged`` close
   the output.

The build's directory and lease go whatever the outcome. Cancelling the coroutine (the
client went away) stops the build where it is: the running ``RUN`` container is killed and
removed and nothing half-made is registered.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import hashlib
import json
import logging
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import IO

import aiohttp

from declarun.daemon.builder.bases import BaseImages
from declarun.daemon.builder.cachemounts import CacheMounts
from declarun.daemon.builder.context import (
    ContextIndex,
    ContextLimits,
    looks_like_archive,
    receive_context,
    sync_context,
)
from declarun.daemon.builder.contextcache import Checkout, ContextCache
from declarun.daemon.builder.environment import BuildEnv, BuildRequestState, image_platform
from declarun.daemon.builder.errors import BuildContextError
from declarun.daemon.builder.executor import Executor
from declarun.daemon.builder.options import DEFAULT_DOCKERFILE, BuildOptions
from declarun.daemon.builder.output import BuildOutput, short_id
from declarun.daemon.builder.roots import FactMemo
from declarun.daemon.builder.threads import blocking, pumping
from declarun.daemon.builder.workspace import BuildDirs, BuilderRoot
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.images.fsops import remove_tree
from declarun.daemon.images.progress import Emit
from declarun.daemon.images.service import ImageService
from declarun.dockerfile import (
    BuildPlan,
    host_platform,
    parse_dockerfile,
    plan_build,
    read_dockerignore,
    removed_after_reading,
    source_date_epoch,
    unconsumed_warning,
    with_build_labels,
)
from declarun.dockerfile.errors import CopySourceError
from declarun.dockerfile.scope import resolve_in_root
from declarun.errdefs import InvalidArgument, Unsupported

__all__ = ["BuilderService"]

log = logging.getLogger("declarun.daemon.builder")

_LEASE_TTL = 24 * 3600.0
_MAX_DOCKERFILE = 16 * 1024 * 1024
_GIT_PREFIXES = ("git://", "git@", "github.com/", "ssh://")
_DEFAULT_DOWNLOAD_LIMIT = 4 * 1024**3


class BuilderService:
    """Builds images from Dockerfiles (see the module docstring)."""

    def __init__(
        self,
        images: ImageService,
        containers: ContainerService,
        root: Path,
        *,
        limits: ContextLimits | None = None,
        max_download_bytes: int = _DEFAULT_DOWNLOAD_LIMIT,
    ) -> None:
        self.images = images
        self.containers = containers
        self.root = BuilderRoot(root)
        self.limits = limits or ContextLimits()
        self.cache_mounts = CacheMounts(self.root.cache_mounts)
        self.contexts = ContextCache(self.root.root / "contexts")
        self.env = BuildEnv(images, containers, self.cache_mounts, FactMemo(), max_download_bytes)
        self._running: set[asyncio.Task[str]] = set()
        self._cleanups: set[asyncio.Future[None]] = set()

    def open(self) -> None:
        """Create the builder's directories, sweeping what a dead daemon left (blocking)."""
        self.root.open()
        self.contexts.open()

    async def close(self) -> None:
        """Cancel the builds still running (daemon shutdown) and wait for their clean-up."""
        tasks = list(self._running)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*self._cleanups, return_exceptions=True)

    def _later(self, paths: list[Path]) -> None:
        """Delete ``paths`` in the background: the client need not wait for it."""
        if not paths:
            return

        def remove() -> None:
            for path in paths:
                remove_tree(path)

        future = asyncio.ensure_future(blocking(remove))
        self._cleanups.add(future)
        future.add_done_callback(self._cleanups.discard)

    def in_progress(self) -> int:
        """How many builds are running."""
        return len(self._running)

    async def build(
        self, options: BuildOptions, body: AsyncIterator[bytes] | None, emit: Emit
    ) -> str:
        """Build as ``options`` say from the context in ``body``; returns the image ID.

        Messages go to ``emit`` as they come (see :mod:`.output`). Raises error kinds;
        cancelling it cancels the build.
        """
        task = asyncio.ensure_future(self._build(options, body, emit))
        self._running.add(task)
        try:
            return await task
        except asyncio.CancelledError:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
            raise
        finally:
            self._running.discard(task)

    async def _build(
        self, options: BuildOptions, body: AsyncIterator[bytes] | None, emit: Emit
    ) -> str:
        meta = self.images.metadata
        dirs = await blocking(self.root.new_build)
        lease = await blocking(meta.create_lease, _LEASE_TTL)
        output = BuildOutput(emit, quiet=options.quiet)
        context: tuple[ContextIndex, Checkout] | None = None
        try:
            async with aiohttp.ClientSession(
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=30, sock_read=300)
            ) as http:
                context = await self._receive(options, body, dirs, http)
                plan, deleted = await blocking(_plan, dirs.context, options)
                if context is not None:
                    context[1].forget(context[0], deleted)
                epoch = source_date_epoch(options.build_args, os.environ)
                platform = options.platform
                bases = BaseImages(
                    self.images,
                    output,
                    lease.id,
                    pull=options.pull,
                    platform=image_platform(platform) if platform is not None else None,
                    auth=options.registry_auth,
                )
                index = context[0] if context else None
                state = BuildRequestState(
                    options,
                    output,
                    dirs,
                    lease.id,
                    epoch,
                    bases,
                    http,
                    _known_digests(dirs.context, index),
                    functools.cache(lambda: _fingerprint(index)),
                )
                result = await Executor(self.env, state, plan).run()
            image_id = result.image.id
            if not image_id:
                raise InvalidArgument("No image was generated. Is your Dockerfile empty?")
            warning = unconsumed_warning(plan.unconsumed_build_args())
            if warning:
                output.stream(warning if warning.endswith("\n") else warning + "\n")
            output.stream(f"Successfully built {short_id(image_id)}\n")
            for ref in options.tags:
                tagged = await blocking(
                    self.images.tag, image_id, ref.repository, ref.tag or "latest"
                )
                output.stream(f"Successfully tagged {tagged.familiar()}\n")
            output.finish(image_id)
            return image_id
        except BaseException:
            output.release_held()
            raise
        finally:
            await asyncio.shield(blocking(meta.delete_lease, lease.id))
            await asyncio.shield(self._finish(dirs, context))

    async def _finish(self, dirs: BuildDirs, context: tuple[ContextIndex, Checkout] | None) -> None:
        """Keep the build's context for the next build (when it is whole); drop the rest."""
        doomed = [dirs.root]
        if context is not None:
            doomed += await blocking(self.contexts.give_back, dirs.context, context[0])
        self._later(doomed)

    async def _receive(
        self,
        options: BuildOptions,
        body: AsyncIterator[bytes] | None,
        dirs: BuildDirs,
        http: aiohttp.ClientSession,
    ) -> tuple[ContextIndex, Checkout] | None:
        """Spool, check and index the context, then make the build's context directory
        hold it: a kept context updated with the differences, or a fresh one. Returns what
        to keep it by afterwards (None: not to be kept)."""
        lone_dockerfile: Path | None = None
        spool_file = await blocking(_spool_file, dirs.tmp)
        limits = self.limits
        try:
            index = ContextIndex({}, {})
            if options.remote:
                downloaded = await self._download_context(options.remote, dirs, http)
                if await blocking(_is_archive, downloaded):
                    index = await blocking(_receive_file, downloaded, spool_file, limits)
                else:
                    lone_dockerfile = downloaded
            elif body is not None:
                # Spooled, checked and indexed while it arrives, in one pass.
                index = await pumping(
                    body, lambda chunks: receive_context(chunks, spool_file, limits)
                )
            kept, checkout = self.contexts.take(index)
            if kept is not None:
                await blocking(os.rename, kept, dirs.context)
            else:
                await blocking(dirs.context.mkdir, 0o755)
            # A failed update leaves the directory half-made: the caller then drops it whole.
            await blocking(
                sync_context, spool_file, index, checkout.entries, dirs.context, dirs.tmp
            )
        finally:
            await blocking(spool_file.close)
        if lone_dockerfile is not None:
            # A text file at ``remote`` is the Dockerfile of an otherwise empty context
            # (which is not kept: its index does not list that file).
            name = os.path.basename(options.dockerfile or DEFAULT_DOCKERFILE)
            await blocking(os.rename, lone_dockerfile, dirs.context / name)
            return None
        return index, checkout

    async def _download_context(
        self, url: str, dirs: BuildDirs, http: aiohttp.ClientSession
    ) -> Path:
        if url.startswith(_GIT_PREFIXES) or url.split("#", 1)[0].endswith(".git"):
            raise Unsupported(
                "building from a git repository is not supported by declarund: clone it and "
                "send the directory as the build context"
            )
        if not url.startswith(("http://", "https://")):
            raise InvalidArgument(f"remote context {url!r} is not an http(s) URL")
        target = dirs.tmp / "remote-context"
        size = 0
        try:
            async with http.get(url) as response:
                if response.status >= 400:
                    raise InvalidArgument(
                        f"error downloading remote context {url}: {response.status} "
                        f"{response.reason}"
                    )
                with target.open("wb") as out:
                    async for chunk in response.content.iter_chunked(1 << 20):
                        size += len(chunk)
                        if size > self.limits.max_bytes:
                            raise BuildContextError(
                                f"the remote context is larger than the {self.limits.max_bytes} "
                                "bytes allowed"
                            )
                        await blocking(out.write, chunk)
        except aiohttp.ClientError as exc:
            raise InvalidArgument(f"error downloading remote context {url}: {exc}") from None
        return target


def _known_digests(context: Path, index: ContextIndex | None) -> Callable[[Path], str | None]:
    """A file's content digest from the index of the context tar (None: not known)."""

    def known(path: Path) -> str | None:
        if index is None:
            return None
        try:
            rel = str(path.relative_to(context))
        except ValueError:
            return None
        key = index.entries.get(rel)
        digest = key[5] if key is not None and len(key) > 5 else ""
        return digest if isinstance(digest, str) and digest else None

    return known


def _fingerprint(index: ContextIndex | None) -> str:
    """A digest of a context's whole index (unique when the context is not kept)."""
    if index is None:
        return uuid.uuid4().hex
    material = json.dumps(sorted(index.entries.items()), default=str, separators=(",", ":"))
    return hashlib.sha256(material.encode("utf-8", "surrogateescape")).hexdigest()


def _spool_file(directory: Path) -> IO[bytes]:
    return tempfile.TemporaryFile(dir=directory)


def _is_archive(path: Path) -> bool:
    with path.open("rb") as handle:
        return looks_like_archive(handle.read(512).ljust(512, b"\0"))


def _receive_file(path: Path, spool_file: IO[bytes], limits: ContextLimits) -> ContextIndex:
    with path.open("rb") as handle:
        return receive_context(lambda: handle.read(1 << 20), spool_file, limits)


def _read_dockerfile(context: Path, name: str) -> tuple[str, bytes]:
    candidates = [name]
    if name == DEFAULT_DOCKERFILE:
        candidates.append("dockerfile")
    for candidate in candidates:
        try:
            resolved = resolve_in_root(context, candidate)
        except CopySourceError:
            continue
        path = context / resolved
        if path.is_file():
            if path.stat().st_size > _MAX_DOCKERFILE:
                raise InvalidArgument(f"the Dockerfile {name} is larger than 16 MiB")
            return candidate, path.read_bytes()
    raise InvalidArgument(f"Cannot locate specified Dockerfile: {name}")


def _plan(context: Path, options: BuildOptions) -> tuple[BuildPlan, list[str]]:
    """Read, parse and plan the Dockerfile; delete what dockerd deletes (blocking).

    Returns the plan and the paths deleted from the context.
    """
    name = options.dockerfile or DEFAULT_DOCKERFILE
    found, text = _read_dockerfile(context, name)
    dockerfile = parse_dockerfile(text, file=os.path.basename(found) or found)
    dockerfile = with_build_labels(dockerfile, options.labels, options.target)
    deleted = []
    ignore = context / ".dockerignore"
    if ignore.is_file() and not ignore.is_symlink():
        patterns = read_dockerignore(ignore.read_text(encoding="utf-8", errors="replace"))
        for path in removed_after_reading(patterns, found):
            target = context / path
            if target.is_file() or target.is_symlink():
                target.unlink()
                deleted.append(path)
    platform = options.platform or host_platform()
    plan = plan_build(
        dockerfile,
        build_args=dict(options.build_args),
        target=options.target,
        target_platform=platform,
        build_platform=host_platform(),
    )
    return plan, deleted
