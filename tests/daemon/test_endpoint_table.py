"""The endpoint table in ``specs/daemon.md`` is the one the routes give (it cannot drift)."""

from __future__ import annotations

from tests.support import endpoint_table


def test_the_spec_holds_the_table_the_routes_give() -> None:
    spec = endpoint_table.SPEC_PATH.read_text()
    assert endpoint_table.table_in_spec(spec) == endpoint_table.render(), (
        "specs/daemon.md's endpoint table is stale: "
        "run .venv/bin/python -m tests.support.endpoint_table --write"
    )


def test_every_note_names_an_operation_of_the_swagger_file() -> None:
    operations = set(endpoint_table.operations())
    noted = set(endpoint_table.DIFFERENCES) | set(endpoint_table.NOT_SERVED)
    assert noted - operations == set()


def test_every_operation_is_accounted_for() -> None:
    rows = [line for line in endpoint_table.render().splitlines() if line.startswith("| `")]
    assert len(rows) == len(endpoint_table.operations())
    assert not [row for row in rows if "no area module serves it yet" in row]
