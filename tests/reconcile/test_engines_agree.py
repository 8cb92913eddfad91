"""The same stack applied to declarund and to a real dockerd ends in the same place.

Both engines pull the same busybox image from one loopback registry and get the same stack
and the same published host port, one engine after the other. The outcomes compared:
the apply's first round (which changes, which actions), the observed snapshots (every
container's state, exit code, health, networks, volumes, published ports and ownership
labels with their input hashes; networks, volumes and images), ``status``, a plan after
apply that has nothing to do, and the HTTP answer from the published port.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from declarun.plan.identity import LABEL_STACK
from declarun.reconcile.apply import apply_stack, destroy_stack, make_plan
from declarun.reconcile.status import status_rows
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack
from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port
from tests.support.settle import apply_options
from tests.support.stacks import fetch, unique_stack, write_stack

# Engine-assigned identities: they name the same things differently on each engine.
_ENGINE_IDS = {"id"}


def _load(path: Path) -> Stack:
    return load_stack(path, LoadOptions())


def _without_ids(data: Any) -> Any:
    """``data`` without the engine-assigned ids."""
    if isinstance(data, dict):
        return {k: _without_ids(v) for k, v in data.items() if k not in _ENGINE_IDS}
    if isinstance(data, list):
        return [_without_ids(v) for v in data]
    return data


def _without_session_names(snapshot: dict[str, Any]) -> dict[str, Any]:
    """The snapshot with each image's tags and digests cut to the reference the stack uses.

    The engines are shared by the session: other tests tag the same image under other names
    or pull it through another manifest, which says nothing about this stack."""
    images = []
    for image in snapshot.get("images") or ():
        repository = image["ref"].rsplit(":", 1)[0]
        images.append({
            **image,
            "repo_tags": [t for t in image.get("repo_tags") or () if t == image["ref"]],
            "repo_digests": any(
                d.startswith(f"{repository}@") for d in image.get("repo_digests") or ()
            ),
        })  # fmt: skip
    return {**snapshot, "images": images}


def _differences(ours: Any, theirs: Any, where: str = "") -> list[str]:
    """Every path at which two JSON-like values differ, with both values."""
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: list[str] = []
        for key in sorted(set(ours) | set(theirs), key=str):
            found += _differences(ours.get(key), theirs.get(key), f"{where}.{key}")
        return found
    if isinstance(ours, list) and isinstance(theirs, list) and len(ours) == len(theirs):
        return [d for i, pair in enumerate(zip(ours, theirs, strict=True))
                for d in _differences(*pair, f"{where}[{i}]")]  # fmt: skip
    return [] if ours == theirs else [f"{where}: declarund {ours!r} != dockerd {theirs!r}"]


@dataclass(frozen=True)
class Outcome:
    """What one engine showed of the stack after applying it."""

    ok: bool
    report: str
    first_round: list[tuple[str, str]]
    snapshot: dict[str, Any]
    status: list[dict[str, Any]]
    plan_after_apply: list[tuple[str, str]]
    served: str


def _apply_observe_destroy(engine: Engine, path: Path, port: int) -> Outcome:
    """Apply the stack at ``path`` to ``engine``, record what it shows, then remove it all."""
    client, adapter = engine.client, engine.adapter
    try:
        report = apply_stack(adapter, _load(path), apply_options())
        rounds = report.rounds
        planned = make_plan(adapter, _load(path))
        plan, snapshot = planned.plan, planned.observed
        return Outcome(
            ok=report.ok and report.converged,
            report=repr(report),
            first_round=sorted((c.id, c.action) for c in rounds[0].plan.actionable),
            snapshot=_without_session_names(_without_ids(snapshot.to_data())),
            status=_without_ids(status_rows(adapter, _load(path))),
            plan_after_apply=[(c.id, c.action) for c in plan.actionable],
            served=fetch(port) if report.ok else "",
        )
    finally:
        destroy_stack(adapter, _load(path), volumes=True)
        label = {"label": f"{LABEL_STACK}={_load(path).name}"}
        for volume in client.api.volumes(filters=label).get("Volumes") or ():
            client.api.remove_volume(volume["Name"])  # keep: true survives destroy by design


def test_the_same_stack_reaches_the_same_state_on_both_engines(
    declarund_engine: Engine, dockerd_engine: Engine, tmp_path: Path
) -> None:
    name, port = unique_stack("same"), free_port()
    path = write_stack(tmp_path / "stack.yaml", name, declarund_engine.image, port)
    # One after the other, so both publish the same host port and their labels (which hash
    # the published ports) can be compared as they are.
    ours = _apply_observe_destroy(declarund_engine, path, port)
    theirs = _apply_observe_destroy(dockerd_engine, path, port)

    assert ours.ok, ours.report
    assert theirs.ok, theirs.report
    assert ours.first_round == theirs.first_round
    assert ours.plan_after_apply == theirs.plan_after_apply == []
    assert _differences(ours.snapshot, theirs.snapshot) == []
    assert _differences(ours.status, theirs.status) == []
    containers = {c["name"]: c for c in ours.snapshot["containers"]}
    assert containers[f"{name}-db"]["health"] == "healthy"
    assert containers[f"{name}-migrate"]["state"] == "exited"
    assert containers[f"{name}-web"]["ports"] == [f"127.0.0.1:{port}->80/tcp"]
    assert ours.served == theirs.served == "migrated\n"
