"""The YAML loader: positions of keys and values, and a clear error for every kind of bad input."""

from __future__ import annotations

from pathlib import Path

import pytest

from declarun.errors import SourceLocation, StackError
from declarun.stack.load import MAX_FILE_BYTES, format_path, load_yaml_file, load_yaml_text


def problems_of(text: str) -> list[str]:
    with pytest.raises(StackError) as caught:
        load_yaml_text(text, "s.yaml")
    return [str(p) for p in caught.value.problems]


def test_positions_of_keys_and_values() -> None:
    doc = load_yaml_text("stack: demo\ncontainers:\n  web:\n    ports:\n      - '80'\n", "s.yaml")
    assert doc.data == {"stack": "demo", "containers": {"web": {"ports": ["80"]}}}
    assert doc.locate(("containers", "web")) == SourceLocation("s.yaml", 3, 3)
    assert doc.locate_value(("containers", "web", "ports", 0)) == SourceLocation("s.yaml", 5, 9)
    assert doc.locate(("containers", "web", "image")) == SourceLocation("s.yaml", 3, 3)
    assert doc.locate_value(("stack",)) == SourceLocation("s.yaml", 1, 8)


def test_format_path() -> None:
    assert format_path(("containers", "web", "ports", 0)) == "containers.web.ports[0]"
    assert format_path(()) == ""


def test_keys_stay_as_written_and_dates_stay_text() -> None:
    doc = load_yaml_text("on: yes\n1: x\nwhen: 2024-01-02\nn: 3\nf: 1.5\nz: null\n", "s.yaml")
    assert doc.data == {"on": True, "1": "x", "when": "2024-01-02", "n": 3, "f": 1.5, "z": None}


def test_merge_keys_explicit_wins_and_positions_point_at_anchor() -> None:
    text = "x-d: &d\n  a: 1\n  b: 2\nitem:\n  <<: *d\n  b: 3\n"
    doc = load_yaml_text(text, "s.yaml")
    assert doc.data["item"] == {"b": 3, "a": 1}
    assert doc.locate(("item", "a")).line == 2


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "a: [1, 2\n",
            "s.yaml:2:1: invalid YAML: the [...] list that opens at line 1 is not closed",
        ),
        ("a: 1\na: 2\n", "s.yaml:2:1: a: duplicate key 'a' (first defined at line 1)"),
        ("a: !python/object x\n", "s.yaml:1:4: a: unsupported YAML tag '!python/object'"),
        ("", "s.yaml:1:1: the file is empty"),
        ("? [a]\n: 1\n", "s.yaml:1:3: a mapping key must be a plain name, not a list or mapping"),
        ("a: *nope\n", "s.yaml:1:4: a: invalid YAML: found undefined alias 'nope'"),
        (
            "a: 1\n---\nb: 2\n",
            "s.yaml:2:1: invalid YAML: expected a single document in the stream but found another document",
        ),
        ("a: 1\n\tb: 2\n", "s.yaml:2:1: invalid YAML: a tab: YAML indents with spaces only"),
    ],
)
def test_bad_yaml_is_located(text: str, expected: str) -> None:
    problems = problems_of(text)
    assert problems[0].startswith(expected), problems


def test_billion_laughs_is_refused_quickly() -> None:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    for i in range(1, 10):
        refs = ", ".join([f"*a{i - 1}"] * 10)
        lines.append(f"a{i}: &a{i} [{refs}]")
    problems = problems_of("\n".join(lines) + "\n")
    assert "alias bomb" in problems[0]


def test_deep_nesting_is_refused() -> None:
    problems = problems_of("a: " + "[" * 5000 + "]" * 5000 + "\n")
    assert "nest" in problems[0]


def test_large_file_is_refused(tmp_path: Path) -> None:
    big = tmp_path / "big.yaml"
    with big.open("wb") as handle:
        handle.write(b"a: ")
        handle.write(b"x" * (MAX_FILE_BYTES + 10))
    with pytest.raises(StackError) as caught:
        load_yaml_file(big)
    assert "larger than" in str(caught.value)


def test_binary_garbage_is_refused(tmp_path: Path) -> None:
    junk = tmp_path / "junk.yaml"
    junk.write_bytes(b"stack: x\n\xff\xfe\x00\x01binary")
    with pytest.raises(StackError) as caught:
        load_yaml_file(junk)
    assert str(caught.value) == f"{junk}:2:1: the file is not UTF-8 text (invalid byte 0xff)"


def test_control_characters_are_refused() -> None:
    problems = problems_of("a: \x07bell\n")
    assert "unacceptable character #x0007" in problems[0]


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(StackError, match="no such file"):
        load_yaml_file(tmp_path / "nope.yaml")
    with pytest.raises(StackError, match="is a directory"):
        load_yaml_file(tmp_path)


def test_ports_stay_text_not_base_sixty() -> None:
    doc = load_yaml_text("ports: [22:22, 8080:80, 1:30:00]\nn: 0x10\n", "s.yaml")
    assert doc.data == {"ports": ["22:22", "8080:80", "1:30:00"], "n": 16}


def test_alias_positions_point_at_the_anchor() -> None:
    text = "x-env: &env\n  A: 1\n  B: 2\nweb:\n  env: *env\n"
    doc = load_yaml_text(text, "s.yaml")
    assert doc.data["web"]["env"] == {"A": 1, "B": 2}
    assert doc.locate(("web", "env", "B")) == SourceLocation("s.yaml", 3, 3)


def test_merge_of_a_list_of_mappings() -> None:
    text = "a: &a {x: 1}\nb: &b {x: 2, y: 3}\nc:\n  <<: [*a, *b]\n  z: 4\n"
    doc = load_yaml_text(text, "s.yaml")
    assert doc.data["c"] == {"z": 4, "x": 1, "y": 3}
    assert doc.locate(("c", "y")).line == 2


def test_non_mapping_merge_is_a_problem() -> None:
    problems = problems_of("a: &a [1]\nb:\n  <<: *a\n")
    assert "'<<' must merge a mapping" in problems[0]
