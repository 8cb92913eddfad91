"""Why an image must be built again, and the plan of ``declarun build``.

:func:`build_reasons` compares what an image would be built from now with what it was built
from, and names what changed: the context's files (when the previous build's file list is
known), the Dockerfile, an arg, the target, a label, the platform, a base image.
:func:`plan_builds` is the plan of building images on their own, whatever changed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from declarun.errors import DeclarunError
from declarun.plan.buildinputs import BuildInputs, FileChanges
from declarun.plan.desired import DesiredState
from declarun.plan.drafts import Draft, finish, now, reason
from declarun.plan.graph import build_graph
from declarun.plan.model import Plan, Reason
from declarun.plan.observed import ObservedState
from declarun.plan.reasons import short_digest, show
from declarun.stack.model import Stack
from declarun.stack.naming import image_for_reference
from declarun.stack.schema import suggest

__all__ = ["UnknownImage", "build_reasons", "plan_builds"]


class UnknownImage(DeclarunError):
    """``declarun build`` was asked for an image the stack does not build."""


def _mapping_reasons(
    name: str, before: Mapping[str, str], after: Mapping[str, str]
) -> list[Reason]:
    reasons: list[Reason] = []
    for key in sorted({*before, *after}):
        old, new = before.get(key), after.get(key)
        if old == new:
            continue
        field = f"build.{name}.{key}"
        if old is None:
            message = f"{field}: added {show(new)}"
        elif new is None:
            message = f"{field}: removed (was {show(old)})"
        else:
            message = f"{field}: {show(old)} → {show(new)}"
        reasons.append(
            Reason(kind="field_changed", message=message, field=field, before=old, after=new)
        )
    return reasons


def _value_reason(name: str, before: str | None, after: str | None) -> list[Reason]:
    if before == after:
        return []
    field = f"build.{name}"
    return [
        Reason(
            kind="field_changed",
            message=f"{field}: {show(before)} → {show(after)}",
            field=field,
            before=before,
            after=after,
        )
    ]


def _context_reason(
    recorded: BuildInputs, current: BuildInputs, changes: FileChanges | None, context: str
) -> list[Reason]:
    if recorded.context == current.context:
        return []
    if changes is not None and changes.count == 0:
        return []  # only the Dockerfile changed, and it has a reason of its own
    digests = f"sha256 {short_digest(recorded.context)} → {short_digest(current.context)}"
    if changes is None:
        message = (
            f"build context {context} changed ({digests}); which files is not known here: "
            "the previous build's file list is not in this machine's cache"
        )
    else:
        noun = "file" if changes.count == 1 else "files"
        message = f"{changes.count} {noun} changed in the build context: {changes.named()}"
    return [
        Reason(
            kind="input_changed",
            message=message,
            field="build.context",
            before=recorded.context,
            after=current.context,
        )
    ]


def _base_reasons(recorded: BuildInputs, current: BuildInputs) -> list[Reason]:
    reasons: list[Reason] = []
    # A base known on one side only is no reason: it was absent (the build pulls it), or
    # the FROM lines changed, which the Dockerfile's or an arg's reason already tells.
    for ref in sorted(set(recorded.bases) & set(current.bases)):
        old, new = recorded.bases[ref], current.bases[ref]
        if old != new:
            reasons.append(
                Reason(
                    kind="image_changed",
                    message=f"base image {ref} is now {short_digest(new)}; the image was "
                    f"built on {short_digest(old)}",
                    field=f"build.from.{ref}",
                    before=old,
                    after=new,
                )
            )
    return reasons


def build_reasons(
    current: BuildInputs,
    recorded: BuildInputs | None,
    changes: FileChanges | None,
    *,
    image: str,
    context: str,
    dockerfile: str,
) -> list[Reason]:
    """Why an image must be rebuilt: empty when ``current`` is what it was built from.

    ``recorded`` None means no record of its build is kept here (built elsewhere, or the
    cache was cleared): it is rebuilt, which costs little when the engine's build cache has
    every step, and gives the same image when the inputs are the same. ``image`` is the
    image's reference, ``context`` and ``dockerfile`` the paths messages show.
    """
    if recorded is None:
        return [
            Reason(
                kind="not_recorded",
                message=f"no record here of what {image} was built from (built elsewhere, "
                "or the cache was cleared): built again, which replaces no container when "
                "it gives the same image",
            )
        ]
    reasons: list[Reason] = []
    if recorded.dockerfile != current.dockerfile:
        reasons.append(
            Reason(
                kind="input_changed",
                message=f"Dockerfile changed: {dockerfile} (sha256 "
                f"{short_digest(recorded.dockerfile)} → {short_digest(current.dockerfile)})",
                field="build.dockerfile",
                before=recorded.dockerfile,
                after=current.dockerfile,
            )
        )
    reasons += _context_reason(recorded, current, changes, context)
    reasons += _mapping_reasons("args", recorded.args, current.args)
    reasons += _value_reason("target", recorded.target, current.target)
    reasons += _mapping_reasons("labels", recorded.labels, current.labels)
    reasons += _value_reason("platform", recorded.platform, current.platform)
    reasons += _base_reasons(recorded, current)
    return reasons


def plan_builds(
    stack: Stack,
    snapshot: ObservedState,
    desired: DesiredState,
    names: Sequence[str],
    *,
    created_at: str | None = None,
) -> Plan:
    """The plan of ``declarun build``: build the images ``names`` (all the stack builds when
    empty) whatever changed, after the stack images they start ``FROM`` that are not there
    yet. Raises :class:`UnknownImage` for a name the stack does not build."""
    built = [name for name, image in stack.images.items() if image.build is not None]
    wanted = list(dict.fromkeys(names)) or built
    for name in wanted:
        if name not in built:
            hint = suggest(name, built)
            listed = ", ".join(built) or "none"
            raise UnknownImage(
                f"the stack builds no image '{name}'"
                + (f"; {hint}" if hint else "")
                + f" (the images it builds: {listed})"
            )
    drafts: dict[str, Draft] = {}
    todo = list(wanted)
    while todo:
        name = todo.pop(0)
        image = desired.images[name]
        if image.id in drafts:
            continue
        draft = Draft(image.id, "build", "image", name, image.ref)
        present = snapshot.images.get(image.ref)
        draft.observed_id = None if present is None else present.id
        if name in wanted:
            draft.reasons.append(reason("requested", "asked for by declarun build"))
        else:
            draft.reasons.append(reason("missing", f"image {image.ref} is not built yet"))
        drafts[image.id] = draft
        assert image.build is not None
        for base in image.build.stack_bases:
            base_name = image_for_reference(stack, base)
            if base_name is not None and snapshot.images.get(desired.images[base_name].ref) is None:
                todo.append(base_name)
    graph = build_graph(stack, snapshot.base_images)
    for draft in drafts.values():
        draft.depends_on = {n for n in graph.successors(draft.id) if n in drafts}
    return Plan(
        stack=stack.name,
        changes=finish(drafts),
        fingerprint=snapshot.fingerprint(),
        created_at=created_at or now(),
        mode="apply",
        platform=snapshot.platform,
    )
