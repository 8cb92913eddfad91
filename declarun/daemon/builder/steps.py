"""One step of a stage: the cache first, then metadata, ``RUN``, ``COPY``/``ADD`` or ``WORKDIR``.

:class:`StepRunner` takes the image reached so far and the parent cache key, and returns
the step's image and key:

* the key is the frontend's :meth:`~declarun.dockerfile.Step.cache_key`; for ``COPY``/``ADD``
  it needs the sources digest, so the copy is planned (and ``ADD`` URLs downloaded) first;
* a key in the build cache (unless ``nocache``) reuses its image; failing that, a
  ``cachefrom`` image whose history continues the current one with this step's
  ``created_by`` is restored, as dockerd's ``ImageCache`` does;
* otherwise the step runs: metadata steps only commit the new config; ``RUN`` runs a
  container (:mod:`.runstep`) and commits its diff; ``COPY``/``ADD`` and ``WORKDIR`` write
  into a writable root of the previous image (:mod:`.roots`) and commit that diff. An
  empty diff adds no layer (``empty_layer`` in the history, as dockerd records it).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any, Protocol

from declarun.daemon import failpoints
from declarun.daemon.builder.copystep import (
    Downloaded,
    copy_cache_digest,
    copy_entries,
    copy_history_hash,
    download,
    plan_step_copy,
    write_copy,
)
from declarun.daemon.builder.environment import BuildEnv, BuildRequestState
from declarun.daemon.builder.roots import ImageRoot, RootFacts, adopt_writable
from declarun.daemon.builder.runmounts import MountSources, SourceRoot, prepare_mounts
from declarun.daemon.builder.runstep import (
    container_body,
    discard_container,
    run_container,
    without_mount_stubs,
)
from declarun.daemon.builder.stepimage import StepImage, commit_step, record_cache, step_image
from declarun.daemon.builder.threads import blocking
from declarun.daemon.builder.uppercopy import write_copy_upper
from declarun.daemon.containers.lifecycle.service import ContainerService
from declarun.daemon.containers.rootfs.changes import Change
from declarun.daemon.containers.rootfs.fsaccess import write_layer_tar
from declarun.daemon.images.content import BlobInfo
from declarun.daemon.images.newimage import StoredLayer, ingest_layer, unpack_layer
from declarun.daemon.images.tarsafe import InRoot
from declarun.daemon.metadata import ImageNotFoundError
from declarun.daemon.snapshots import SnapshotInfo
from declarun.dockerfile import CopySpec, Step, created_timestamp
from declarun.errdefs import InvalidArgument
from declarun.errors import UnpackError

__all__ = ["BuiltStages", "StepRunner", "make_workdir"]

#: Publishes a written layer's files as its snapshot: ``(diff_id, size) -> snapshot``.
Adopt = Callable[[str, int], SnapshotInfo | None]


class BuiltStages(Protocol):
    """The stages built so far, as ``COPY --from`` and ``from=`` name them."""

    def stage_reference(self, text: str) -> int | None:
        """The stage ``text`` names (name or index), None for an image."""
        ...

    def stage_image(self, index: int) -> StepImage:
        """The last image of stage ``index`` (built earlier)."""
        ...


def make_workdir(root: Path, path: str) -> None:
    """``mkdir -p`` of ``path`` inside ``root`` (symlinks followed inside it), mode 0755."""
    parts = [p for p in path.split("/") if p]
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        resolved = InRoot(fd).open_dir(parts, create=True, follow=True)
        os.close(resolved.fd)
    except UnpackError as exc:
        raise InvalidArgument(f"mkdir {path}: {exc}") from None
    except NotADirectoryError:
        raise InvalidArgument(f"mkdir {path}: not a directory") from None
    finally:
        os.close(fd)


class StepRunner:
    """Runs the steps of a build (see the module docstring)."""

    def __init__(self, env: BuildEnv, state: BuildRequestState, stages: BuiltStages) -> None:
        self.env = env
        self.state = state
        self.stages = stages
        self._sources: list[StepImage] | None = None

    # -- the loop body ----------------------------------------------------------------

    async def run(self, image: StepImage, parent_key: str, step: Step) -> tuple[StepImage, str]:
        """The step's image and key (see the module docstring)."""
        if step.kind == "copy":
            return await self._copy(image, parent_key, step)
        key = step.cache_key(parent_key)
        hit = await self._cached(key, image, step, None)
        if hit is not None:
            return hit, key
        if step.kind == "run":
            result, size = await self._run(image, step)
        elif step.kind == "workdir":
            result, size = await self._workdir(image, step)
        else:
            result = await self._commit(image, step, None)
            size = 0
        await blocking(record_cache, self.env.images, key, parent_key, result, step, size)
        return result, key

    def _created(self) -> str:
        return created_timestamp(time.time_ns(), self.state.epoch)

    async def _commit(
        self,
        image: StepImage,
        step: Step,
        layer: StoredLayer | None,
        *,
        source_hash: str | None = None,
        container_id: str = "",
    ) -> StepImage:
        return await blocking(
            commit_step,
            self.env.images,
            self.state.lease_id,
            image,
            step,
            layer=layer,
            created=self._created(),
            source_hash=source_hash,
            container_id="" if self.state.epoch is not None else container_id,
        )

    def _ingest(self, root: Path, changes: list[Change]) -> BlobInfo:
        epoch = self.state.epoch
        return ingest_layer(
            self.env.images,
            self.state.lease_id,
            lambda out: write_layer_tar(root, changes, out, mtime_limit=epoch),
            ref_prefix="build",
        )

    def _unpack(self, parent: StepImage, blob: BlobInfo, adopt: Adopt | None) -> StoredLayer:
        return unpack_layer(
            self.env.images, self.state.lease_id, parent.chain_id, blob, adopt=adopt
        )

    def _store_root(self, parent: StepImage, root: ImageRoot, path: Path) -> StoredLayer | None:
        """The layer of what was written into ``root`` (None: nothing was), its files
        becoming the snapshot."""
        changes = root.changes()
        if not changes:
            return None
        blob = self._ingest(path, changes)
        epoch = self.state.epoch
        return self._unpack(parent, blob, lambda d, s: root.adopt(changes, d, s, mtime_limit=epoch))

    # -- the cache --------------------------------------------------------------------

    async def _cached(
        self, key: str, image: StepImage, step: Step, source_hash: str | None
    ) -> StepImage | None:
        if self.state.options.no_cache:
            return None
        svc = self.env.images
        entry = await blocking(svc.metadata.use_build_cache, key)
        if entry is not None:
            with contextlib.suppress(ImageNotFoundError):
                found = await blocking(svc.metadata.get_image, entry.image_id)
                self.state.output.arrow("Using cache")
                return await blocking(step_image, svc, found, self.state.lease_id)
        restored = await self._from_sources(image, step, source_hash)
        if restored is not None:
            await blocking(record_cache, svc, key, "", restored, step, 0)
            self.state.output.arrow("Using cache")
        return restored

    async def _cache_sources(self) -> list[StepImage]:
        if self._sources is None:
            found = []
            for name in self.state.options.cache_from:
                with contextlib.suppress(ImageNotFoundError):
                    image = await blocking(self.env.images.resolve, name)
                    found.append(await blocking(step_image, self.env.images, image))
            self._sources = found
        return self._sources

    async def _from_sources(
        self, image: StepImage, step: Step, source_hash: str | None
    ) -> StepImage | None:
        """A ``cachefrom`` image continuing ``image``'s history with this step, restored."""
        if not self.state.options.cache_from or (step.kind == "copy" and source_hash is None):
            return None
        history = _history(image.document)
        diff_ids = _diff_ids(image.document)
        created_by = step.created_by(source_hash=source_hash)
        for source in await self._cache_sources():
            theirs = _history(source.document)
            their_ids = _diff_ids(source.document)
            if len(theirs) <= len(history) or theirs[: len(history)] != history:
                continue
            if their_ids[: len(diff_ids)] != diff_ids:
                continue
            entry = theirs[len(history)]
            if entry.get("created_by") != created_by:
                continue
            layer = None
            if not entry.get("empty_layer"):
                if len(source.layers) <= len(image.layers):
                    continue
                found = source.layers[len(image.layers)]
                row = await blocking(self.env.images.metadata.get_layer, found.chain_id)
                layer = StoredLayer(found, row.size if row is not None else found.blob.size)
            return await blocking(
                commit_step,
                self.env.images,
                self.state.lease_id,
                image,
                step,
                layer=layer,
                created=str(entry.get("created") or self._created()),
                source_hash=source_hash,
                history=entry,
            )
        return None

    # -- RUN --------------------------------------------------------------------------

    def _root(self, chain_id: str | None) -> ImageRoot:
        return ImageRoot(self.env.images.snapshotter, chain_id, self.state.dirs.tmp)

    @contextlib.asynccontextmanager
    async def _source_roots(self) -> AsyncIterator[SourceRoot]:
        """Roots of ``from=`` stages and images, opened on demand and closed at the end."""
        opened: list[ImageRoot] = []

        async def source_root(reference: str) -> Path:
            stage = self.stages.stage_reference(reference)
            if stage is not None:
                chain = self.stages.stage_image(stage).chain_id
            else:
                image = await self.state.bases.get(reference, self.state.output)
                layers = image.record.layers
                chain = layers[-1].chain_id if layers else None
            root = self._root(chain)
            opened.append(root)
            return await blocking(root.view)

        try:
            yield source_root
        finally:
            for root in opened:
                await blocking(root.close)

    async def _run(self, image: StepImage, step: Step) -> tuple[StepImage, int]:
        spec = step.run
        assert spec is not None
        if image.image is None:
            raise InvalidArgument(
                "RUN needs an image to run in: this stage has no files yet (FROM scratch)"
            )
        containers = self.env.containers
        options = self.state.options
        output = self.state.output
        async with self._source_roots() as source_root:
            sources = MountSources(
                self.state.context,
                source_root,
                dict(options.secrets),
                self.env.cache_mounts,
                self.state.dirs,
            )
            mounts = await prepare_mounts(spec, sources)
            try:
                body = container_body(
                    image.id, spec, mounts.argv(spec.argv), mounts.mounts, options
                )
                record = await containers.create(body, name="")
                output.arrow(f"Running in {record.id[:12]}")
                try:
                    sink = output.command_output()
                    await run_container(containers, record, sink, " ".join(spec.argv))
                    failpoints.hit("build-run-before-commit")
                    changes = without_mount_stubs(
                        await containers.changes(record.id), record.bundle_dir
                    )
                    layer = None
                    if changes:
                        async with containers.mounted_rootfs(record.id) as root:
                            blob = await blocking(self._ingest, root, changes)
                        adopt: Adopt | None = None
                        if options.remove or options.force_remove:
                            # The container goes right after: its upper directory can be
                            # the snapshot itself.
                            snapshotter = self.env.images.snapshotter

                            def adopt(diff_id: str, size: int) -> SnapshotInfo | None:
                                return adopt_writable(
                                    snapshotter,
                                    record.id,
                                    changes,
                                    diff_id,
                                    size,
                                    mtime_limit=self.state.epoch,
                                )

                        layer = await blocking(self._unpack, image, blob, adopt)
                    result = await self._commit(image, step, layer, container_id=record.id)
                except BaseException as exc:
                    # dockerd keeps a failed step's container unless forcerm; a cancelled
                    # build (the client went away) leaves nothing behind.
                    if not isinstance(exc, Exception):
                        await _discard(containers, record.id)
                    elif options.force_remove:
                        await _discard(containers, record.id)
                        output.stream(f"Removing intermediate container {record.id[:12]}\n")
                    raise
                if options.remove or options.force_remove:
                    await _discard(containers, record.id)
                    output.stream(f"Removing intermediate container {record.id[:12]}\n")
            finally:
                await mounts.close()
        return result, layer.size if layer is not None else 0

    # -- WORKDIR ----------------------------------------------------------------------

    async def _workdir(self, image: StepImage, step: Step) -> tuple[StepImage, int]:
        assert step.workdir is not None
        root = self._root(image.chain_id)
        try:
            path = await blocking(root.writable)
            await blocking(make_workdir, path, step.workdir)
            layer = await blocking(self._store_root, image, root, path)
        finally:
            await blocking(root.close)
        result = await self._commit(image, step, layer)
        return result, layer.size if layer is not None else 0

    # -- COPY / ADD -------------------------------------------------------------------

    async def _copy(self, image: StepImage, parent_key: str, step: Step) -> tuple[StepImage, str]:
        spec = step.copy
        assert spec is not None
        options = self.state.options
        from_context = spec.from_stage is None and spec.from_image is None
        # The digest is a function of the sources and of the image written into, which never
        # changes: once computed it is remembered -- for another image by its chain ID, for
        # the context by the fingerprint of its index -- and a rebuild finds its key without
        # planning the copy again (nor mounting anything).
        memo_key: tuple[object, ...] | None = None
        if not options.cache_from and not any(
            s.startswith(("http://", "https://")) for s in spec.sources
        ):
            source = (
                self.state.context_fingerprint() if from_context else await self._source_chain(spec)
            )
            memo_key = ("copy-digest", source, image.chain_id, spec)
            remembered = self.env.facts.get(memo_key)
            if isinstance(remembered, str) and not options.no_cache:
                key = step.cache_key(parent_key, sources_digest=remembered)
                hit = await self._cached(key, image, step, None)
                if hit is not None:
                    return hit, key
        dirs = self.state.dirs
        dest = self._root(image.chain_id)
        async with self._source_roots() as source_roots:
            try:
                source_root = await self._copy_source(spec, source_roots)
                facts = RootFacts(dest, self.env.facts)
                plan = await blocking(plan_step_copy, spec, source_root, facts)
                downloads = await self._downloads(spec, plan.downloads)
                known = self.state.known_digest if from_context else None
                digest = await blocking(copy_cache_digest, plan, downloads, known)
                if memo_key is not None:
                    self.env.facts.put(memo_key, digest)
                key = step.cache_key(parent_key, sources_digest=digest)
                source_hash = None
                if options.cache_from and not options.no_cache:
                    source_hash = await blocking(
                        copy_history_hash, plan, downloads, from_context=from_context
                    )
                hit = await self._cached(key, image, step, source_hash)
                if hit is not None:
                    return hit, key
                if source_hash is None:
                    source_hash = await blocking(
                        copy_history_hash, plan, downloads, from_context=from_context
                    )
                entries = await blocking(copy_entries, plan, spec, downloads, facts)
                if dest.direct and not plan.extractions:
                    # Straight into the upper directory, context files hard-linked.
                    root = await blocking(dest.upper)
                    await blocking(
                        write_copy_upper,
                        entries,
                        await blocking(dest.view),
                        root,
                        linkable=(self.state.context, dirs.downloads),
                        linked=self.state.linked,
                        epoch=self.state.epoch,
                    )
                else:
                    root = await blocking(dest.writable)
                    await blocking(
                        write_copy, plan, spec, entries, root, epoch=self.state.epoch, tmp=dirs.tmp
                    )
                layer = await blocking(self._store_root, image, dest, root)
            finally:
                await blocking(dest.close)
        result = await self._commit(image, step, layer, source_hash=source_hash)
        size = layer.size if layer is not None else 0
        await blocking(record_cache, self.env.images, key, parent_key, result, step, size)
        return result, key

    async def _source_chain(self, spec: CopySpec) -> str | None:
        """The chain ID of a ``--from`` stage's or image's top layer."""
        if spec.from_stage is not None:
            return self.stages.stage_image(spec.from_stage).chain_id
        assert spec.from_image is not None
        layers = (await self.state.bases.get(spec.from_image, self.state.output)).record.layers
        return layers[-1].chain_id if layers else None

    async def _copy_source(self, spec: CopySpec, source_roots: SourceRoot) -> Path:
        if spec.from_stage is not None:
            return await source_roots(str(spec.from_stage))
        if spec.from_image is not None:
            return await source_roots(spec.from_image)
        return self.state.context

    async def _downloads(self, spec: CopySpec, planned: Any) -> list[Downloaded]:
        out = []
        for item in planned:
            directory = await blocking(self.state.dirs.download_dir)
            out.append(
                await download(
                    self.state.http,
                    item.url,
                    directory,
                    max_bytes=self.env.max_download_bytes,
                    checksum=spec.checksum,
                )
            )
        return out


async def _discard(containers: ContainerService, container_id: str) -> None:
    await asyncio.shield(discard_container(containers, container_id))


def _history(document: dict[str, Any]) -> list[dict[str, Any]]:
    history = document.get("history")
    return [h for h in history if isinstance(h, dict)] if isinstance(history, list) else []


def _diff_ids(document: dict[str, Any]) -> list[str]:
    rootfs = document.get("rootfs")
    ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    return [str(i) for i in ids] if isinstance(ids, list) else []
