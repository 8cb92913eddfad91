"""A container's files over the API: ``archive`` (docker cp), ``changes``, ``export``, ``commit``.

* ``HEAD/GET /containers/{id}/archive?path=`` -- the stat of ``path`` in the
  ``X-Docker-Container-Path-Stat`` header (base64 JSON), and for GET a tar of it;
* ``PUT /containers/{id}/archive?path=&noOverwriteDirNonDir=`` -- extract a tar into the
  directory ``path``;
* ``GET /containers/{id}/changes`` -- ``[{"Path", "Kind"}]``, Kind 0 modified, 1 added,
  2 deleted;
* ``GET /containers/{id}/export`` -- a tar of the whole root file system;
* ``POST /commit?container=&repo=&tag=&comment=&author=&changes=&pause=`` -- a new image.

Paths are resolved inside the container's root, never following a link out of it (see
:mod:`declarun.daemon.containers.rootfs.fsaccess`). ``archive`` sees the container's files
as its processes do, volumes and bind mounts included (``ContainerService.mounted_view``:
a running container's own mount namespace, a created or stopped one's root mounted for the
request with its mounts bound in place); ``export`` and ``commit`` see the root file system
alone (``mounted_rootfs``), as dockerd's do.

What a container changed (:mod:`declarun.daemon.containers.rootfs.changes`) and the commit
itself (:func:`declarun.daemon.containers.lifecycle.commit.commit_container`) are the container
service's; this area parses the requests and streams the tars.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import posixpath
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from declarun.daemon.api.http import json_response, query_bool
from declarun.daemon.containers.config.mountspec import MountSpec
from declarun.daemon.containers.lifecycle.commit import CommitRequest, commit_container
from declarun.daemon.containers.lifecycle.record import ContainerRecord
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.rootfs.fsaccess import (
    PathStat,
    extract_into,
    stat_path,
    write_path_tar,
)
from declarun.daemon.images.service import ImageService
from declarun.errdefs import Forbidden, InvalidArgument, NotFound, SystemFailure
from declarun.errors import ImageReferenceError
from declarun.reference import parse_reference

__all__ = ["routes"]

log = logging.getLogger("declarun.daemon.api.archive")

_TAR = "application/x-tar"
_CHUNK = 1 << 16
_STAT_HEADER = "X-Docker-Container-Path-Stat"


def routes(containers: ContainerService, images: ImageService) -> Iterable[web.RouteDef]:
    """The archive/changes/export/commit routes."""
    api = _ArchiveApi(containers, images)
    return [
        web.head("/containers/{id}/archive", api.head),
        web.get("/containers/{id}/archive", api.get, allow_head=False),
        web.put("/containers/{id}/archive", api.put),
        web.get("/containers/{id}/changes", api.changes),
        web.get("/containers/{id}/export", api.export),
        web.post("/commit", api.commit),
    ]


class _QueueWriter:
    """A file object a worker thread writes a tar into; the event loop sends the chunks."""

    def __init__(self, loop: asyncio.AbstractEventLoop, queue: asyncio.Queue[bytes | None]) -> None:
        self._loop = loop
        self._queue = queue
        self._buffer = bytearray()
        self.cancelled = False

    def write(self, data: bytes) -> int:
        if self.cancelled:
            raise BrokenPipeError("the client went away")
        self._buffer += data
        if len(self._buffer) >= _CHUNK:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            chunk, self._buffer = bytes(self._buffer), bytearray()
            asyncio.run_coroutine_threadsafe(self._queue.put(chunk), self._loop).result()

    def close(self) -> None:
        self.flush()


async def _stream_tar(request: web.Request, produce: Callable[[IO[bytes]], None],
                      headers: dict[str, str] | None = None) -> web.StreamResponse:  # fmt: skip
    """Run ``produce(fileobj)`` in a thread and stream what it writes as a tar response."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=8)
    writer = _QueueWriter(loop, queue)

    def work() -> None:
        try:
            produce(writer)  # type: ignore[arg-type]
            writer.close()
        finally:
            asyncio.run_coroutine_threadsafe(queue.put(None), loop).result()

    task = asyncio.ensure_future(asyncio.to_thread(work))
    response = web.StreamResponse(headers=headers or {})
    response.content_type = _TAR
    try:
        first = await queue.get()
        await response.prepare(request)
        chunk = first
        while chunk is not None:
            await response.write(chunk)
            chunk = await queue.get()
        await task
    except BaseException:
        writer.cancelled = True
        # Let the worker finish (it fails at its next write) so nothing outlives the mount.
        while not task.done():
            with contextlib.suppress(asyncio.QueueEmpty):
                queue.get_nowait()
            await asyncio.sleep(0.01)
        failure = None if task.cancelled() else task.exception()
        if failure is not None and not isinstance(failure, BrokenPipeError):
            log.warning("writing a tar for %s failed: %s", request.path, failure, exc_info=failure)
        raise
    return response


