"""Waits that can never end: ``condition: healthy`` on a container with no health check.

``validate`` catches a dependency whose health check is switched off; one with no health
check of its own relies on its image's, which is known only once the image is there. The
plan knows then (the observer reads each image's health check), and turns the change that
would wait for ever into an ``error``, so ``apply`` refuses before creating anything.
"""

from __future__ import annotations

from collections.abc import Mapping

from declarun.plan.desired import DesiredState
from declarun.plan.drafts import Draft, reason
from declarun.plan.observed import ObservedState
from declarun.stack.model import Stack

__all__ = ["refuse_impossible_waits"]


def refuse_impossible_waits(
    stack: Stack, desired: DesiredState, snapshot: ObservedState, drafts: Mapping[str, Draft]
) -> None:
    """Mark as ``error`` every container change that would wait for a dependency to turn
    healthy when neither the dependency nor its (present) image has a health check."""
    for draft in drafts.values():
        if draft.kind != "container" or draft.action not in ("create", "recreate", "start"):
            continue
        for wait in draft.waits:
            target = desired.containers.get(wait.on.partition(":")[2])
            if wait.condition != "healthy" or target is None:
                continue
            own = stack.containers[target.container].healthcheck
            if own is not None and own.test:  # its own test (or NONE, which validate refuses)
                continue
            image = snapshot.images.get(desired.images[target.image].ref)
            if image is None or image.has_healthcheck:
                continue  # not pulled yet (unknown), or the image's own health check
            draft.action = "error"
            draft.reasons.append(
                reason(
                    "no_healthcheck",
                    f"{draft.name} waits for {target.replica} to be healthy, but "
                    f"{target.replica} has no health check (none of its own, and its image "
                    f"{target.image_ref} declares none): give {target.replica} a healthcheck, "
                    "or wait for condition started",
                )
            )
