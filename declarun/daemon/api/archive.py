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
:mod:`declarun.daemon.containers.fsaccess`). The root is the running container's mount, or
for a stopped container the same overlay mounted for the duration of the request
(``ContainerService.mounted_rootfs``), so both work alike.

Mount points the runtime creates in the writable layer for the container's own mounts
(``/etc/hostname``, ``/etc/hosts``, ``/etc/resolv.conf``, volume targets...) are left out
of ``changes`` and ``commit`` -- dockerd hides them in its init layer.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import IO, Any

from aiohttp import web

from declarun.daemon.api.errors import BadRequest, NotFound
from declarun.daemon.api.http import json_response, query_bool
from declarun.daemon.containers.commit import CommitRequest, run_commit
from declarun.daemon.containers.fsaccess import (
    CHANGE_MODIFIED,
    Change,
    changes_copy,
    changes_overlay,
    extract_into,
    stat_path,
    write_path_tar,
)
from declarun.daemon.containers.hooks import container_service
from declarun.daemon.context import DaemonContext
from declarun.daemon.images.service import attach_image_service
from declarun.errors import ImageReferenceError
from declarun.reference import parse_reference

__all__ = ["routes"]

log = logging.getLogger("declarun.daemon.api.archive")

_TAR = "application/x-tar"
_CHUNK = 1 << 16
_STAT_HEADER = "X-Docker-Container-Path-Stat"


def routes(ctx: DaemonContext) -> Iterable[web.RouteDef]:
    """The archive/changes/export/commit routes."""
    api = _ArchiveApi(ctx)
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
        with contextlib.suppress(BaseException):
            task.result()
        raise
    return response


class _ArchiveApi:
    def __init__(self, ctx: DaemonContext) -> None:
        self.ctx = ctx

    def _path(self, request: web.Request) -> str:
        path = request.query.get("path", "")
        if not path:
            raise BadRequest("path is required")
        return path if path.startswith("/") else "/" + path

    async def head(self, request: web.Request) -> web.StreamResponse:
        """``HEAD /containers/{id}/archive``: the path's stat header only."""
        service = container_service(self.ctx)
        record = service.get(request.match_info["id"])
        path = self._path(request)
        async with service.mounted_rootfs(record.id) as root:
            info = await asyncio.to_thread(self._stat, root, path, record.name)
        return web.Response(status=200, headers={_STAT_HEADER: info.header()})

    @staticmethod
    def _stat(root: Path, path: str, name: str) -> Any:
        try:
            return stat_path(root, path)
        except (FileNotFoundError, NotADirectoryError):
            raise NotFound(f"Could not find the file {path} in container {name}") from None

    async def get(self, request: web.Request) -> web.StreamResponse:
        """``GET /containers/{id}/archive``: a tar of the path."""
        service = container_service(self.ctx)
        record = service.get(request.match_info["id"])
        path = self._path(request)
        async with service.mounted_rootfs(record.id) as root:
            info = await asyncio.to_thread(self._stat, root, path, record.name)
            return await _stream_tar(
                request, lambda out: write_path_tar(root, path, out), {_STAT_HEADER: info.header()}
            )

    async def put(self, request: web.Request) -> web.StreamResponse:
        """``PUT /containers/{id}/archive``: extract the body's tar into the directory."""
        service = container_service(self.ctx)
        record = service.get(request.match_info["id"])
        path = self._path(request)
        no_overwrite = query_bool(request, "noOverwriteDirNonDir")
        if record.host_config.readonly_rootfs and record.state.running:
            raise web.HTTPForbidden(text="container rootfs is marked read-only")
        with tempfile.TemporaryFile(dir=self.ctx.data_root) as spool:
            async for chunk in request.content.iter_chunked(_CHUNK):
                await asyncio.to_thread(spool.write, chunk)
            spool.seek(0)
            async with service.mounted_rootfs(record.id) as root:
                await asyncio.shield(
                    asyncio.to_thread(
                        extract_into, root, path, spool, no_overwrite_dir_non_dir=no_overwrite
                    )
                )
        service.publish(record, "extract-to-dir", {"path": path})
        return web.Response(status=200)

    async def _changes(self, record: Any) -> list[Change]:
        service = container_service(self.ctx)
        mounts = await asyncio.to_thread(service.rootfs.prepare, record.chain_id, record.id)
        if mounts.driver == "overlay":
            assert mounts.upperdir is not None
            found = await asyncio.to_thread(changes_overlay, mounts.upperdir, mounts.lowerdirs)
        else:
            snapshotter = service.rootfs.snapshotter
            base = snapshotter.info(record.chain_id).path if record.chain_id else None
            found = await asyncio.to_thread(changes_copy, mounts.rootfs, base)
        return _without_mountpoints(found, _mount_targets(record))

    async def changes(self, request: web.Request) -> web.Response:
        """``GET /containers/{id}/changes``."""
        record = container_service(self.ctx).get(request.match_info["id"])
        return json_response([c.to_api() for c in await self._changes(record)])

    async def export(self, request: web.Request) -> web.StreamResponse:
        """``GET /containers/{id}/export``: the whole root file system as a tar."""
        service = container_service(self.ctx)
        record = service.get(request.match_info["id"])
        async with service.mounted_rootfs(record.id) as root:
            response = await _stream_tar(request, lambda out: write_path_tar(root, "/", out))
        service.publish(record, "export")
        return response

    async def commit(self, request: web.Request) -> web.Response:
        """``POST /commit``: ``{"Id": "sha256:..."}`` (201)."""
        service = container_service(self.ctx)
        query = request.query
        ref = query.get("container", "")
        if not ref:
            raise BadRequest("No container name or ID supplied")
        record = service.get(ref)
        repo, tag = query.get("repo", ""), query.get("tag", "")
        name = None
        if repo:
            try:
                name = parse_reference(f"{repo}:{tag}" if tag else repo)
            except ImageReferenceError as exc:
                raise BadRequest(str(exc)) from None
        elif tag:
            raise BadRequest("tag without a repository")
        body = await request.read()
        override = None
        if body.strip():
            try:
                override = json.loads(body)
            except ValueError as exc:
                raise BadRequest(f"invalid JSON body: {exc}") from None
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
        pause = query_bool(request, "pause", default=True)
        paused_here = False
        if pause and record.state.running and not record.state.paused:
            await service.pause(record.id)
            paused_here = True
        try:
            found = await self._changes(record)
            images = await asyncio.to_thread(attach_image_service, self.ctx)
            async with service.mounted_rootfs(record.id) as root:
                image = await run_commit(images, record, root, found, commit_request)
        finally:
            if paused_here:
                with contextlib.suppress(Exception):
                    await service.unpause(record.id)
        attrs = {"comment": commit_request.comment, "imageID": image.id}
        if name is not None:
            attrs["imageRef"] = name.familiar()
        service.publish(record, "commit", attrs)
        return json_response({"Id": image.id}, status=201)


