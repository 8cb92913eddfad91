"""The plan as a value: a closed set of actions on resources, each with its reasons.

A :class:`Plan` is what ``declarun plan`` shows, what ``plan -o plan.json`` saves and what
``apply`` executes. It never holds a secret: environment values of secret variables arrive
already masked from the diff (``*** (sha256:…)``), and :meth:`Plan.to_data` masks again any
``env.*`` value whose name looks secret, so a plan can be pasted into a review. The JSON form
is documented in ``specs/plan-format.md`` and ``schema/plan.schema.json``.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

from declarun.errors import DeclarunError
from declarun.frozen import FrozenDict, freeze, thaw
from declarun.plan.identity import is_masked, is_secret_key, mask_secret

__all__ = [
    "ACTIONS",
    "FORMAT_VERSION",
    "REASON_KINDS",
    "Action",
    "Change",
    "Plan",
    "PlanFormatError",
    "Reason",
    "ReasonKind",
    "Wait",
    "is_conditional_replace",
]

FORMAT_VERSION = 1

Action = Literal[
    "create", "recreate", "update", "start", "stop", "remove", "pull", "build", "noop", "error"
]
ReasonKind = Literal[
    "missing",  # the object does not exist
    "field_changed",  # a configuration field differs (field, before, after)
    "config_changed",  # the configuration hash differs but the old configuration is unknown
    "input_changed",  # an input file's content digest differs (field = path)
    "image_changed",  # the image the reference names is not the one the container runs
    "dependency_replaced",  # a network it is attached to is being replaced
    "stopped",  # a service is not running (field = state)
    "job_failed",  # a run-once job exited non-zero
    "crashing",  # a service keeps dying (left alone: starting it again would fail the same way)
    "pull_policy",  # pulled because of the image's pull policy
    "image_missing",  # an image is absent and may not be pulled
    "orphan",  # owned, but no longer in the stack (or its profile is inactive)
    "kept",  # would be removed, but is kept (--no-prune, volumes, keep: true)
    "foreign",  # the name is taken by an object declarun does not own
    "external_missing",  # an external volume or network the stack uses does not exist
    "no_healthcheck",  # it would wait for a dependency to be healthy that has no health check
    "not_replaced",  # a change declarun will not make by itself (volume configuration)
    "destroy",  # removed by destroy
    "image_rebuilt",  # its image is rebuilt: replaced only if the build gives a new image
    "not_recorded",  # a built image whose build inputs are not recorded here
    "input_unreadable",  # a build's context or Dockerfile cannot be read now
    "requested",  # asked for on the command line (declarun build)
    "converging",  # a cluster service whose tasks are not all where its spec wants them yet
    "adapted",  # a field the engine cannot take as written, and what is done instead
]
ACTIONS: tuple[str, ...] = get_args(Action)
REASON_KINDS: tuple[str, ...] = get_args(ReasonKind)
# service, config and secret: the objects of a Swarm stack (``plan.services``).
ChangeKind = Literal["image", "volume", "network", "container", "service", "config", "secret"]


class PlanFormatError(DeclarunError):
    """A saved plan cannot be read: not JSON, wrong version, or missing fields."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Reason:
    """Why a change is needed. ``before``/``after`` are JSON values (already masked)."""

    kind: ReasonKind
    message: str
    field: str | None = None
    before: Any = None
    after: Any = None

    def to_data(self) -> dict[str, Any]:
        """Plain data; ``field``/``before``/``after`` only when set."""
        data: dict[str, Any] = {"kind": self.kind, "message": self.message}
        if self.field is not None:
            data["field"] = self.field
            data["before"] = _guard(self.field, thaw(self.before))
            data["after"] = _guard(self.field, thaw(self.after))
        return data


