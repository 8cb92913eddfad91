"""The pod of one stack container in Kubernetes terms: container, probes, volumes, placement.

Pure pieces for :mod:`declarun.render.kubernetes`. Whatever the stack says that Kubernetes
cannot express is told to a :class:`Report` (the field and why), never dropped.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from declarun.stack.model import Container, Healthcheck, Placement

__all__ = [
    "LABEL_PREFIX",
    "Note",
    "Report",
    "dns_label",
    "placement",
    "probe",
    "resources",
    "security_context",
]

LABEL_PREFIX = "app.kubernetes.io/"
_DNS = re.compile(r"[^a-z0-9-]+")
_NODE_LABELS = {
    "node.hostname": "kubernetes.io/hostname",
    "node.platform.os": "kubernetes.io/os",
    "node.platform.arch": "kubernetes.io/arch",
}
# Swarm names architectures as uname does; Kubernetes' node labels as Go does.
_ARCH = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm"}


@dataclass(frozen=True, slots=True)
class Note:
    """One thing the stack says that the manifests cannot: where, and what is done instead."""

    where: str  # containers.web.ports[0], volumes.data, networks.back
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass
class Report:
    """Everything not expressed, in the order found."""

    notes: list[Note] = field(default_factory=list)

    def add(self, where: str, message: str) -> None:
        """Tell that ``where`` is not (or not wholly) expressed, and why."""
        note = Note(where, message)
        if note not in self.notes:
            self.notes.append(note)


def dns_label(name: str, limit: int = 63) -> str:
    """``name`` as a Kubernetes DNS label: lower case, ``-`` for anything else, at most
    ``limit`` characters, starting with a letter (``x`` is put first when it does not)."""
    label = _DNS.sub("-", name.lower()).strip("-") or "x"
    if not label[0].isalpha():
        label = f"x{label}"
    return label[:limit].rstrip("-")


def _seconds(delta: timedelta, minimum: int = 1) -> int:
    return max(minimum, math.ceil(delta.total_seconds()))


def probe(check: Healthcheck | None, where: str, report: Report) -> dict[str, Any] | None:
    """An exec probe from a health check (None when there is none to run)."""
    if check is None or check.disabled:
        return None
    if not check.test:
        report.add(
            f"{where}.healthcheck",
            "keeps the image's own test, which Kubernetes does not read: no probe is made",
        )
        return None
    kind, *rest = check.test
    command = ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else list(rest)
    body: dict[str, Any] = {
        "exec": {"command": command},
        "periodSeconds": _seconds(check.interval),
        "timeoutSeconds": _seconds(check.timeout),
        "failureThreshold": max(1, check.retries),
    }
    if check.start_period:
        body["initialDelaySeconds"] = _seconds(check.start_period, 0)
    return body


def resources(container: Container, where: str, report: Report) -> dict[str, Any]:
    """Limits (and the same requests, so the pod is scheduled where they fit)."""
    limits: dict[str, str] = {}
    if container.resources.cpus is not None:
        limits["cpu"] = f"{round(container.resources.cpus * 1000)}m"
    if container.resources.memory is not None:
        limits["memory"] = str(container.resources.memory)
    if container.resources.pids is not None:
        report.add(
            f"{where}.resources.pids",
            "Kubernetes limits processes per node (kubelet's podPidsLimit), not per container",
        )
    return {"limits": limits, "requests": dict(limits)} if limits else {}


def security_context(container: Container, where: str, report: Report) -> dict[str, Any]:
    """Read-only root, capabilities, and the user when it is numeric."""
    context: dict[str, Any] = {}
    if container.read_only:
        context["readOnlyRootFilesystem"] = True
    if container.cap_add or container.cap_drop:
        capabilities: dict[str, list[str]] = {}
        if container.cap_add:
            capabilities["add"] = list(container.cap_add)
        if container.cap_drop:
            capabilities["drop"] = list(container.cap_drop)
        context["capabilities"] = capabilities
    if container.user is not None:
        user, _, group = container.user.partition(":")
        if user.isdigit() and (not group or group.isdigit()):
            context["runAsUser"] = int(user)
            if group:
                context["runAsGroup"] = int(group)
        else:
            report.add(
                f"{where}.user",
                f"{container.user!r}: Kubernetes runs as numeric ids only; the image's user "
                "is used",
            )
    return context


def _term(attribute: str, operator: str, value: str) -> dict[str, Any]:
    return {
        "key": attribute,
        "operator": "In" if operator == "==" else "NotIn",
        "values": [value],
    }


def placement(
    placed: Placement | None, selector: dict[str, str], where: str, report: Report
) -> dict[str, Any]:
    """Pod spec fields (nodeSelector, affinity, topologySpreadConstraints) for ``placed``;
    ``selector`` are the pod's own labels (spreading counts pods by them)."""
    if placed is None:
        return {}
    spec: dict[str, Any] = {}
    node_selector: dict[str, str] = {}
    excluded: list[dict[str, Any]] = []
    for index, constraint in enumerate(placed.constraints):
        operator = "==" if "==" in constraint else "!="
        attribute, _, value = constraint.partition(operator)
        key = _NODE_LABELS.get(attribute)
        if attribute.startswith("node.labels."):
            key = attribute.removeprefix("node.labels.")
        if attribute == "node.platform.arch":
            value = _ARCH.get(value, value)
        if key is None:
            report.add(
                f"{where}.placement.constraints[{index}]",
                f"{constraint}: Kubernetes nodes have no such attribute (Swarm's node role, "
                "id and engine labels); not kept",
            )
            continue
        if operator == "==":
            node_selector[key] = value
        else:
            excluded.append(_term(key, operator, value))
    if node_selector:
        spec["nodeSelector"] = node_selector
    if excluded:
        spec["affinity"] = {
            "nodeAffinity": {
                "requiredDuringSchedulingIgnoredDuringExecution": {
                    "nodeSelectorTerms": [{"matchExpressions": excluded}]
                }
            }
        }
    spreads = [
        {
            "maxSkew": 1,
            "topologyKey": label.removeprefix("node.labels."),
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": dict(selector)},
        }
        for label in placed.spread
    ]
    if placed.max_replicas_per_node is not None:
        # At most N per node: a hard spread over hostnames comes closest (exact for 1).
        spreads.append(
            {
                "maxSkew": placed.max_replicas_per_node,
                "topologyKey": "kubernetes.io/hostname",
                "whenUnsatisfiable": "DoNotSchedule",
                "labelSelector": {"matchLabels": dict(selector)},
            }
        )
        if placed.max_replicas_per_node > 1:
            report.add(
                f"{where}.placement.max_replicas_per_node",
                "Kubernetes bounds the difference between nodes (maxSkew), not the count per "
                "node: kept as a spread with that skew",
            )
    if spreads:
        spec["topologySpreadConstraints"] = spreads
    return spec
