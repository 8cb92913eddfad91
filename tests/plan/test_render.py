"""The terminal rendering of plans, against golden text (regenerate: DECLARUN_REGOLD=1)."""

from __future__ import annotations

import io
import os
from pathlib import Path

from rich.console import Console

from declarun.frozen import FrozenDict
from declarun.plan.diff import diff
from declarun.plan.model import Plan
from declarun.plan.observed import ObservedState
from declarun.plan.render import NO_CHANGES, plan_text, render_plan, summary_line
from tests.plan.helpers import load, matching_snapshot, with_container
from tests.plan.test_diff import SHOP

GOLDEN = Path(__file__).parent / "golden"


def _golden(name: str, text: str) -> None:
    expected = GOLDEN / f"{name}.txt"
    if os.environ.get("DECLARUN_REGOLD"):
        expected.write_text(text)
    assert text == expected.read_text()


def _mixed(tmp_path: Path) -> Plan:
    (tmp_path / "app.env").write_text("MODE=1\n")
    base = SHOP.replace("    command: [", "    env_file: app.env\n    command: [")
    world = matching_snapshot(load(tmp_path, base + "  old:\n    image: busybox:1.36\n"))
    world = with_container(world, "shop-db", state="exited", exit_code=137)
    world = with_container(
        world, "shop-squatter", id="f00", labels=FrozenDict({"owner": "someone"})
    )
    (tmp_path / "app.env").write_text("MODE=2\n")
    changed = base.replace("hunter2", "hunter3").replace('"8080:80"', '"8081:80"')
    changed += "  squatter:\n    image: busybox:1.36\n"
    return diff(load(tmp_path, changed), world, created_at="2024-01-01T00:00:00Z")


def test_a_mixed_plan_reads_as_expected(tmp_path: Path) -> None:
    text = plan_text(_mixed(tmp_path)).replace(str(tmp_path), "/STACK")
    _golden("mixed", text)
    assert "hunter" not in text


def test_a_fresh_plan_reads_as_expected(tmp_path: Path) -> None:
    _golden(
        "fresh", plan_text(diff(load(tmp_path, SHOP), ObservedState(stack="shop"), created_at="t"))
    )


def test_nothing_to_do(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    assert plan_text(diff(stack, matching_snapshot(stack), created_at="t")) == NO_CHANGES + "\n"


def test_summary_counts_only_what_is_there(tmp_path: Path) -> None:
    stack = load(tmp_path, SHOP)
    plan = diff(stack, ObservedState(stack="shop"), created_at="t")
    assert summary_line(plan) == "Plan: 7 to create, 0 to recreate, 0 to remove, 1 to pull."


def test_colour_only_when_the_console_allows(tmp_path: Path) -> None:
    plan = diff(load(tmp_path, SHOP), ObservedState(stack="shop"), created_at="t")
    coloured, plain = io.StringIO(), io.StringIO()
    render_plan(
        plan, Console(file=coloured, force_terminal=True, color_system="standard", width=120)
    )
    render_plan(plan, Console(file=plain, no_color=True, force_terminal=False, width=120))
    assert "\x1b[" in coloured.getvalue()
    assert "\x1b[" not in plain.getvalue()
