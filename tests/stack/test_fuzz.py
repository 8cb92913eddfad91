"""Throw thousands of random and mutated stacks at the loader.

Whatever comes in, only declarun's own StackError may come out, and every problem it carries
must point at a real line and column of the file.
"""

from __future__ import annotations

import copy
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from declarun.errors import StackError
from declarun.stack.load import load_yaml_file
from declarun.stack.pipeline import LoadOptions, load_stack

EXAMPLES = sorted((Path(__file__).parents[2] / "examples").glob("*/stack.yaml"))
SEEDS = [load_yaml_file(path).data for path in EXAMPLES]
OPTIONS = LoadOptions(environ={"USER": "fuzz", "HOME": "/root"})

scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=False),
    st.text(max_size=30),
    st.sampled_from(
        [
            "8080:80",
            "1m30s",
            "256m",
            "no",
            "{{ vars.nope }}",
            "{{ vars.tag }}",
            "{% bad",
            "web",
            "db",
            "busybox",
            "/data",
            "a:b:c:d",
            "-1",
            "on-failure:x",
            "127.0.0.1::80/udp",
            "80-70:80-90",
            "CMD",
            "../../etc",
        ]
    ),
)
values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(st.text(min_size=1, max_size=12), children, max_size=4),
    ),
    max_leaves=12,
)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    yield prefix
    if isinstance(data, dict):
        for key, value in data.items():
            yield from _paths(value, (*prefix, key))
    elif isinstance(data, list):
        for index, value in enumerate(data):
            yield from _paths(value, (*prefix, index))


def _mutate(data: Any, path: tuple[Any, ...], operation: str, new: Any, word: str) -> Any:
    if not path:
        return new if operation == "replace" else data
    parent = data
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if operation == "replace":
        parent[last] = new
    elif operation == "delete":
        del parent[last]
    elif operation == "rename" and isinstance(parent, dict):
        parent[str(last)[:-1] + word] = parent.pop(last)
    elif operation == "insert" and isinstance(parent, dict):
        parent[word] = new
    elif operation == "insert" and isinstance(parent, list):
        parent.insert(last, new)
    return data


def _check(text: bytes) -> None:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "stack.yaml"
        path.write_bytes(text)
        try:
            load_stack(path, OPTIONS)
        except StackError as exc:
            assert exc.problems, "a StackError must carry at least one problem"
            # YAML breaks lines at CR, CRLF, NEL and the Unicode separators too, not only LF.
            decoded = text.decode("utf-8", errors="replace")
            lines = len(re.findall("\r\n|[\r\n\x85\u2028\u2029]", decoded)) + 1
            for problem in exc.problems:
                assert problem.location.line >= 1 and problem.location.column >= 1
                if problem.location.file == str(path):
                    assert problem.location.line <= lines + 1, problem
                assert str(problem)


def _apply(seed: Any, picks: list[tuple[int, str, Any, str]]) -> Any:
    data = copy.deepcopy(seed)
    for index, operation, new, word in picks:
        paths = list(_paths(data))
        data = _mutate(data, paths[index % len(paths)], operation, new, word)
    return data


def mutated_examples(min_edits: int, max_edits: int) -> st.SearchStrategy[Any]:
    """A bundled example with a few random edits: replace, delete, rename or insert."""
    edit = st.tuples(
        st.integers(0, 10_000),
        st.sampled_from(["replace", "delete", "rename", "insert"]),
        values,
        st.text(min_size=1, max_size=8),
    )
    return st.builds(
        _apply, st.sampled_from(SEEDS), st.lists(edit, min_size=min_edits, max_size=max_edits)
    )


@settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples(1, 4))
def test_mutated_examples_fail_cleanly(data: Any) -> None:
    _check(yaml.safe_dump(data, sort_keys=False).encode())


@settings(max_examples=800, deadline=None)
@given(st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_random_input_fails_cleanly(text: bytes) -> None:
    _check(text)


@settings(max_examples=400, deadline=None)
@given(values)
def test_random_documents_fail_cleanly(data: Any) -> None:
    _check(yaml.safe_dump({"stack": "fuzz", "containers": data}).encode())


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_examples(0, 3))
def test_fast_validator_agrees_with_jsonschema(data: Any) -> None:
    """The compiled fast path must accept exactly what the reference validator accepts."""
    from declarun.stack.schema import _validator, is_valid

    reference_valid = next(iter(_validator().iter_errors(data)), None) is None
    assert is_valid(data) == reference_valid