@dataclass(frozen=True, slots=True)
class Wait:
    """Before acting, wait until change ``on``'s container reached ``condition``."""

    on: str
    condition: str  # started | healthy | completed


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One action on one resource. ``id`` is the graph node (``container:web-1``)."""

    id: str
    action: Action
    kind: ChangeKind
    name: str  # the stack's name (replica name for containers); images: the image key
    engine_name: str  # the engine object's name; for images the reference to pull or build
    depends_on: tuple[str, ...] = ()
    waits: tuple[Wait, ...] = ()
    reasons: tuple[Reason, ...] = ()
    observed_id: str | None = None  # the engine id of the existing object acted upon
    desired_hash: str | None = None  # the config hash the created object will carry

    @property
    def symbol(self) -> str:
        """The plan symbol: ``+`` create, ``-/+`` replace, ``~`` update, ``-`` remove."""
        return _SYMBOLS[self.action]

    def to_data(self) -> dict[str, Any]:
        """Plain data for the plan document."""
        return {
            "id": self.id,
            "action": self.action,
            "kind": self.kind,
            "name": self.name,
            "engine_name": self.engine_name,
            "depends_on": list(self.depends_on),
            "waits": [{"on": w.on, "condition": w.condition} for w in self.waits],
            "reasons": [reason.to_data() for reason in self.reasons],
            "observed_id": self.observed_id,
            "desired_hash": self.desired_hash,
        }


def is_conditional_replace(change: Change) -> bool:
    """True for a container replaced only if the build of its image gives a new image: every
    reason is ``image_rebuilt`` (apply compares image ids once the build ran)."""
    return (
        change.action == "recreate"
        and bool(change.reasons)
        and all(r.kind == "image_rebuilt" for r in change.reasons)
    )


_SYMBOLS = {
    "create": "+",
    "recreate": "-/+",
    "update": "~",
    "start": "~",
    "stop": "~",
    "remove": "-",
    "pull": "↓",
    "build": "*",
    "noop": " ",
    "error": "!",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """Every change needed to make the engine match the stack (or to destroy it)."""

    stack: str
    changes: tuple[Change, ...]
    fingerprint: str  # of the snapshot the plan was computed from
    created_at: str  # ISO 8601, UTC
    mode: Literal["apply", "destroy"] = "apply"
    platform: str = "linux/amd64"
    desired_hash: str | None = None  # of the desired state; a saved plan is re-derived and compared
    format_version: int = FORMAT_VERSION
    _index: FrozenDict[str, Change] = field(
        default=FrozenDict(), init=False, compare=False, repr=False
    )

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", FrozenDict((c.id, c) for c in self.changes))

    def change(self, change_id: str) -> Change:
        """The change with this id (KeyError when there is none)."""
        return self._index[change_id]

    @property
    def actionable(self) -> tuple[Change, ...]:
        """The changes that do something (not noop)."""
        return tuple(c for c in self.changes if c.action != "noop")

    @property
    def errors(self) -> tuple[Change, ...]:
        """Changes that cannot be made; a plan with any must not be applied."""
        return tuple(c for c in self.changes if c.action == "error")

    @property
    def is_empty(self) -> bool:
        """True when nothing needs doing: every change is a noop."""
        return not self.actionable

    def counts(self) -> dict[str, int]:
        """How many changes of each action (all actions present, zero when none)."""
        counted: Counter[str] = Counter(c.action for c in self.changes)
        return {action: counted.get(action, 0) for action in ACTIONS}

    def to_data(self) -> dict[str, Any]:
        """The plan document as plain data (see ``specs/plan-format.md``)."""
        return {
            "format_version": self.format_version,
            "stack": self.stack,
            "mode": self.mode,
            "created_at": self.created_at,
            "fingerprint": self.fingerprint,
            "platform": self.platform,
            "desired_hash": self.desired_hash,
            "summary": self.counts(),
            "changes": [change.to_data() for change in self.changes],
        }

    def to_json(self) -> str:
        """The plan document as JSON text (two-space indent, ending in a newline)."""
        return json.dumps(self.to_data(), indent=2, ensure_ascii=False) + "\n"

    @classmethod
    def from_data(cls, data: Any) -> Plan:
        """Read a plan document; raises :class:`PlanFormatError` when it is not one."""
        try:
            if data["format_version"] != FORMAT_VERSION:
                raise PlanFormatError(f"unsupported plan format_version {data['format_version']!r}")
            changes = tuple(_change(item) for item in data["changes"])
            return cls(
                stack=data["stack"],
                changes=changes,
                fingerprint=data["fingerprint"],
                created_at=data["created_at"],
                mode=data.get("mode", "apply"),
                platform=data.get("platform", "linux/amd64"),
                desired_hash=data.get("desired_hash"),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise PlanFormatError(f"not a declarun plan document: missing or bad {exc}") from None

    @classmethod
    def from_json(cls, text: str) -> Plan:
        """Parse :meth:`to_json` output."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise PlanFormatError(f"a saved plan must be JSON: {exc}") from None
        return cls.from_data(data)


def _change(item: dict[str, Any]) -> Change:
    action, kind = item["action"], item["kind"]
    if action not in ACTIONS:
        raise ValueError(f"action {action!r}")
    reasons = []
    for reason in item.get("reasons", ()):
        if reason["kind"] not in REASON_KINDS:
            raise ValueError(f"reason kind {reason['kind']!r}")
        reasons.append(
            Reason(
                kind=reason["kind"],
                message=reason["message"],
                field=reason.get("field"),
                before=freeze(reason.get("before")),
                after=freeze(reason.get("after")),
            )
        )
    return Change(
        id=item["id"],
        action=action,
        kind=kind,
        name=item["name"],
        engine_name=item["engine_name"],
        depends_on=tuple(item.get("depends_on", ())),
        waits=tuple(Wait(w["on"], w["condition"]) for w in item.get("waits", ())),
        reasons=tuple(reasons),
        observed_id=item.get("observed_id"),
        desired_hash=item.get("desired_hash"),
    )


def _guard(field_name: str, value: Any) -> Any:
    """Mask an ``env.KEY`` value that looks secret and is not masked yet (defence in depth)."""
    if not field_name.startswith("env."):
        return value
    key = field_name[4:]
    if isinstance(value, str) and is_secret_key(key) and not is_masked(value):
        return mask_secret(key, value)
    return value
