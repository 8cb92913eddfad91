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

from collections.abc import Mapping
from dataclasses import dataclass

from declarun.plan.identity import input_label
from declarun.stack.model import Container, Stack

__all__ = ["MISSING", "UNHASHED", "DesiredInput", "bind_key", "container_inputs", "tracked_binds"]

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


@dataclass(frozen=True, slots=True, kw_only=True)
class DesiredInput:
    """One input of a container (or of a Swarm service): a file whose content, by digest,
    it depends on; the digest is recorded in the label ``label``."""

    kind: str  # env-file | bind
    path: str
    label: str  # the label key recording the digest
    digest: str


def container_inputs(container: Container, digests: Mapping[str, str]) -> tuple[DesiredInput, ...]:
    """The inputs of ``container``, by label: its env files and its read-only bind sources
    whose digest the observer read (``digests``, as :attr:`ObservedState.inputs
    <declarun.plan.observed.ObservedState.inputs>`)."""
    found: dict[str, DesiredInput] = {}
    for env_file in container.env_files:
        path = str(env_file.path)
        label = input_label("env-file", path)
        found[label] = DesiredInput(
            kind="env-file", path=path, label=label, digest=f"sha256:{env_file.sha256}"
        )
    for mount in container.mounts:
        if mount.type != "bind" or not mount.read_only or mount.source is None:
            continue
        digest = digests.get(bind_key(mount.source), UNHASHED)
        if digest != UNHASHED:  # too large or unreadable: not tracked (see the module doc)
            label = input_label("bind", mount.source)
            found[label] = DesiredInput(kind="bind", path=mount.source, label=label, digest=digest)
    return tuple(found[label] for label in sorted(found))