def _override(body: dict[str, Any] | None) -> dict[str, Any] | None:
    """The non-empty fields of a commit body (a ContainerConfig the client sent)."""
    if not body:
        return None
    keys = ("User", "ExposedPorts", "Env", "Cmd", "Healthcheck", "WorkingDir", "Entrypoint",
            "Volumes", "Labels", "StopSignal", "OnBuild")  # fmt: skip
    picked = {k: body[k] for k in keys if body.get(k) not in (None, "", [], {})}
    return picked or None


def _mount_targets(record: Any) -> set[str]:
    """Destinations of the container's mounts in its runtime spec (and the default ones)."""
    targets = {"/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/.dockerenv"}
    try:
        spec = json.loads((Path(record.bundle_dir) / "config.json").read_text())
    except (OSError, ValueError):
        return targets
    for mount in spec.get("mounts") or []:
        destination = mount.get("destination")
        if isinstance(destination, str):
            targets.add(destination.rstrip("/") or "/")
    return targets


def _without_mountpoints(changes: list[Change], targets: set[str]) -> list[Change]:
    """Changes minus mount points (and parent directories changed only by them)."""

    def under(path: str) -> bool:
        return any(path == t or path.startswith(t + "/") for t in targets)

    kept = [c for c in changes if not under(c.path)]
    dropped = {c.path for c in changes} - {c.path for c in kept}
    result = []
    for change in kept:
        prefix = change.path + "/"
        only_for_mounts = (
            change.kind == CHANGE_MODIFIED
            and any(p.startswith(prefix) for p in dropped)
            and not any(c.path.startswith(prefix) for c in kept)
        )
        if not only_for_mounts:
            result.append(change)
    return result
