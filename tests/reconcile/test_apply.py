"""apply / destroy / saved plans end to end, on each engine (declarund and a real dockerd).

The stack (``tests.support.stacks``): a health-checked ``db`` on a named volume, a ``run:
once`` ``migrate`` job writing into it, and ``web`` (busybox httpd) publishing a port on
127.0.0.1 only, all on a user network.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import docker.errors
import pytest

from declarun.plan.identity import LABEL_STACK
from declarun.reconcile.apply import (
    StalePlan,
    apply_saved_plan,
    apply_stack,
    destroy_stack,
    make_plan,
)
from declarun.stack.model import Stack
from declarun.stack.pipeline import LoadOptions, load_stack
from tests.support.engine_fixtures import Engine
from tests.support.registry import free_port
from tests.support.settle import apply_options
from tests.support.stacks import fetch, unique_stack, write_stack


class Deployed:
    """One test's stack: its file, name and port, with helpers to load and inspect it."""

    def __init__(self, engine: Engine, tmp: Path) -> None:
        self.engine = engine
        self.client = engine.client
        self.adapter = engine.adapter
        self.name = unique_stack("t")
        self.port = free_port()
        self.path = write_stack(tmp / "stack.yaml", self.name, engine.image, self.port)

    def load(self, **overrides: str) -> Stack:
        return load_stack(self.path, LoadOptions(var_overrides=overrides))

    def inspect(self, container: str) -> dict[str, Any]:
        data: dict[str, Any] = self.client.api.inspect_container(f"{self.name}-{container}")
        return data

    def owned(self) -> dict[str, list[str]]:
        label = {"label": f"{LABEL_STACK}={self.name}"}
        return {
            "containers": [
                c["Names"][0] for c in self.client.api.containers(all=True, filters=label)
            ],
            "networks": [n["Name"] for n in self.client.api.networks(filters=label)],
            "volumes": [
                v["Name"] for v in self.client.api.volumes(filters=label).get("Volumes") or ()
            ],
        }


@pytest.fixture
def deployed(engine: Engine, tmp_path: Path) -> Iterator[Deployed]:
    stack = Deployed(engine, tmp_path)
    yield stack
    destroy_stack(engine.adapter, stack.load(), volumes=True)
    for volume in stack.owned()["volumes"]:  # keep: true survives destroy by design
        engine.client.api.remove_volume(volume)


def test_apply_converges_serves_and_reapplies_as_a_no_op(deployed: Deployed) -> None:
    report = apply_stack(deployed.adapter, deployed.load(), apply_options())
    assert report.ok, report
    assert len(report.rounds) == 1
    first = report.rounds[0]
    assert {c.id for c in first.plan.actionable} >= {
        "volume:data",
        "network:back",
        "container:db",
        "container:migrate",
        "container:web",
    }
    # db was healthy before migrate ran, and migrate completed before web started.
    assert fetch(deployed.port).strip() == "migrated"
    assert deployed.inspect("db")["State"]["Health"]["Status"] == "healthy"
    assert deployed.inspect("migrate")["State"]["ExitCode"] == 0
    ports = deployed.inspect("web")["HostConfig"]["PortBindings"]["80/tcp"]
    assert ports == [{"HostIp": "127.0.0.1", "HostPort": str(deployed.port)}]

    again = apply_stack(deployed.adapter, deployed.load(), apply_options())
    assert again.nothing_to_do
    assert again.rounds == ()


def test_changing_one_field_replaces_exactly_that_container(deployed: Deployed) -> None:
    assert apply_stack(deployed.adapter, deployed.load(), apply_options()).ok
    before = {name: deployed.inspect(name)["Id"] for name in ("db", "migrate", "web")}
    plan = make_plan(deployed.adapter, deployed.load(mode="two")).plan
    (change,) = plan.actionable
    assert (change.id, change.action) == ("container:web", "recreate")
    (reason,) = change.reasons
    assert (reason.field, reason.before, reason.after) == ("env.MODE", "one", "two")

    report = apply_stack(deployed.adapter, deployed.load(mode="two"), apply_options())
    assert report.ok, report
    after = {name: deployed.inspect(name)["Id"] for name in ("db", "migrate", "web")}
    assert after["web"] != before["web"]
    assert after["db"] == before["db"]
    assert after["migrate"] == before["migrate"]  # the job does not run again
    assert "MODE=two" in deployed.inspect("web")["Config"]["Env"]
    assert fetch(deployed.port).strip() == "migrated"


