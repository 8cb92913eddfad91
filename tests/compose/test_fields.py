"""Every field of the Compose Specification has a status, and specs/compose.md lists them all."""

from __future__ import annotations

from pathlib import Path

from declarun.compose.fields import FIELDS, support_table_markdown
from declarun.compose.schema import schema_field_paths

SPEC = Path(__file__).resolve().parents[2] / "specs" / "compose.md"
BEGIN, END = "<!-- fields:begin -->\n", "<!-- fields:end -->"


def test_the_table_names_only_fields_of_the_schema_and_every_service_field() -> None:
    paths = schema_field_paths()
    assert [key for key in FIELDS if key not in paths] == []
    top_and_service = [
        p for p in paths if p.count(".") == 0 or (p.startswith("services.*.") and p.count(".") == 2)
    ]
    assert [p for p in top_and_service if p not in FIELDS and "[]" not in p] == []


def test_specs_compose_md_lists_every_field_as_the_table_says() -> None:
    text = SPEC.read_text(encoding="utf-8")
    listed = text[text.index(BEGIN) + len(BEGIN) : text.index(END)]
    assert listed == support_table_markdown(schema_field_paths()), (
        "regenerate the table: python -m declarun.compose.fields"
    )
