"""The plan document: JSON round trip, validity against schema/plan.schema.json, masking."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from declarun.plan.diff import diff, plan_destroy
from declarun.plan.identity import is_masked, is_secret_key, mask_secret
from declarun.plan.model import Change, Plan, PlanFormatError, Reason
from declarun.plan.observed import ObservedState
from tests.plan.helpers import load, matching_snapshot, with_container
from tests.plan.test_diff import SHOP

SCHEMA = json.loads((Path(__file__).parents[2] / "schema" / "plan.schema.json").read_text())


def _plans(tmp_path: Path) -> list[Plan]:
    stack = load(tmp_path, SHOP)
    world = matching_snapshot(stack)
    changed = load(tmp_path, SHOP.replace("hunter2", "hunter3").replace('"8080:80"', '"9090:80"'))
    stopped = with_container(world, "shop-web", state="exited", exit_code=2)
    return [
        diff(stack, ObservedState(stack="shop"), created_at="2024-01-01T00:00:00Z"),
        diff(changed, stopped, created_at="2024-01-01T00:00:00Z"),
        diff(
            load(tmp_path, "stack: shop\n"), world, created_at="2024-01-01T00:00:00Z", prune=False
        ),
        plan_destroy(stack, world, created_at="2024-01-01T00:00:00Z"),
    ]


def test_the_schema_is_a_valid_2020_12_schema() -> None:
    Draft202012Validator.check_schema(SCHEMA)


def test_plans_round_trip_through_json_and_match_the_schema(tmp_path: Path) -> None:
    validator = Draft202012Validator(SCHEMA)
    for plan in _plans(tmp_path):
        document = json.loads(plan.to_json())
        errors = sorted(validator.iter_errors(document), key=str)
        assert not errors, errors[0]
        again = Plan.from_json(plan.to_json())
        assert again == plan
        assert again.to_json() == plan.to_json()


def test_the_schema_rejects_what_the_reader_rejects(tmp_path: Path) -> None:
    validator = Draft202012Validator(SCHEMA)
    document = json.loads(_plans(tmp_path)[0].to_json())
    document["changes"][0]["action"] = "explode"
    assert not validator.is_valid(document)
    with pytest.raises(PlanFormatError, match="action"):
        Plan.from_data(document)


@pytest.mark.parametrize(
    "text",
    ["not json", "[]", '{"format_version": 2}', '{"format_version": 1, "stack": "x"}'],
)
def test_bad_saved_plans_are_clear_errors(text: str) -> None:
    with pytest.raises(PlanFormatError):
        Plan.from_json(text)


def test_secret_looking_values_are_masked_even_if_they_slip_through() -> None:
    leaky = Reason(
        kind="field_changed", message="m", field="env.GITHUB_TOKEN", before="t0k", after="t1k"
    )
    change = Change(
        id="container:x",
        action="recreate",
        kind="container",
        name="x",
        engine_name="s-x",
        reasons=(leaky,),
    )
    plan = Plan(stack="s", changes=(change,), fingerprint="sha256:" + "0" * 64, created_at="t")
    text = plan.to_json()
    assert "t0k" not in text and "t1k" not in text
    assert is_masked(json.loads(text)["changes"][0]["reasons"][0]["before"])


@pytest.mark.parametrize(
    ("key", "secret"),
    [("DB_PASSWORD", True), ("api_key", True), ("GITHUB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True),
     ("PRIVATE_PEM", True), ("CREDENTIALS", True), ("LOG_LEVEL", False), ("PORT", False)],
)  # fmt: skip
def test_secret_key_patterns(key: str, secret: bool) -> None:
    assert is_secret_key(key) is secret


def test_masks_differ_by_value_and_name_and_never_contain_the_value() -> None:
    assert mask_secret("A", "v") != mask_secret("A", "w")
    assert mask_secret("A", "v") != mask_secret("B", "v")
    assert "v" not in mask_secret("A", "value").split("sha256:")[0]
    assert mask_secret("A", "v") == mask_secret("A", "v")


def test_plan_helpers(tmp_path: Path) -> None:
    empty, changed, kept, destroy = _plans(tmp_path)
    assert changed.counts()["recreate"] == 2 and changed.counts()["start"] == 0
    assert kept.is_empty and not kept.errors
    assert destroy.mode == "destroy" and destroy.desired_hash is None
    assert replace(empty, created_at="other") != empty