class _ArchiveApi:
    def __init__(self, containers: ContainerService, images: ImageService) -> None:
        self.containers = containers
        self.images = images

    def _path(self, request: web.Request) -> str:
        path = request.query.get("path", "")
        if not path:
            raise InvalidArgument("path is required")
        return path if path.startswith("/") else "/" + path

    async def head(self, request: web.Request) -> web.StreamResponse:
        """``HEAD /containers/{id}/archive``: the path's stat header only."""
        service = self.containers
        record = service.get(request.match_info["id"])
        path = self._path(request)
        async with service.mounted_view(record.id) as root:
            info = await asyncio.to_thread(self._stat, root, path, record.name)
        return web.Response(status=200, headers={_STAT_HEADER: info.header()})

    @staticmethod
    def _stat(root: Path, path: str, name: str) -> PathStat:
        try:
            return stat_path(root, path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Could not find the file {path} in container {name}") from None

    async def get(self, request: web.Request) -> web.StreamResponse:
        """``GET /containers/{id}/archive``: a tar of the path."""
        service = self.containers
        record = service.get(request.match_info["id"])
        path = self._path(request)
        async with service.mounted_view(record.id) as root:
            info = await asyncio.to_thread(self._stat, root, path, record.name)
            return await _stream_tar(
                request, lambda out: write_path_tar(root, path, out), {_STAT_HEADER: info.header()}
            )

    async def put(self, request: web.Request) -> web.StreamResponse:
        """``PUT /containers/{id}/archive``: extract the body's tar into the directory."""
        service = self.containers
        record = service.get(request.match_info["id"])
        path = self._path(request)
        no_overwrite = query_bool(request, "noOverwriteDirNonDir")
        mount = _mount_of(record, path)
        if mount is not None and mount.read_only:
            raise SystemFailure("mounted volume is marked read-only")
        if mount is None and record.host_config.readonly_rootfs and record.state.running:
            raise Forbidden("container rootfs is marked read-only")
        # Spooled on the data root's file system, as large as the upload may be.
        with tempfile.TemporaryFile(dir=self.images.scratch_dir) as spool:
            async for chunk in request.content.iter_chunked(_CHUNK):
                await asyncio.to_thread(spool.write, chunk)
            spool.seek(0)
            async with service.mounted_view(record.id) as root:
                await asyncio.shield(
                    asyncio.to_thread(
                        extract_into, root, path, spool, no_overwrite_dir_non_dir=no_overwrite
                    )
                )
        service.publish(record, "extract-to-dir", {"path": path})
        return web.Response(status=200)

    async def changes(self, request: web.Request) -> web.Response:
        """``GET /containers/{id}/changes``."""
        changes = await self.containers.changes(request.match_info["id"])
        return json_response([c.to_api() for c in changes])

    async def export(self, request: web.Request) -> web.StreamResponse:
        """``GET /containers/{id}/export``: the whole root file system as a tar."""
        service = self.containers
        record = service.get(request.match_info["id"])
        async with service.mounted_rootfs(record.id) as root:
            response = await _stream_tar(request, lambda out: write_path_tar(root, "/", out))
        service.publish(record, "export")
        return response

    async def commit(self, request: web.Request) -> web.Response:
        """``POST /commit``: ``{"Id": "sha256:..."}`` (201)."""
        query = request.query
        ref = query.get("container", "")
        if not ref:
            raise InvalidArgument("No container name or ID supplied")
        record = self.containers.get(ref)
        repo, tag = query.get("repo", ""), query.get("tag", "")
        name = None
        if repo:
            try:
                name = parse_reference(f"{repo}:{tag}" if tag else repo)
            except ImageReferenceError as exc:
                raise InvalidArgument(str(exc)) from None
        elif tag:
            raise InvalidArgument("tag without a repository")
        body = await request.read()
        override = None
        if body.strip():
            try:
                override = json.loads(body)
            except (ValueError, RecursionError) as exc:
                raise InvalidArgument(f"invalid JSON body: {exc}") from None
            if not isinstance(override, dict):
                override = None
        changes = tuple(query.getall("changes", []))
        # The CLI sends every change in one parameter, one per line.
        split = tuple(line for item in changes for line in item.split("\n") if line.strip())
        commit_request = CommitRequest(
            name=name,
            comment=query.get("comment", ""),
            author=query.get("author", ""),
            changes=split,
            config_override=_override(override),
        )
        image = await commit_container(
            self.containers,
            self.images,
            record.id,
            commit_request,
            pause=query_bool(request, "pause", default=True),
        )
        return json_response({"Id": image.id}, status=201)


def _mount_of(record: ContainerRecord, path: str) -> MountSpec | None:
    """The mount of ``record`` that ``path`` (as the client named it) lies in, if any."""
    clean = posixpath.normpath(path)
    found: MountSpec | None = None
    for mount in record.host_config.mounts:
        inside = clean == mount.target or clean.startswith(mount.target.rstrip("/") + "/")
        if inside and (found is None or len(mount.target) > len(found.target)):
            found = mount
    return found


def _override(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The non-empty fields of a commit body (a ContainerConfig the client sent)."""
    if not body:
        return None
    keys = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "WorkingDir", "Entrypoint",
            "Volumes", "Labels", "StopSignal", "OnBuild")  # fmt: skip
    picked = {k: body[k] for k in keys if body.get(k) not in (None, "", [], {})}
    return picked or None
