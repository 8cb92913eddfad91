"""A service's ``image``, ``build``, ``pull_policy`` and ``platform`` as the stack language's
images: a literal reference when that is all there is, else a declared image named after the
service (``NAME-image`` when a service uses ``NAME`` as a literal reference), which a
container refers to by name."""

from __future__ import annotations

from typing import Any

from declarun.compose.nodes import Node
from declarun.compose.translate_context import ServiceContext
from declarun.compose.translate_values import as_text
from declarun.compose.translation import Translation
from declarun.stack.load import DataPath
from declarun.stack.normalize_common import scalar_text

__all__ = ["translate_image"]

_PULL = {"always": "always", "never": "never", "missing": "missing", "if_not_present": "missing"}


def _image_name(name: str, ctx: ServiceContext) -> str:
    """A name for the image a service declares that no literal reference shadows."""
    candidate = name
    while candidate in ctx.literal_refs or candidate in ctx.images:
        candidate += "-image"
    return candidate


def translate_image(
    t: Translation,
    ctx: ServiceContext,
    name: str,
    service: Node,
    spath: DataPath,
    cpath: DataPath,
    container: dict[str, Any],
) -> None:
    """Set ``container``'s ``image`` (declaring an image in ``ctx.images`` when needed)."""
    image = service.get("image")
    ref = as_text(image)
    build = service.get("build")
    pull_node = service.get("pull_policy")
    platform = service.get("platform")
    pull: str | None = None
    if pull_node is not None:
        written = scalar_text(pull_node.value)
        pull = _PULL.get(written)
        if pull is None:
            pull = "missing"
            t.warn(
                pull_node.where,
                (*cpath, "pull_policy"),
                f"pull_policy {written!r} is not supported: the image is pulled when missing",
            )
    built = _build(t, ctx, build, (*cpath, "build")) if build is not None else None
    if built is None and ref is None:
        t.problem(
            service.at,
            cpath,
            "a service needs an image or a build",
            "add image: with a reference such as busybox:1.36",
        )
        return
    if built is None and pull in (None, "missing") and platform is None:
        assert image is not None and ref is not None
        container["image"] = ref
        t.record((*spath, "image"), image, (*cpath, "image"))
        return
    image_name = _image_name(name, ctx)
    declared: dict[str, Any] = {}
    ipath: DataPath = ("images", image_name)
    t.record(ipath, service, cpath)
    if ref is not None and image is not None:
        declared["ref"] = ref
        t.record((*ipath, "ref"), image, (*cpath, "image"))
    if built is not None and build is not None:
        declared["build"] = built
        t.record((*ipath, "build"), build, (*cpath, "build"))
    if pull not in (None, "missing") and pull_node is not None:
        declared["pull"] = pull
        t.record((*ipath, "pull"), pull_node, (*cpath, "pull_policy"))
    if platform is not None:
        declared["platform"] = scalar_text(platform.value)
        t.record((*ipath, "platform"), platform, (*cpath, "platform"))
    ctx.images[image_name] = declared
    container["image"] = image_name
    t.record((*spath, "image"), image or build or service, (*cpath, "image"))
    if ref is None:
        t.note((*spath, "image"), f"built and tagged {t.data.get('stack', '')}-{image_name}")


def _build(
    t: Translation, ctx: ServiceContext, build: Node, cpath: DataPath
) -> dict[str, Any] | None:
    context = build.get("context")
    text = as_text(context) or "."
    if "://" in text or text.startswith("git@"):
        t.warn(
            (context or build).where,
            (*cpath, "context"),
            "a build context from a URL is not supported: the build is left out",
        )
        return None
    built: dict[str, Any] = {"context": text}
    dockerfile = as_text(build.get("dockerfile"))
    if dockerfile is not None:
        built["dockerfile"] = dockerfile
    args = build.get("args")
    if args is not None:
        values: dict[str, str] = {}
        for key, value in args.items():
            if value.value is None:
                found = ctx.lookup(key)
                if found is not None:
                    values[key] = found
            else:
                values[key] = scalar_text(value.value)
        if values:
            built["args"] = values
    target = as_text(build.get("target"))
    if target is not None:
        built["target"] = target
    labels = build.get("labels")
    if labels is not None:
        # A label listed without a value (``- "a"``) is an empty label, as docker compose sets it.
        label_values = {
            key: "" if value.value is None else scalar_text(value.value)
            for key, value in labels.items()
        }
        if label_values:
            built["labels"] = label_values
    return built
