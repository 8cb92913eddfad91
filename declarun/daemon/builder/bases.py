"""The images a build starts from: ``FROM`` bases, ``COPY --from`` and ``from=`` images.

Each name is resolved once per build, even when several stages ask concurrently: a local
image is used as it is (when its platform fits), otherwise -- or always with ``pull`` --
it is pulled through the image service, with the request's ``X-Registry-Config``
credentials for its registry (else the daemon's docker config), its progress messages
passing into the build's output as dockerd's classic builder shows them. A pull that fails
ends the build with the registry's error (``manifest for x not found``, ``pull access
denied ...``). Every image used is added to the build's lease, so a ``docker rmi`` during
the build cannot take its blobs away.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

from declarun.daemon.builder.output import BuildOutput
from declarun.daemon.images.auth import Credentials, credentials_for
from declarun.daemon.images.platform import Platform as ImagePlatform
from declarun.daemon.images.pull import prepare_pull
from declarun.daemon.images.service import ImageService
from declarun.daemon.metadata import Image, ImageNotFoundError, LeaseResource
from declarun.errdefs import InvalidArgument, NotFound
from declarun.errors import ImageReferenceError
from declarun.reference import is_image_id, parse_reference

__all__ = ["BaseImages"]


class BaseImages:
    """The external images of one build (see the module docstring)."""

    def __init__(
        self,
        svc: ImageService,
        output: BuildOutput,
        lease_id: str,
        *,
        pull: bool,
        platform: ImagePlatform | None,
        auth: Mapping[str, Credentials],
    ) -> None:
        self._svc = svc
        self._output = output
        self._lease_id = lease_id
        self._pull = pull
        self._platform = platform
        self._auth = auth
        self._found: dict[str, asyncio.Task[Image]] = {}

    async def get(self, name: str, output: BuildOutput | None = None) -> Image:
        """The image ``name`` names, pulled if needed (once per build); a pull's progress
        goes to ``output`` (the build's by default)."""
        task = self._found.get(name)
        if task is None:
            task = asyncio.ensure_future(self._resolve(name, output or self._output))
            self._found[name] = task
        return await asyncio.shield(task)

    def _fits(self, image: Image) -> bool:
        wanted = self._platform
        if wanted is None:
            return True
        have = image.record.platform
        return (have.os, have.architecture) == (wanted.os, wanted.architecture)

    async def _local(self, name: str) -> Image | None:
        try:
            image = await asyncio.to_thread(self._svc.resolve, name)
        except ImageNotFoundError:
            return None
        return image if self._fits(image) else None

    async def _resolve(self, name: str, output: BuildOutput) -> Image:
        bare_id = is_image_id(name) or (name.startswith("sha256:") and is_image_id(name[7:]))
        image = None if self._pull and not bare_id else await self._local(name)
        if image is None:
            if bare_id:
                raise NotFound(f"No such image: {name}")
            image = await self._fetch(name, output)
        await asyncio.to_thread(
            self._svc.metadata.add_lease_resources,
            self._lease_id,
            [LeaseResource("image", image.id)],
        )
        await asyncio.to_thread(self._svc.ensure_unpacked, image.record)
        return image

    async def _fetch(self, name: str, output: BuildOutput) -> Image:
        try:
            ref = parse_reference(name)
        except ImageReferenceError as exc:
            raise InvalidArgument(str(exc)) from None
        credentials = credentials_for(self._auth, ref.domain)
        pull = await prepare_pull(self._svc, ref, platform=self._platform, credentials=credentials)
        errors: list[str] = []

        def emit(message: dict[str, Any]) -> None:
            if "error" in message:
                errors.append(str(message["error"]))
            else:
                output.message(message)

        if not await pull.run(emit):
            raise NotFound(errors[0] if errors else f"pulling {ref.familiar()} failed")
        return await asyncio.to_thread(self._svc.resolve, str(ref))
