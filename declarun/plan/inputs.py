"""The host inputs of a stack: which files it reads at run time, and how their digests are keyed.

A container is recreated when one of its inputs changed. Which inputs count is decided here,
purely from the stack; the digests are read from the host by the observer
(``declarun.observe.digests``) into :attr:`ObservedState.inputs
<declarun.plan.observed.ObservedState.inputs>`:

* **read-only bind mounts** (``./conf:/etc/app:ro``): configuration, so a changed file means
  the container must be recreated to see it consistently. Writable binds are data the
  container itself changes; tracking them would recreate the container on every apply.

(A built image's inputs — its context, Dockerfile, args, base images — are
:class:`~declarun.plan.buildinputs.BuildInputs`, read by ``declarun.observe.builds``.)

An input that is too large or unreadable to hash is recorded as :data:`UNHASHED` and is then
never a reason to recreate; one that does not exist is :data:`MISSING`.
"""

from __future__ import annotations

from declarun.stack.model import Stack

__all__ = ["MISSING", "UNHASHED", "bind_key", "tracked_binds"]

MISSING = "missing"
UNHASHED = "unhashed"


def bind_key(path: str) -> str:
    """The key of a bind mount source in :attr:`ObservedState.inputs`."""
    return f"bind:{path}"


def tracked_binds(stack: Stack) -> tuple[str, ...]:
    """The bind mount sources whose content is tracked: every read-only bind, once each."""
    sources = {
        mount.source
        for container in stack.containers.values()
        for mount in container.mounts
        if mount.type == "bind" and mount.read_only and mount.source is not None
    }
    return tuple(sorted(sources))
