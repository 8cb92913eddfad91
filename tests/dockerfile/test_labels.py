"""Build labels (``docker build --label``) appended to the target stage as dockerd does."""

from __future__ import annotations

from declarun.dockerfile import evaluate_stage, parse_dockerfile, plan_build, with_build_labels

DOCKERFILE = """\
FROM scratch AS base
LABEL a=1
FROM base AS app
ENV V=x
"""


def test_labels_are_sorted_instructions_at_the_end_of_the_last_stage() -> None:
    df = with_build_labels(parse_dockerfile(DOCKERFILE), {"z": "last", "b": "$V"})
    added = df.stages[1].instructions[-2:]
    assert [i.original for i in added] == ["LABEL b=$V", "LABEL z=last"]
    assert df.stages[0].instructions == parse_dockerfile(DOCKERFILE).stages[0].instructions


def test_labels_are_not_substituted_and_show_in_history() -> None:
    df = with_build_labels(parse_dockerfile(DOCKERFILE), {"b": "$V"})
    plan = plan_build(df)
    base = evaluate_stage(plan, 0, None)
    app = evaluate_stage(plan, 1, base.config)
    assert dict(app.config.labels or ()) == {"a": "1", "b": "$V"}
    assert app.steps[-1].created_by() == "/bin/sh -c #(nop)  LABEL b=$V"


def test_labels_go_to_the_named_target_and_nothing_changes_without_labels() -> None:
    original = parse_dockerfile(DOCKERFILE)
    df = with_build_labels(original, {"k": "v"}, target="base")
    assert df.stages[0].instructions[-1].original == "LABEL k=v"
    assert df.stages[1] == original.stages[1]
    assert with_build_labels(original, {}) is original
    assert with_build_labels(original, {"k": "v"}, target="nope") is original
