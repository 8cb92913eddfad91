"""``declarun run``: a one-off copy of a container's definition, as ``docker compose run``.

The copy is made from the same create body the plan would send (image, environment, mounts,
networks, limits), changed where a one-off must differ from the service:

* its own name, ``<stack>-<container>-run-<suffix>``, and none of the stack's ownership
  labels (a plan must never see it as the stack's, or prune it as an orphan); a
  ``dev.declarun.run-of`` label says what it copies;
* the command given, if any; stdin open and a TTY when asked; never restarted;
* no published ports unless asked (the service already holds them), and none of the
  service's network aliases (traffic for ``db`` must not reach a one-off shell).

Pure: it only reshapes the desired state.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from declarun.frozen import thaw
from declarun.plan.desired import DesiredContainer
from declarun.plan.identity import LABEL_PREFIX, container_name

__all__ = ["LABEL_RUN_OF", "OneOff", "one_off"]

LABEL_RUN_OF = "dev.declarun.run-of"


@dataclass(frozen=True)
class OneOff:
    """What to create: the name, the create body, and the networks to connect afterwards."""

    name: str
    body: dict[str, Any]
    extra_networks: list[tuple[str, dict[str, Any]]]


def _without_aliases(endpoint: dict[str, Any]) -> dict[str, Any]:
    plain = {k: v for k, v in endpoint.items() if k != "Aliases"}
    ipam = plain.get("IPAMConfig") or {}
    if ipam.get("IPv4Address"):  # a fixed address belongs to the service
        plain.pop("IPAMConfig")
    return plain


def one_off(
    stack: str,
    container: DesiredContainer,
    *,
    suffix: str,
    command: Sequence[str] = (),
    env: Sequence[str] = (),
    user: str | None = None,
    workdir: str | None = None,
    service_ports: bool = False,
    tty: bool = False,
    stdin: bool = True,
) -> OneOff:
    """The one-off copy of ``container`` (see the module docstring)."""
    body = container.create_body()
    labels = {k: v for k, v in (body.get("Labels") or {}).items() if not k.startswith(LABEL_PREFIX)}
    labels[LABEL_RUN_OF] = f"{stack}/{container.container}"
    body["Labels"] = labels
    if command:
        body["Cmd"] = list(command)
    if env:
        body["Env"] = [*(body.get("Env") or []), *env]
    if user:
        body["User"] = user
    if workdir:
        body["WorkingDir"] = workdir
    body.update(
        Tty=tty,
        OpenStdin=stdin,
        StdinOnce=stdin,
        AttachStdin=stdin,
        AttachStdout=True,
        AttachStderr=True,
    )
    host = dict(body.get("HostConfig") or {})
    host["RestartPolicy"] = {"Name": "no"}
    if not service_ports:
        host["PortBindings"] = {}
        body.pop("ExposedPorts", None)
    body["HostConfig"] = host
    networking = copy.deepcopy(body.get("NetworkingConfig") or {})
    endpoints = networking.get("EndpointsConfig") or {}
    networking["EndpointsConfig"] = {
        name: _without_aliases(endpoint or {}) for name, endpoint in endpoints.items()
    }
    body["NetworkingConfig"] = networking
    extra = [
        (name, _without_aliases(thaw(endpoint))) for name, endpoint in container.extra_networks
    ]
    name = f"{container_name(stack, container.container)}-run-{suffix}"
    return OneOff(name, body, extra)
