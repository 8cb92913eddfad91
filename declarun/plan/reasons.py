"""Why an existing object differs from what the stack wants: field, input and image reasons.

Pure comparisons between a desired resource (``plan.desired``) and the labels and state an
observed object carries (``plan.observed``). The recorded configuration (``dev.declarun.config``)
gives before-values in the stack's own terms; a nested field (``env``, ``labels``,
``resources``, ...) is compared key by key, so a reason names ``env.LOG_LEVEL`` rather than
the whole environment.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

from declarun.frozen import freeze, thaw
from declarun.plan.configs import NESTED_FIELDS
from declarun.plan.desired import DesiredContainer, DesiredImage, DesiredInput
from declarun.plan.identity import LABEL_CONFIG, LABEL_CONFIG_HASH, is_masked
from declarun.plan.model import Reason
from declarun.plan.observed import ObservedContainer, ObservedImage

__all__ = ["config_reasons", "image_reasons", "input_reasons", "short_digest", "show"]

_MISSING = object()


def short_digest(digest: str | None) -> str:
    """``abc123def456…`` (12 hex digits) for a ``sha256:`` digest; other text unchanged."""
    if digest is None:
        return "none"
    algorithm, _, hexpart = digest.partition(":")
    if algorithm == "sha256" and len(hexpart) > 12:
        return hexpart[:12] + "…"
    return digest


def show(value: Any) -> str:
    """A value as a reason message shows it: JSON (strings quoted, None is null), except a
    masked secret, which is shown bare: ``*** (sha256:…)``."""
    if is_masked(value):
        return str(value)
    return json.dumps(thaw(value), ensure_ascii=False)


def _changed(field: str, before: Any, after: Any) -> Reason:
    if before is _MISSING:
        message = f"{field}: added {show(after)}"
        before = None
    elif after is _MISSING:
        message = f"{field}: removed (was {show(before)})"
        after = None
    else:
        message = f"{field}: {show(before)} → {show(after)}"
    return Reason(
        kind="field_changed",
        message=message,
        field=field,
        before=freeze(before),
        after=freeze(after),
    )


def _field_reasons(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[Reason]:
    reasons: list[Reason] = []
    for key in [*after, *(k for k in before if k not in after)]:
        old, new = before.get(key, _MISSING), after.get(key, _MISSING)
        if old == new:
            continue
        if key in NESTED_FIELDS and isinstance(old, Mapping) and isinstance(new, Mapping):
            for sub in [*new, *(k for k in old if k not in new)]:
                sub_old, sub_new = old.get(sub, _MISSING), new.get(sub, _MISSING)
                if sub_old != sub_new:
                    reasons.append(_changed(f"{key}.{sub}", sub_old, sub_new))
        else:
            reasons.append(_changed(key, old, new))
    return reasons


def config_reasons(
    desired_config: Mapping[str, Any], desired_hash: str, labels: Mapping[str, str]
) -> list[Reason]:
    """Field-level reasons why an object's recorded configuration is not the desired one."""
    if labels.get(LABEL_CONFIG_HASH) == desired_hash:
        return []
    try:
        recorded = json.loads(labels.get(LABEL_CONFIG, ""))
    except ValueError:
        recorded = None
    if not isinstance(recorded, dict):
        return [
            Reason(
                kind="config_changed",
                message="the configuration hash differs and the previous configuration "
                "was not recorded",
                field="config_hash",
                before=labels.get(LABEL_CONFIG_HASH),
                after=desired_hash,
            )
        ]
    reasons = _field_reasons(recorded, thaw(desired_config))
    if not reasons:  # same content, different hash: a label written by another version
        reasons.append(
            Reason(
                kind="config_changed",
                message="the recorded configuration hash differs",
                field="config_hash",
                before=labels.get(LABEL_CONFIG_HASH),
                after=desired_hash,
            )
        )
    return reasons


def input_reasons(
    inputs: Iterable[DesiredInput], labels: Mapping[str, str], *, consequence: str = ""
) -> list[Reason]:
    """One reason per input file (of a container or a service) whose content digest differs
    from the one recorded in ``labels``; ``consequence``, when given, ends each message."""
    reasons: list[Reason] = []
    ending = f"; {consequence}" if consequence else ""
    for item in inputs:
        recorded = labels.get(item.label)
        if recorded == item.digest:
            continue
        what = "env file" if item.kind == "env-file" else "bind-mounted file"
        reasons.append(
            Reason(
                kind="input_changed",
                message=f"{what} changed: {item.path} "
                f"(sha256 {short_digest(recorded)} → {short_digest(item.digest)}){ending}",
                field=item.path,
                before=recorded,
                after=item.digest,
            )
        )
    return reasons


def image_reasons(
    desired: DesiredContainer,
    image: DesiredImage,
    present: ObservedImage | None,
    container: ObservedContainer,
    will_pull: bool,
) -> list[Reason]:
    """A reason when the container does not run the image its reference names now.

    When the local image is present its id is compared with the container's. When it is
    absent but the lock pins a digest that will be pulled, the container certainly runs
    something else. Otherwise (a tag pulled during apply) the next round of apply finds out.
    """
    if not container.image_id:
        return []
    if present is not None and present.id != container.image_id:
        digest = image.locked_digest or (present.repo_digests[0] if present.repo_digests else "")
        shown = f" ({digest})" if digest else ""
        return [
            Reason(
                kind="image_changed",
                message=f"{desired.image_ref} is now image {short_digest(present.id)}{shown}; "
                f"the container runs {short_digest(container.image_id)}",
                field="image",
                before=container.image_id,
                after=present.id,
            )
        ]
    if present is None and will_pull and image.locked_digest is not None:
        return [
            Reason(
                kind="image_changed",
                message=f"the lock pins {image.written_ref} to {image.locked_digest}; "
                f"the container runs {short_digest(container.image_id)}",
                field="image",
                before=container.image_id,
                after=image.locked_digest,
            )
        ]
    return []