def test_out_of_band_removal_is_healed(deployed: Deployed) -> None:
    assert apply_stack(deployed.adapter, deployed.load(), apply_options()).ok
    deployed.engine.docker("rm", "-f", f"{deployed.name}-web")
    plan = make_plan(deployed.adapter, deployed.load()).plan
    assert [(c.id, c.action, c.reasons[0].kind) for c in plan.actionable] == [
        ("container:web", "create", "missing")
    ]
    assert apply_stack(deployed.adapter, deployed.load(), apply_options()).ok
    assert fetch(deployed.port).strip() == "migrated"


def test_failing_health_check_blocks_dependents_and_reports_its_output(
    deployed: Deployed,
) -> None:
    failing = "echo db-is-not-ready; exit 1"
    report = apply_stack(deployed.adapter, deployed.load(db_check=failing), apply_options())
    assert not report.ok
    (round_,) = report.rounds  # a failed round is not repeated
    db = round_.result.outcome("container:db")
    assert db.status == "failed"
    assert "unhealthy" in (db.error or "")
    assert "db-is-not-ready" in db.report  # the health check's own output
    assert "db up" in db.report  # the tail of its log
    for dependent in ("container:migrate", "container:web"):
        skipped = round_.result.outcome(dependent)
        assert (skipped.status, skipped.cause) == ("skipped", "container:db")
    # Independent work went on: the network and volumes exist.
    assert round_.result.outcome("network:back").status == "done"
    with pytest.raises(docker.errors.NotFound):
        deployed.inspect("web")
    assert not report.converged


def test_orphans_are_pruned_unless_asked_to_keep_them(deployed: Deployed, tmp_path: Path) -> None:
    assert apply_stack(deployed.adapter, deployed.load(), apply_options()).ok
    write_stack(
        deployed.path, deployed.name, deployed.engine.image, deployed.port, with_migrate=False
    )
    kept = apply_stack(deployed.adapter, deployed.load(), apply_options(prune=False))
    assert kept.nothing_to_do
    assert deployed.inspect("migrate")["Id"]
    plan = make_plan(deployed.adapter, deployed.load()).plan
    assert [(c.id, c.action) for c in plan.actionable] == [("container:migrate", "remove")]
    assert plan.actionable[0].reasons[0].kind == "orphan"
    assert apply_stack(deployed.adapter, deployed.load(), apply_options()).ok
    with pytest.raises(docker.errors.NotFound):
        deployed.inspect("migrate")


def test_destroy_removes_everything_owned_but_keeps_volumes_as_told(
    deployed: Deployed,
) -> None:
    assert apply_stack(deployed.adapter, deployed.load(), apply_options()).ok
    report = destroy_stack(deployed.adapter, deployed.load())
    assert report.ok, report
    owned = deployed.owned()
    assert owned["containers"] == [] and owned["networks"] == []
    assert sorted(owned["volumes"]) == sorted([f"{deployed.name}-data", f"{deployed.name}-keepme"])
    report = destroy_stack(deployed.adapter, deployed.load(), volumes=True)
    assert report.ok
    assert deployed.owned() == {
        "containers": [],
        "networks": [],
        "volumes": [f"{deployed.name}-keepme"],  # keep: true is never removed
    }
    assert destroy_stack(deployed.adapter, deployed.load(), volumes=True).nothing_to_do


def test_saved_plan_applies_exactly_and_is_refused_when_stale(deployed: Deployed) -> None:
    stack = deployed.load()
    saved = make_plan(deployed.adapter, stack).plan
    deployed.engine.docker("volume", "create", "--label", f"{LABEL_STACK}={deployed.name}",
                                   f"{deployed.name}-data")  # fmt: skip
    with pytest.raises(StalePlan, match="actual state changed since the plan was made"):
        apply_saved_plan(deployed.adapter, stack, saved)
    deployed.client.api.remove_volume(f"{deployed.name}-data")

    fresh = make_plan(deployed.adapter, stack).plan
    with pytest.raises(StalePlan, match="the stack changed"):
        apply_saved_plan(deployed.adapter, deployed.load(mode="other"), fresh)
    report = apply_saved_plan(deployed.adapter, stack, fresh)
    assert report.ok, report
    assert [r.plan for r in report.rounds] == [fresh]
    assert fetch(deployed.port).strip() == "migrated"
