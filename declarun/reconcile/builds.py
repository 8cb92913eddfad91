"""Building one of the stack's images through the engine port, and recording what it was
built from.

:func:`build_image` runs one build the plan asked for (or ``declarun build``):

1. **base images first.** A base image the lock pins is pulled by digest when it is not
   present (``<repository>@<digest>``), tagged locally with the reference the Dockerfile
   uses, and checked to be that image; with ``pull`` (``declarun build --pull``) every other
   base image is pulled again. The build itself never pulls (``pull=false`` in the request),
   so it starts from exactly those images — and a base that is another image of the stack,
   which no registry has, is never looked for in one;
2. **the build**, its output shown live: each ``Step N/M`` line is kept on screen
   (:meth:`StepContext.log`), the latest line of any kind is the step's status, and the
   last lines are kept for the failure report; a build that fails fails the step with the
   engine's message (for a ``RUN``, its exit code);
3. **the record**: the inputs the plan saw, with the base images' ids as they are now, are
   written to the user's cache directory under the tag and the new image id
   (``observe.buildcache``), which is how the next plan knows nothing changed.
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, replace
from pathlib import Path

from declarun.engine.port import Engine
from declarun.engine.types import BuildEvent, BuildRequest
from declarun.errdefs import ErrorKind, NotFound
from declarun.frozen import FrozenDict
from declarun.observe.buildcache import write_record
from declarun.plan.desired import DesiredBuild, DesiredImage
from declarun.reconcile import actions
from declarun.reconcile.executor import StepContext, StepFailed

__all__ = ["TAIL_LINES", "BuildOptions", "BuildOutput", "build_image"]

#: How many lines of a failed build's output its report shows.
TAIL_LINES = 20


@dataclass(frozen=True)
class BuildOptions:
    """``declarun build``'s flags: pull every base image again, use no cached step."""

    pull: bool = False
    nocache: bool = False


class BuildOutput:
    """A build's progress as it comes: whole lines from the stream's chunks, ``Step N/M``
    lines kept on screen (``ctx.log``), the latest line as the step's status, the last
    :data:`TAIL_LINES` lines kept for :meth:`report`, the built image's id."""

    def __init__(self, ctx: StepContext | None) -> None:
        self.ctx = ctx
        self.partial = ""
        self.tail: collections.deque[str] = collections.deque(maxlen=TAIL_LINES)
        self.image_id: str | None = None

    def feed(self, event: BuildEvent) -> None:
        """Take one event of the build."""
        if event.image_id:
            self.image_id = event.image_id
        if event.status and self.ctx is not None:
            self.ctx.update(event.status)
        if event.output:
            self.partial += event.output
            *lines, self.partial = self.partial.split("\n")
            for line in lines:
                self.line(line.rstrip("\r"))

    def line(self, line: str) -> None:
        """Take one whole line of output."""
        if not line.strip():
            return
        self.tail.append(line)
        if self.ctx is None:
            return
        if line.startswith("Step "):
            self.ctx.log(line)
        self.ctx.update(line.strip()[:100])

    def report(self) -> str:
        """The last lines, for a failure report (empty when there were none)."""
        if self.partial.strip():
            self.line(self.partial)
            self.partial = ""
        if not self.tail:
            return ""
        lines = [f"last {len(self.tail)} lines of the build's output:"]
        lines += [f"  | {line}" for line in self.tail]
        return "\n".join(lines)


def _image_id(engine: Engine, ref: str) -> str | None:
    try:
        return engine.inspect_image(ref).id
    except NotFound:
        return None


def _prepare_bases(
    engine: Engine, build: DesiredBuild, platform: str, pull: bool, ctx: StepContext | None
) -> None:
    """Pinned bases pulled by digest and tagged as the Dockerfile names them; with ``pull``
    the other registry bases pulled again."""
    for ref, pinned in build.base_pins.items():
        if _image_id(engine, pinned) is None:
            actions.pull_image(engine, pinned, platform=platform, ctx=ctx)
        try:
            engine.tag_image(pinned, ref)
        except ErrorKind as exc:
            raise StepFailed(f"tag the locked base image {pinned} as {ref}: {exc}") from None
        if _image_id(engine, ref) != _image_id(engine, pinned):
            raise StepFailed(f"the base image {ref} is not {pinned} after tagging it: retry")
    if pull:
        for ref in build.bases:
            if ref not in build.base_pins and ref not in build.stack_bases:
                actions.pull_image(engine, ref, platform=platform, ctx=ctx)


def _record_bases(engine: Engine, build: DesiredBuild) -> FrozenDict[str, str]:
    """The identity of each base image now: its pin's digest, else its local id."""
    found: dict[str, str] = {}
    for ref in build.bases:
        pinned = build.base_pins.get(ref)
        identity = pinned.rpartition("@")[2] if pinned is not None else _image_id(engine, ref)
        if identity is not None:
            found[ref] = identity
    return FrozenDict(sorted(found.items()))


def build_image(
    engine: Engine,
    image: DesiredImage,
    *,
    options: BuildOptions = BuildOptions(),
    ctx: StepContext | None = None,
) -> str:
    """Build ``image`` (see the module docstring); returns the built image's id.

    Raises :class:`StepFailed` with the engine's message (the change's label names the
    image) and the tail of the build's output.
    """
    build = image.build
    if build is None:
        raise StepFailed(f"image {image.name} is not built by the stack: re-run plan")
    if build.inputs is None:
        raise StepFailed(f"cannot build {image.ref}: {build.problem}")
    _prepare_bases(engine, build, image.platform, options.pull, ctx)
    request = BuildRequest(
        context=Path(build.context),
        dockerfile=build.dockerfile,
        tags=(image.ref,),
        args=build.args,
        target=build.target,
        labels=build.labels,
        pull=False,
        nocache=options.nocache,
        platform=build.platform,
    )
    output = BuildOutput(ctx)
    try:
        for event in engine.build_image(request):
            output.feed(event)
    except ErrorKind as exc:  # BuildFailed among them: the engine's message says it all
        raise StepFailed(str(exc), output.report()) from None
    output.report()  # flushes a last line without a newline
    built = output.image_id or _image_id(engine, image.ref)
    if built is None:
        raise StepFailed(f"build {image.ref}: the engine did not say which image it built")
    inputs = replace(build.inputs, bases=_record_bases(engine, build))
    try:
        write_record(image.ref, built, inputs)
    except (OSError, ValueError) as exc:
        raise StepFailed(
            f"{image.ref} was built ({built}), but what it was built from could not be "
            f"recorded: {exc}; every plan will build it again until the cache directory "
            "($XDG_CACHE_HOME/declarun, else ~/.cache/declarun) is writable"
        ) from None
    return built
